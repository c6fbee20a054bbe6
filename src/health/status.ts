// What the status page shows (GET /status.json): the gateway, its broker connection, its buffer,
// each device's state, round trip, last error and latest values, and the EL stage. Read-only, no
// secrets (no URLs with credentials, no file contents), built on demand when the page asks.
import type { HealthSnapshot } from '../core/device-health.js';
import type { Reading } from '../core/driver.js';
import type { HealthAnswer } from './judge.js';

/** At most this many latest values per device on the page (a 100k-point gateway stays light). */
export const VALUES_PER_DEVICE = 50;

export interface StatusInputs {
  site: string;
  gateway: string;
  health: HealthAnswer;
  devices: { name: string; status: HealthSnapshot | undefined; latest: Map<string, { r: Reading; ts: number }> | undefined }[];
  el?: { status: Record<string, unknown> | undefined; queued: number };
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function statusSnapshot(i: StatusInputs) {
  return {
    site: i.site,
    gateway: i.gateway,
    ts: new Date().toISOString(),
    health: i.health,
    devices: i.devices.map(({ name, status: s, latest }) => {
      const values = [...(latest?.entries() ?? [])];
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
        points: values.length,
        values: values.slice(0, VALUES_PER_DEVICE).map(([point, { r, ts }]) => ({
          point,
          value: typeof r.value === 'bigint' ? r.value.toString() : r.value,
          quality: r.quality,
          reason: r.reason ?? null,
          ts: iso(ts),
        })),
      };
    }),
    el: i.el ? { ...(i.el.status ?? { state: 'starting' }), queued: i.el.queued } : null,
  };
}
