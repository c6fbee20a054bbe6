import { describe, expect, it } from 'vitest';
import type { CommonPoint } from '../../src/config/schema.js';
import { ReportFilter } from '../../src/core/report-filter.js';
import type { Sample } from '../../src/core/sample.js';

const point = (extra: Partial<CommonPoint>): CommonPoint => ({
  name: 'p',
  report: 'on_change',
  deadband: 0.5,
  priority: 'normal',
  writable: false,
  write_min_interval_ms: 1000,
  ...extra,
});
const s = (value: number | null, ts: number, quality: Sample['quality'] = 'good'): Sample => ({ ts, device: 'd', point: 'p', value, quality, channel: 'c' });

describe('report by exception', () => {
  it('passes a value only when it moves by more than the deadband, or its quality changes', () => {
    const f = new ReportFilter(new Map([['p', point({})]]));
    const out = [s(10, 0), s(10.4, 1), s(10.6, 2), s(10.2, 3), s(null, 4, 'bad'), s(10.2, 5)].map((x) => f.pass(x));
    expect(out).toEqual([true, false, true, false, true, true]);
  });

  it('republishes an unchanged value after report_max_interval_ms', () => {
    const f = new ReportFilter(new Map([['p', point({ report_max_interval_ms: 1000 })]]));
    expect([s(1, 0), s(1, 999), s(1, 1000), s(1, 1500)].map((x) => f.pass(x))).toEqual([true, false, true, false]);
  });

  it('passes everything for report: always', () => {
    const f = new ReportFilter(new Map([['p', point({ report: 'always' })]]));
    expect([s(1, 0), s(1, 1)].map((x) => f.pass(x))).toEqual([true, true]);
  });
});
