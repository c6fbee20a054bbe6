// The one door for every write, whichever way it comes in (the command topics, Sparkplug DCMD):
// the device and point must be running, the point's own limits (writable, allowed, min/max), the
// driver's check of the value, one rate limit per point shared by all ways in — then the write
// through the device's link runner (core/device-writer.ts). Every attempt is an audit log line
// and a count in edgeferry_writes_total.
import type { Logger } from 'pino';
import { echo, excerpt, REASON_CHARS } from '../core/bounded.js';
import type { DeviceWriter, WriteResult } from '../core/device-writer.js';
import type { Metrics } from '../health/metrics.js';
import { judgeValue, WriteRateLimit } from './command.js';
import { topicLevel } from '../publish/topics.js';

/** What every write attempt reports, in the audit line and in the command's result. */
export interface WriteReport {
  device: string;
  point: string;
  value: unknown;
  outcome: WriteResult['outcome'];
  reason?: string;
  code?: number | string;
}

export interface AuditLine extends WriteReport {
  request_id?: string | number;
  /** How it came in, when not through the command topics (e.g. DCMD). */
  via?: string;
}

export class WriteGate {
  private readonly rate = new WriteRateLimit();

  constructor(
    private readonly deps: {
      log: Logger;
      metrics: Metrics;
      writer(device: string): DeviceWriter | undefined;
      /** Every running device's writer (to find a name from its topic level). */
      writers?(): Iterable<DeviceWriter>;
    },
  ) {}

  /**
   * The device and point names that a command topic's levels stand for: with mqtt.topic_dot '_' a
   * point "Line1.Setpoint" is commanded on …/Line1_Setpoint/set. A level that names nothing is
   * returned as it is (and refused as unknown by write()).
   */
  resolve(deviceLevel: string, pointLevel: string, dot: string): { device: string; point: string } {
    if (dot === '.') return { device: deviceLevel, point: pointLevel };
    const writer = this.deps.writer(deviceLevel) ?? [...(this.deps.writers?.() ?? [])].find((w) => topicLevel(w.device.name, dot) === deviceLevel);
    if (!writer) return { device: deviceLevel, point: pointLevel };
    const point = writer.point(pointLevel) ?? writer.device.points.find((p) => topicLevel(p.name, dot) === pointLevel);
    return { device: writer.device.name, point: point?.name ?? pointLevel };
  }

  /** Checks, then writes unless `deadline` passes first; refusals are answered without sending anything. */
  async write(device: string, pointName: string, value: unknown, deadline: number, at = Date.now()): Promise<WriteResult> {
    const writer = this.deps.writer(device);
    if (!writer) return { outcome: 'refused', reason: `no running device "${device}"` };
    const point = writer.point(pointName);
    if (!point) return { outcome: 'refused', reason: `device "${device}" has no point "${pointName}"` };
    const allowed = judgeValue(point, value);
    if (!allowed.ok) return { outcome: allowed.outcome, reason: allowed.reason };
    const checked = writer.check(point, value);
    if (!checked.ok) return { outcome: 'refused', reason: checked.reason };
    const turn = this.rate.take(`${device}/${pointName}`, point, at);
    if (!turn.ok) return { outcome: turn.outcome, reason: turn.reason };
    return writer.write(point, checked.value, deadline);
  }

  /** The audit line and the count of one attempt. */
  audit(line: AuditLine): void {
    const known = this.deps.writer(line.device) ? line.device : '(unknown)';
    this.deps.metrics.writes.inc({ device: known, outcome: line.outcome });
    // Who asked is the broker's to say (its ACL); what, to which point, and how it ended.
    // Bounded: the value and the reason may carry whatever a sender put in (src/core/bounded.ts).
    const bounded = { audit: 'write', ...line, value: echo(line.value), reason: line.reason === undefined ? undefined : excerpt(line.reason, REASON_CHARS) };
    if (line.outcome === 'ok') this.deps.log.info(bounded, 'write applied');
    else this.deps.log.warn(bounded, `write ${line.outcome}`);
  }
}
