// The cost of a second output: the seed plant (bench/plant.ts) with MQTT alone and with MQTT +
// InfluxDB (a real influxd on loopback), run alternately in one invocation (A B A B …) so that the
// machine's noise falls on both alike. Prints each run, then the median CPU and RSS of each and
// their ratio (issue 35: both outputs ≤ ×1.3 the CPU of MQTT alone).
//
//   npm run bench:outputs -- [--pairs 2 --seconds 45 --payload point]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { machine, pct } from './lib.js';

const values = scriptArgs('bench:outputs', 'MQTT alone against MQTT + InfluxDB at the seed plant, interleaved.', {
  pairs: { type: 'string', default: '2' },
  seconds: { type: 'string', default: '45' },
  payload: { type: 'string', default: 'point' },
  'el-rate': { type: 'string', default: '0' },
});
const here = fileURLToPath(new URL('.', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'edgeferry-bench-outputs-'));
interface Run {
  cpu_cores: number;
  rss_mb: { median: number };
  delivered_tags_per_s: number;
  lost: number;
  influx_points: number;
}
const runs: Record<'mqtt' | 'both', Run[]> = { mqtt: [], both: [] };
for (let i = 0; i < Number(values.pairs); i++) {
  for (const mode of i % 2 ? (['both', 'mqtt'] as const) : (['mqtt', 'both'] as const)) {
    const json = join(tmp, `${mode}-${i}.json`);
    const args = [
      '--seconds',
      values.seconds,
      '--payload',
      values.payload,
      '--el-rate',
      values['el-rate'],
      '--json',
      json,
      ...(mode === 'both' ? ['--influx'] : []),
    ];
    const r = spawnSync(process.execPath, [join(here, 'plant.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`plant run ${mode} #${i} failed (exit ${r.status}):\n${r.stdout}`);
    const run = JSON.parse(readFileSync(json, 'utf8')) as Run;
    runs[mode].push(run);
    console.log(
      `${mode === 'mqtt' ? 'MQTT alone     ' : 'MQTT + InfluxDB'} #${i + 1}: ${run.cpu_cores} cores, RSS ${run.rss_mb.median} MiB, ${run.delivered_tags_per_s} tags/s on MQTT, lost ${run.lost}${mode === 'both' ? `, ${run.influx_points} points in InfluxDB` : ''}`,
    );
  }
}
rmSync(tmp, { recursive: true, force: true });
const med = (xs: number[]) => pct(xs, 50);
const cpu = { mqtt: med(runs.mqtt.map((r) => r.cpu_cores)), both: med(runs.both.map((r) => r.cpu_cores)) };
const rss = { mqtt: med(runs.mqtt.map((r) => r.rss_mb.median)), both: med(runs.both.map((r) => r.rss_mb.median)) };
console.log(machine());
console.log(
  `seed plant, payload ${values.payload}, ${values.seconds} s per run, ${values.pairs} interleaved pairs: CPU median MQTT alone ${cpu.mqtt} cores, MQTT + InfluxDB ${cpu.both} cores → ×${(cpu.both / cpu.mqtt).toFixed(2)}; RSS ${rss.mqtt} → ${rss.both} MiB (×${(rss.both / rss.mqtt).toFixed(2)})`,
);
