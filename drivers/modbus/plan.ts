// The read planner: merges nearby addresses into the fewest requests within protocol limits and
// splits at gaps. Pure; tested in test/unit/modbus-plan.test.ts.
import { typeWidth } from './codec.js';
import type { Area, ModbusPointConfig } from './schema.js';

export interface PlannedPoint {
  /** Position of the point in the group as given to planReads; readings come back in this order. */
  index: number;
  point: ModbusPointConfig;
  /** Offset of the point's first register (or bit) inside its block. */
  offset: number;
  width: number;
}

export interface ReadBlock {
  area: Area;
  start: number;
  length: number;
  points: PlannedPoint[];
}

export interface PlanLimits {
  maxGap: number;
  maxRegisters: number;
  maxBits: number;
}

export const isBitArea = (area: Area): boolean => area === 'coil' || area === 'discrete';

/** Registers (or bits, for coils and discrete inputs) a point spans. */
export function pointWidth(p: ModbusPointConfig): number {
  if (isBitArea(p.area)) return 1;
  return p.count ?? typeWidth(p.type) ?? 1;
}

export function planReads(points: ModbusPointConfig[], limits: PlanLimits): ReadBlock[] {
  const byArea = new Map<Area, PlannedPoint[]>();
  points.forEach((point, index) => {
    const list = byArea.get(point.area) ?? [];
    list.push({ index, point, offset: 0, width: pointWidth(point) });
    byArea.set(point.area, list);
  });

  const blocks: ReadBlock[] = [];
  for (const [area, list] of byArea) {
    const bits = isBitArea(area);
    const limit = bits ? limits.maxBits : limits.maxRegisters;
    const gap = bits ? limits.maxGap * 16 : limits.maxGap;
    list.sort((a, b) => a.point.address - b.point.address || b.width - a.width);
    let cur: ReadBlock | undefined;
    for (const pp of list) {
      const start = pp.point.address;
      const end = start + pp.width;
      if (cur) {
        const curEnd = cur.start + cur.length;
        const newEnd = Math.max(curEnd, end);
        if (start - curEnd <= gap && newEnd - cur.start <= limit) {
          cur.length = newEnd - cur.start;
          cur.points.push({ ...pp, offset: start - cur.start });
          continue;
        }
      }
      cur = { area, start, length: pp.width, points: [{ ...pp, offset: 0 }] };
      blocks.push(cur);
    }
  }
  return blocks;
}
