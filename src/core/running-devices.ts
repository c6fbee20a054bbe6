// The devices the gateway runs now, and changing them on a reload: the plan (reload-plan.ts, pure)
// carried out in order — polls of devices going down finish (their samples are buffered), their
// links close, the devices to wire join the pool and get their pipeline, the links touched start
// again. Devices and links the reload does not touch keep polling; the buffer is not touched.
// Disabled devices get a "disabled" status instead of a pipeline.
import type { LoadedConfig, LoadedDevice } from '../config/loaded.js';
import { startPipeline, type PipelineDeps } from './device-pipeline.js';
import type { GatewayHealth } from './gateway-health.js';
import type { LinkPool } from './link-pool.js';
import { canon, planReload } from './reload-plan.js';
import type { GatewayEvents } from './events.js';
import { DeviceWriter } from './device-writer.js';

export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
  /** Links stopped and opened again because a device on them was added, removed or changed. */
  relinked: string[];
  /** Top-level gateway keys that differ and only take effect after a restart. */
  restartNeeded: string[];
}

export interface RunningDevicesDeps extends PipelineDeps {
  pool: LinkPool;
  gwHealth: GatewayHealth;
  /** Where a disabled device's status and a removed device go (the publisher listens). */
  events: GatewayEvents;
}

export class RunningDevices {
  /** Each running device's way to write (commands), by name. */
  private readonly writers = new Map<string, DeviceWriter>();

  constructor(
    private current: LoadedConfig,
    private readonly deps: RunningDevicesDeps,
  ) {}

  /** At start: every enabled device joins the pool and gets its pipeline. */
  wireAll(): void {
    for (const d of this.current.devices) {
      if (d.enabled) this.wire(d);
      else this.publishDisabled(d.name);
    }
  }

  async reload(next: LoadedConfig): Promise<ReloadReport> {
    const { pool, scheduler, gwHealth, metrics, events } = this.deps;
    const before = this.current.devices;
    const plan = planReload(before, next.devices, pool.wired, pool.keysOf);
    const affected = new Set(plan.relink);
    // Polls in progress finish (their samples are buffered) before their links close.
    await Promise.all(plan.down.map((n) => scheduler.remove(n)));
    for (const n of plan.down) for (const group of [`${n}@`, `${n}~backup@`]) gwHealth.forget(`poll ${group}`);
    pool.part(plan.down);
    for (const n of plan.down) this.writers.delete(n);
    await pool.drop(affected);
    const wasDisabled = new Set(before.filter((d) => !d.enabled).map((d) => d.name));
    const g = this.current.gateway;
    this.current = { ...this.current, devices: next.devices };
    const byName = new Map(next.devices.map((d) => [d.name, d]));
    for (const n of plan.wire) this.wire(byName.get(n)!);
    pool.start(affected);
    for (const n of plan.removed) {
      metrics.deviceUp.remove({ device: n });
      if (!byName.has(n)) events.emit('device-removed', n);
    }
    for (const d of next.devices) if (!d.enabled && !wasDisabled.has(d.name)) this.publishDisabled(d.name);
    // The gateway section is the one the process started with; what differs needs a restart.
    const restartNeeded = Object.keys({ ...g, ...next.gateway }).filter(
      (k) => canon((g as Record<string, unknown>)[k]) !== canon((next.gateway as Record<string, unknown>)[k]),
    );
    return { added: plan.added, removed: plan.removed, changed: plan.changed, relinked: plan.relink, restartNeeded };
  }

  private wire(device: LoadedDevice): void {
    const { primary, backup } = this.deps.pool.join(device);
    if (backup) this.deps.metrics.failoverActive.set({ device: device.name }, 0);
    const accept = startPipeline(device, primary, backup, this.deps);
    this.writers.set(device.name, new DeviceWriter(device, primary, accept));
  }

  /** The devices running now (enabled ones), with their points. */
  running(): LoadedDevice[] {
    return this.current.devices.filter((d) => d.enabled);
  }

  /** The writer of a running device, undefined when the device is not running (unknown, disabled). */
  writer(device: string): DeviceWriter | undefined {
    return this.writers.get(device);
  }

  allWriters(): Iterable<DeviceWriter> {
    return this.writers.values();
  }

  private publishDisabled(name: string): void {
    this.deps.events.emit('device-status', name, {
      state: 'disabled',
      since: Date.now(),
      endpoint: '',
      rtt_ms: { p50: null, p99: null },
      errors: 0,
      timeouts: 0,
      reconnects: 0,
    });
  }
}
