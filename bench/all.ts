// Runs every benchmark and writes BENCHMARKS.md: the machine, versions and date, the seed-plant
// and saturation figures against the targets, the 30-minute memory run's RSS series, and each
// benchmark's own output.
//
//   npm run bench:all                  # everything, including the 30-minute memory run (~40 min)
//   npm run bench:all -- --quick       # without the 30-minute run
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import * as ort from 'onnxruntime-node';
import { machine } from './lib.js';
import type { ProfileSummary } from './profile.js';

const values = scriptArgs('bench:all', 'Runs every benchmark and writes BENCHMARKS.md figures.', {
  quick: { type: 'boolean', default: false },
  minutes: { type: 'string', default: '30' },
  out: { type: 'string' },
});
const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'edgeferry-bench-all-'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const version = (name: string) => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
const mosquitto = spawnSync('/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'mosquitto ?';

function run(name: string, args: string[]): string {
  console.error(`running ${name} ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(here, `${name}.js`), ...args], { encoding: 'utf8', cwd: root, maxBuffer: 64 << 20 });
  const out = `${r.stdout}`.trim();
  console.error(`  ${name}: exit ${r.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return r.status === 0 ? out : `${out}\n(exit code ${r.status}: ${`${r.stderr}`.trim().split('\n').slice(-8).join(' / ')})`;
}
const readJson = <T>(f: string): T | undefined => {
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as T;
  } catch {
    return undefined;
  }
};

interface Plant {
  cpu_cores: number;
  rss_mb: { median: number; max: number; trend_mb_per_min: number; second_half_trend_mb_per_min: number };
  jitter_ms: { p50: number; p99: number };
  latency_ms: { p50: number; p99: number };
  baseline_ms: { p50: number; p99: number };
  lost: number;
  delivered_tags_per_s: number;
  offered_tags_per_s: number;
  el_verdicts_per_s: number;
  memory: { heap_used_mb: number; external_mb: number };
  rss_series: [number, number][];
  seconds: number;
}
interface Saturate {
  steps: { interval_ms: number; offered: number; delivered: number; cpu_cores: number; per_core: number }[];
  one_core: { delivered: number; per_core: number; cpu_cores: number };
  profile?: ProfileSummary;
}

interface NodeRedRun {
  shape: string;
  gateway: 'edgeferry' | 'node-red';
  cores: number;
  tagsPerCpuS: number;
  rssMedianMiB: number;
}

// The seed plant in both payload modes, twice each and interleaved (point, poll, point, poll): the
// machine is small and noisy, so each mode gets two runs from the same period.
const plantRuns: Record<'point' | 'poll', { out: string; r?: Plant }[]> = { point: [], poll: [] };
for (const i of [0, 1]) {
  for (const mode of ['point', 'poll'] as const) {
    const f = join(tmp, `plant-${mode}-${i}.json`);
    let out = run('plant', ['--seconds', '60', '--payload', mode, '--json', f]);
    // A run that failed to start (its reason is kept in the output) gets one more try.
    if (!readJson<Plant>(f)) out = `${out}\n(failed; run again)\n${run('plant', ['--seconds', '60', '--payload', mode, '--json', f])}`;
    plantRuns[mode].push({ out, r: readJson<Plant>(f) });
  }
}
const plant = plantRuns.point[0]?.r;
const satOut = run('saturate', ['--json', join(tmp, 'saturate.json')]);
const sat = readJson<Saturate>(join(tmp, 'saturate.json'));
const satPollOut = run('saturate', ['--payload', 'poll', '--intervals', '1000,250,100,50,25,15,10', '--json', join(tmp, 'saturate-poll.json')]);
const satPoll = readJson<Saturate>(join(tmp, 'saturate-poll.json'));
const nodeRedOut = run('nodered', ['--rounds', '2', '--seconds', '30', '--warmup', '15', '--json', join(tmp, 'nodered.json')]);
const nodeRed = readJson<{ runs: NodeRedRun[] }>(join(tmp, 'nodered.json'));
const elModels = ['--model', 'models/el-defect-lite,models/el-defect'];
const elOut = run('el', ['--images', '1000', ...elModels]);
// The real EL cells where the workplace has them (../shared/elpv; never in the repository).
const elpv = join(root, '../shared/elpv/images');
const elRealOut = existsSync(elpv) ? run('el', ['--cells', elpv, '--images', '1970', ...elModels]) : '';
const pipelineOut = run('pipeline', ['--plcs', '20', '--points', '50', '--interval', '100', '--seconds', '15']);
const bufferOut = run('buffer', []);
const floorOut = run('mqtt-floor', ['--rounds', '2', '--seconds', '20']);
const rowPointsOut = run('row-points', []);
const diskOut = run('full-disk', []);
const rtuOut = run('rtu', []);
const mstpOut = run('mstp', []);
const mstpPeerOut = run('mstp-peer', values.quick ? ['--seconds', '20', '--rounds', '1'] : ['--seconds', '60', '--rounds', '2']);
let long: Plant | undefined;
let longOut = '';
if (!values.quick) {
  longOut = run('plant', ['--seconds', String(Number(values.minutes) * 60), '--rss-every', '60', '--json', join(tmp, 'long.json')]);
  long = readJson<Plant>(join(tmp, 'long.json'));
}
rmSync(tmp, { recursive: true, force: true });

const ok = (good: boolean) => (good ? 'met' : '**missed**');
const f1 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '?' : x.toFixed(1));
const lines: string[] = [];
lines.push('# edgeferry benchmarks', '');
lines.push(
  `Written by \`npm run bench:all${values.quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Every table and bench output below is from that run; the findings at the end cite the runs they come from.`,
  '',
);
lines.push(
  `- machine: ${machine()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${cpus().length} cores shared by the gateway, the simulators, the broker and the subscriber`,
);
lines.push(
  `- edgeferry ${pkg.version}; ${mosquitto}; mqtt ${version('mqtt')}, better-sqlite3 ${version('better-sqlite3')}, modbus-serial ${version('modbus-serial')}, node-opcua ${version('node-opcua')}, onnxruntime-node ${ort.env.versions.common}`,
);
lines.push(
  "- the gateway runs as its own process (`edgeferry run`), with the buffer at its default durability (`synchronous: full`); CPU and RSS are that process's, worker threads included",
  '',
);
lines.push('## Targets', '');
lines.push(
  'Two payload modes: `mqtt.payload: point` (the default, one message per tag on its own topic) and `poll` (one message per device poll with all its points). Seed-plant figures are two 60-second runs per mode, interleaved.',
  '',
);
lines.push('| target | payload: point (run 1 / run 2) | | payload: poll (run 1 / run 2) | |', '|---|---|---|---|---|');
const both = (mode: 'point' | 'poll', show: (p: Plant) => string, good: (p: Plant) => boolean) => {
  const rs = plantRuns[mode].map((x) => x.r);
  if (rs.some((r) => !r)) return ['no figures (see below)', ''];
  return [rs.map((r) => show(r!)).join(' / '), ok(rs.every((r) => good(r!)))];
};
const row = (target: string, show: (p: Plant) => string, good: (p: Plant) => boolean) =>
  lines.push(`| ${target} | ${[...both('point', show, good), ...both('poll', show, good)].join(' | ')} |`);
row(
  'seed plant: ≤ 0.15 of one core',
  (p) => `${p.cpu_cores} cores`,
  (p) => p.cpu_cores <= 0.15,
);
row(
  'seed plant: RSS ≤ 200 MiB',
  (p) => `median ${p.rss_mb.median}, max ${p.rss_mb.max} MiB`,
  (p) => p.rss_mb.max <= 200,
);
row(
  'seed plant: device→broker p99 ≤ 50 ms',
  (p) => `p50 ${f1(p.latency_ms.p50)}, p99 ${f1(p.latency_ms.p99)} ms`,
  (p) => p.latency_ms.p99 <= 50,
);
row(
  'seed plant: poll jitter p99 ≤ 20 ms',
  (p) => `p50 ${f1(p.jitter_ms.p50)}, p99 ${f1(p.jitter_ms.p99)} ms`,
  (p) => p.jitter_ms.p99 <= 20,
);
row(
  'seed plant: samples lost = 0',
  (p) => `${p.lost} seq gaps, ${p.delivered_tags_per_s * p.seconds} tags delivered`,
  (p) => p.lost === 0,
);
const cpuOf = (mode: 'point' | 'poll') => plantRuns[mode].map((x) => x.r?.cpu_cores ?? NaN);
const [pa, pb] = cpuOf('point');
const [qa, qb] = cpuOf('poll');
lines.push(
  '',
  `CPU of poll against point, each poll run against the point run just before it: ×${(qa! / pa!).toFixed(2)} and ×${(qb! / pb!).toFixed(2)}. The broker alone (same run, same subscriber): p99 ${plant?.baseline_ms.p99 ?? '?'} ms.`,
  '',
);
lines.push('| target | payload: point | | payload: poll | |', '|---|---|---|---|---|');
const satCell = (x: Saturate | undefined) =>
  x
    ? [`${x.one_core.per_core} tags/s per core (${x.one_core.delivered} tags/s at ${x.one_core.cpu_cores} cores)`, ok(x.one_core.per_core >= 50_000)]
    : ['no figures (see below)', ''];
lines.push(`| saturation: ≥ 50,000 tags/s per core at QoS 1 | ${[...satCell(sat), ...satCell(satPoll)].join(' | ')} |`);
for (const shape of ['seed', 'fast']) {
  const runs = nodeRed?.runs.filter((r) => r.shape === shape) ?? [];
  const med = (g: NodeRedRun['gateway'], k: 'cores' | 'tagsPerCpuS' | 'rssMedianMiB') => {
    const xs = runs
      .filter((r) => r.gateway === g)
      .map((r) => r[k])
      .sort((a, b) => a - b);
    return xs.length ? (xs[(xs.length - 1) >> 1]! + xs[xs.length >> 1]!) / 2 : NaN;
  };
  const ratio = med('edgeferry', 'tagsPerCpuS') / med('node-red', 'tagsPerCpuS');
  const rss = med('edgeferry', 'rssMedianMiB') / med('node-red', 'rssMedianMiB');
  const what = shape === 'seed' ? '137 PLCs × 50 @ 1 s' : '20 PLCs × 50 @ 100 ms';
  lines.push(
    `| against Node-RED, ${what}: ≥ 2× its tags per CPU-second${shape === 'seed' ? ', RSS ≤ 0.8×' : ''} | ×${ratio.toFixed(2)} (${med('edgeferry', 'cores').toFixed(3)} vs ${med('node-red', 'cores').toFixed(3)} cores), RSS ×${rss.toFixed(2)} | ${ok(ratio >= 2 && (shape !== 'seed' || rss <= 0.8))} | | |`,
  );
}
if (long) {
  // Flat: no upward trend once V8 has grown its heap to its working size (the second half).
  const flat = long.rss_mb.second_half_trend_mb_per_min <= 0.5;
  lines.push(
    `| memory flat over ${values.minutes} minutes (payload: point) | second-half trend ${long.rss_mb.second_half_trend_mb_per_min} MiB/min; whole run ${long.rss_mb.trend_mb_per_min} MiB/min (median ${long.rss_mb.median}, max ${long.rss_mb.max} MiB) | ${ok(flat)} | | |`,
  );
} else lines.push('| memory flat over 30 minutes | not run (`--quick`) | | | |');
lines.push('');
lines.push('## Seed plant (`bench/plant.ts`)', '');
lines.push(
  '137 simulated PLCs (130 Modbus TCP, 7 OPC UA), 50 tags each every second (6,850 tags/s), an EL camera at 5 images/s, through the gateway to a local mosquitto over mutual TLS at QoS 1; 60 s measured after a 10 s warm-up. In the order they ran:',
  '',
);
for (const i of [0, 1]) for (const mode of ['point', 'poll'] as const) lines.push('```', plantRuns[mode][i]!.out, '```', '');
lines.push('## Saturation (`bench/saturate.ts`)', '', '```', satOut, '```', '', '```', satPollOut, '```', '');
if (!values.quick && !long) lines.push(`## Memory over ${values.minutes} minutes: no figures`, '', '```', longOut, '```', '');
if (long) {
  lines.push(`## Memory over ${values.minutes} minutes (\`bench/plant.ts --seconds ${Number(values.minutes) * 60}\`)`, '');
  lines.push('RSS of the gateway each minute (seconds since the start, MiB):', '');
  lines.push('| ' + long.rss_series.map(([t]) => `${t}`).join(' | ') + ' |');
  lines.push('|' + long.rss_series.map(() => '---').join('|') + '|');
  lines.push('| ' + long.rss_series.map(([, m]) => `${m}`).join(' | ') + ' |', '');
  lines.push('```', longOut, '```', '');
}
lines.push('## Against Node-RED (`bench/nodered.ts`)', '');
lines.push(
  'The same PLC farm (its own process), the same mosquitto over mutual TLS, QoS 1, one message per device poll on both sides: edgeferry with `mqtt.payload: poll` and `synchronous: full`, Node-RED with node-red-contrib-modbus (modbus-read → a function node decoding the float32 → mqtt out). Rounds interleave the two.',
  '',
  '```',
  nodeRedOut,
  '```',
  '',
);
lines.push('## EL inference stage (`bench/el.ts`)', '', 'Both shipped models in the same run; synthetic cells:', '', '```', elOut, '```', '');
if (elRealOut) lines.push('On the 1,970 real ELPV cells (latency timed after 20 untimed images):', '', '```', elRealOut, '```', '');
lines.push('## Pipeline, 20 PLCs at 10 polls/s (`bench/pipeline.ts`)', '', '```', pipelineOut, '```', '');
lines.push('## Store-and-forward buffer (`bench/buffer.ts`)', '', '```', bufferOut, '```', '');
lines.push('## The floor of a message per tag: mqtt.js alone (`bench/mqtt-floor.ts`)', '', '```', floorOut, '```', '');
lines.push("## A row's values from its source against parsed (`bench/row-points.ts`)", '', '```', rowPointsOut, '```', '');
lines.push('## The buffer on a full disk (`bench/full-disk.ts`)', '', '```', diskOut, '```', '');
lines.push('## Modbus RTU over a virtual serial line (`bench/rtu.ts`)', '', '```', rtuOut, '```', '');
lines.push('## BACnet MS/TP on a paced virtual RS485 line (`bench/mstp.ts`)', '', '```', mstpOut, '```', '');
lines.push('## BACnet MS/TP against bacnet-stack under load (`bench/mstp-peer.ts`)', '', '```', mstpPeerOut, '```', '');
const notes = join(root, 'bench', 'FINDINGS.md');
try {
  lines.push(readFileSync(notes, 'utf8').trim(), '');
} catch {
  /* no findings file */
}
writeFileSync(values.out ?? join(root, 'BENCHMARKS.md'), lines.join('\n'));
console.error(`wrote ${values.out ?? join(root, 'BENCHMARKS.md')}`);
