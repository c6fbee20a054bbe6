// Writes to one device: the value checked by its driver, sent through the device's link runner
// ahead of polls (one request at a time on the link), then the point read back in the same turn
// and its reading put through the device's pipeline like a poll's — so the next sample on the data
// topic shows what the device holds now. Commands (src/commands/) decide whether to write at all.
import type { LoadedDevice } from '../config/loaded.js';
import type { CommonPoint } from '../config/schema.js';
import type { Reading, Value, WriteCheck } from './driver.js';
import type { Joined } from './device-pipeline.js';

export type WriteOutcomeKind = 'ok' | 'refused' | 'failed' | 'expired';

export interface WriteResult {
  outcome: WriteOutcomeKind;
  reason?: string;
  /** The device's exception or status code, when it refused. */
  code?: number | string;
  /** The point as read back after the write (its value and quality). */
  readBack?: Reading;
  /** From the runner taking the write to the device's answer; and waiting for the link before that. */
  deviceMs?: number;
  queuedMs?: number;
}

export class DeviceWriter {
  private readonly points: Map<string, CommonPoint>;
  private readonly plans = new Map<string, unknown>();

  constructor(
    readonly device: LoadedDevice,
    private readonly primary: Joined,
    /** The pipeline's way in for readings (report filter, samples, buffer). */
    private readonly accept: (readings: Reading[], ts: number) => void,
  ) {
    this.points = new Map(device.points.map((p) => [p.name, p]));
  }

  point(name: string): CommonPoint | undefined {
    return this.points.get(name);
  }

  /** The driver's check of a value for the point (type, the range of the device's data type). */
  check(point: CommonPoint, value: unknown): WriteCheck {
    const d = this.primary.driver;
    if (!d.checkWrite || !d.write) return { ok: false, reason: `driver ${this.primary.spec.type} does not write` };
    return d.checkWrite(point, value);
  }

  /** Sends the write unless `deadline` passes first (the device down meanwhile): never stale. */
  async write(point: CommonPoint, value: Value, deadline: number): Promise<WriteResult> {
    const { driver, runner } = this.primary;
    let plan = this.plans.get(point.name);
    if (plan === undefined) this.plans.set(point.name, (plan = driver.plan([point])));
    const asked = performance.now();
    let started = 0;
    const out = await runner.write(this.device.name, deadline, async (link, signal) => {
      started = performance.now();
      const w = await driver.write!(point, value, link, signal);
      const deviceMs = performance.now() - started;
      if (!w.ok) return { w, deviceMs };
      // The write was taken; a read back that fails does not make it fail.
      const readings = await driver
        .read(plan, link, signal)
        .catch((err: Error): Reading[] => [{ point: point.name, value: null, quality: 'bad', reason: err.message }]);
      return { w, deviceMs, readings };
    });
    if (!out.ok) return { outcome: out.expired ? 'expired' : 'failed', reason: out.reason };
    const { w, deviceMs, readings } = out.value;
    const timings = { deviceMs: Math.round(deviceMs * 10) / 10, queuedMs: Math.round((started - asked) * 10) / 10 };
    if (!w.ok) return { outcome: w.refused ? 'refused' : 'failed', reason: w.reason, code: w.code, ...timings };
    const readBack = readings?.[0];
    if (readings && readBack?.quality !== 'bad') this.accept(readings, Date.now());
    return { outcome: 'ok', readBack, ...timings };
  }
}
