// What the status page shows (GET /status.json): the gateway, its broker connection, its buffer,
// each device's state, round trip, last error and latest values, and the EL stage. Read-only, no
// secrets (no URLs with credentials, no file contents), built on demand when the page asks.
import type { HealthSnapshot } from '../core/device-health.js';
import type { LatestView } from '../core/latest.js';
import type { Sample } from '../core/sample.js';
import type { HealthAnswer } from './judge.js';

/** At most this many latest values per device on the page (a 100k-point gateway stays light)… */
export const VALUES_PER_DEVICE = 50;
/** …and this many in all: with many devices each shows fewer (its `points` says how many it has). */
export const VALUES_IN_ALL = 2000;

export interface StatusInputs {
  site: string;
  gateway: string;
  health: HealthAnswer;
  devices: { name: string; status: HealthSnapshot | undefined; latest: LatestView | undefined }[];
  el?: { status: Record<string, unknown> | undefined; queued: number };
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function statusSnapshot(i: StatusInputs) {
  const perDevice = Math.max(1, Math.min(VALUES_PER_DEVICE, Math.floor(VALUES_IN_ALL / Math.max(1, i.devices.length))));
  return {
    site: i.site,
    gateway: i.gateway,
    ts: new Date().toISOString(),
    health: i.health,
    devices: i.devices.map(({ name, status: s, latest }) => {
      // The first few without copying the whole map (a device may have thousands).
      const values: Sample[] = [];
      for (const sample of latest?.values() ?? []) {
        if (values.length === perDevice) break;
        values.push(sample);
      }
      return {
        name,
        state: s?.state ?? 'unknown',
        since: iso(s?.since),
        reason: s?.reason ?? null,
        channel: s?.channel ?? s?.endpoint ?? null,
        rtt_ms: s?.rtt_ms ?? null,
        errors: s?.errors ?? 0,
        timeouts: s?.timeouts ?? 0,
        reconnects: s?.reconnects ?? 0,
        points: latest?.size ?? 0,
        values: values.map((v) => ({
          point: v.point,
          value: typeof v.value === 'bigint' ? v.value.toString() : v.value,
          quality: v.quality,
          reason: v.reason ?? null,
          ts: iso(v.ts),
        })),
      };
    }),
    el: i.el ? { ...(i.el.status ?? { state: 'starting' }), queued: i.el.queued } : null,
  };
}
