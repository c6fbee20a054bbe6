// What an output that needs the values (Sparkplug B, InfluxDB) pays to read a poll row's points:
// from what the row was rendered from (a live row, BufferedRow.source) against parsing its JSON
// body (a row read back from SQLite) — the same rowPoints() call, rows of the seed plant's shape
// (50 float32 points). Interleaved rounds; prints each round and the medians.
//
//   npm run bench:row-points -- [--rows 1000] [--rounds 6]
import { encodePollReadings } from '../src/buffer/body.js';
import { rowPoints, type BufferedRow } from '../src/buffer/rows.js';
import type { CommonPoint } from '../src/config/schema.js';
import type { Reading } from '../src/core/driver.js';
import { scriptArgs } from '../src/core/script-args.js';
import { machine } from './lib.js';

const values = scriptArgs('bench:row-points', "A poll row's points from its source against from its JSON body.", {
  rows: { type: 'string', default: '1000' },
  rounds: { type: 'string', default: '6' },
});
const POINTS = 50;
const points = new Map(Array.from({ length: POINTS }, (_, k) => [`p${k}`, { name: `p${k}` } as unknown as CommonPoint]));
const live: BufferedRow[] = Array.from({ length: Number(values.rows) }, (_, i) => {
  const readings: Reading[] = Array.from({ length: POINTS }, (_, k) => ({ point: `p${k}`, value: Math.fround(Math.random() * 1000), quality: 'good' }));
  const m = encodePollReadings('mb-1', 'tcp://127.0.0.1:502', 1.8e12 + i, readings, points)[0]!;
  return { seq: i + 1, ts: m.ts, device: m.device, point: m.point, prio: 1, kind: 1, body: m.body, pending: 1, source: m.source };
});
const stored = live.map(({ source: _, ...r }) => r);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
};

console.log(`rowPoints on ${live.length} poll rows of ${POINTS} float32 points; ${machine()}`);
const us: Record<string, number[]> = { source: [], parse: [] };
let points_ = 0;
for (let r = 0; r < Number(values.rounds); r++) {
  const order: [string, BufferedRow[]][] =
    r % 2
      ? [
          ['source', live],
          ['parse', stored],
        ]
      : [
          ['parse', stored],
          ['source', live],
        ];
  for (const [name, rows] of order) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < 20; k++) for (const row of rows) points_ += rowPoints(row).length;
    const perRow = Number(process.hrtime.bigint() - t0) / 1e3 / (20 * rows.length);
    us[name]!.push(perRow);
    console.log(`  round ${r + 1} ${name.padEnd(6)} ${perRow.toFixed(2)} µs per row`);
  }
}
const s = median(us.source!);
const p = median(us.parse!);
console.log(`  median: source ${s.toFixed(2)} µs, parse ${p.toFixed(2)} µs per row; source/parse ×${(s / p).toFixed(3)} (${points_} points read)`);
