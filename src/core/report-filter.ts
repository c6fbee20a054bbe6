import type { CommonPoint } from '../config/schema.js';
import type { Value } from './driver.js';
import type { Sample } from './sample.js';

interface Last {
  value: Value;
  quality: string;
  ts: number;
}

/**
 * Report-by-exception. Points with `report: on_change` pass only when their value moves by more
 * than `deadband`, their quality changes, or `report_max_interval_ms` has passed. One instance per
 * device; state lives in memory only, so after a restart the first value of each point is sent.
 */
export class ReportFilter {
  private readonly last = new Map<string, Last>();
  constructor(private readonly points: ReadonlyMap<string, CommonPoint>) {}

  pass(s: Sample): boolean {
    const p = this.points.get(s.point);
    if (!p || p.report !== 'on_change') return true;
    const prev = this.last.get(s.point);
    const changed =
      !prev ||
      prev.quality !== s.quality ||
      (p.report_max_interval_ms !== undefined && s.ts - prev.ts >= p.report_max_interval_ms) ||
      moved(prev.value, s.value, p.deadband);
    if (changed) this.last.set(s.point, { value: s.value, quality: s.quality, ts: s.ts });
    return changed;
  }
}

function moved(a: Value, b: Value, deadband: number): boolean {
  if (typeof a === 'number' && typeof b === 'number') return deadband > 0 ? Math.abs(a - b) > deadband : a !== b;
  return a !== b;
}
