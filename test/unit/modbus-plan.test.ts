import { describe, expect, it } from 'vitest';
import { planReads } from '../../drivers/modbus/plan.js';
import type { ModbusPointConfig } from '../../drivers/modbus/schema.js';
import { pt } from '../fixtures/modbus-point.js';

const limits = { maxGap: 4, maxRegisters: 125, maxBits: 2000 };
const shape = (points: ModbusPointConfig[], l = limits) => planReads(points, l).map((b) => `${b.area}@${b.start}[${b.length}]`);

describe('modbus read planner', () => {
  it('merges nearby registers into one request and splits at gaps wider than max_gap', () => {
    expect(shape([pt('a', 0), pt('b', 2, { type: 'float32' }), pt('c', 8), pt('d', 20)])).toEqual(['holding@0[9]', 'holding@20[1]']);
  });

  it('never exceeds 125 registers per request', () => {
    const points = Array.from({ length: 100 }, (_, i) => pt(`p${i}`, i * 2, { type: 'float32' }));
    const blocks = planReads(points, limits);
    // 62 float32 points fill 124 registers; a 63rd would need 126.
    expect(blocks.map((b) => b.length)).toEqual([124, 76]);
    expect(blocks.every((b) => b.points.every((p) => p.offset + p.width <= b.length))).toBe(true);
  });

  it('respects a lower per-device limit', () => {
    expect(shape([pt('a', 0), pt('b', 1), pt('c', 2)], { ...limits, maxRegisters: 2 })).toEqual(['holding@0[2]', 'holding@2[1]']);
  });

  it('plans coils by bits (2000 per request) and keeps areas apart', () => {
    const coils = Array.from({ length: 2001 }, (_, i) => pt(`c${i}`, i, { area: 'coil', type: 'bool' }));
    expect(shape([...coils, pt('h', 0)])).toEqual(['coil@0[2000]', 'coil@2000[1]', 'holding@0[1]']);
  });

  it('returns readings in the order points were given, whatever the address order', () => {
    const blocks = planReads([pt('z', 5), pt('a', 1)], limits);
    expect(blocks[0]!.points.map((p) => [p.point.name, p.index, p.offset])).toEqual([
      ['a', 1, 0],
      ['z', 0, 4],
    ]);
  });

  it('lets two bits of one register share it', () => {
    expect(shape([pt('x', 5, { type: 'bool', bit: 0 }), pt('y', 5, { type: 'bool', bit: 1 })])).toEqual(['holding@5[1]']);
  });
});
