// The seed plant: 137 simulated PLCs (Modbus TCP, and some OPC UA servers), 50 tags each polled
// every second, and an EL camera at 5 images/s, through the whole gateway (`edgeferry run` in its
// own process, SQLite buffer with its default durability, the EL stage's worker thread) to a
// local mosquitto over mutual TLS, and a subscriber here. Prints the gateway's CPU (cores) and
// RSS, poll jitter, device→broker latency from each sample's own timestamp (with the broker's own
// latency as the baseline, measured in the same run) and samples lost (seq gaps; must be 0).
//
//   npm run bench:plant -- --seconds 60 [--plcs 137 --opcua 7 --points 50 --interval 1000 --el-rate 5]
//   npm run bench:plant -- --seconds 1800 --rss-every 60     # the 30-minute memory run
//   npm run bench:plant -- --payload poll                     # one message per device poll
//   npm run bench:plant -- --influx                           # InfluxDB (a real influxd) as a second output
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { startElCamera } from '../simulators/el-camera/index.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../simulators/modbus/index.js';
import { PLANT_NODES, startOpcuaSim, type OpcuaSimulator } from '../simulators/opcua/index.js';
import { freePort } from '../simulators/free-port.js';
import { startInfluxd } from '../simulators/influxdb/index.js';
import { brokerBaseline, connectClient, machine, pct, procStat, slope, sineRegisters } from './lib.js';
import { printSummary, summarize } from './profile.js';

const values = scriptArgs('bench:plant', 'A seed plant side by side in one run.', {
  plcs: { type: 'string', default: '137' },
  opcua: { type: 'string', default: '7' },
  points: { type: 'string', default: '50' },
  interval: { type: 'string', default: '1000' },
  seconds: { type: 'string', default: '60' },
  warmup: { type: 'string', default: '10' },
  'el-rate': { type: 'string', default: '5' },
  'rss-every': { type: 'string', default: '10' },
  json: { type: 'string' },
  profile: { type: 'boolean', default: false },
  'node-flags': { type: 'string', default: '' },
  payload: { type: 'string', default: 'point' },
  sync: { type: 'string', default: 'full' },
  influx: { type: 'boolean', default: false },
});
const PLCS = Number(values.plcs);
const OPCUA = Math.min(PLCS, Number(values.opcua));
const POINTS = Number(values.points);
const INTERVAL = Number(values.interval);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const EL_RATE = Number(values['el-rate']);
const RSS_EVERY = Number(values['rss-every']);
const PAYLOAD = values.payload === 'poll' ? 'poll' : 'point';
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/main.js');
const OPCUA_NODES = Object.values(PLANT_NODES).filter((n) => ['Double', 'Float', 'UInt32', 'Int16', 'Int64'].includes(n.dataType));

const dir = mkdtempSync(join(tmpdir(), 'edgeferry-plant-'));
const broker = await startMosquitto({ unboundedQueues: true });
const modbus: ModbusSimulator[] = [];
const opcua: OpcuaSimulator[] = [];
for (let i = 0; i < PLCS - OPCUA; i++) {
  modbus.push(
    await startSim({
      registers: sineRegisters(POINTS),
    }),
  );
}
for (let i = 0; i < OPCUA; i++) opcua.push(await startOpcuaSim({ pkiDir: join(dir, `pki-${i}`) }));

const devices = [
  ...modbus.map(
    (s, i) => `  - name: mb-${i}
    driver: modbus_tcp
    poll_interval_ms: ${INTERVAL}
    connection: { host: 127.0.0.1, port: ${s.port} }
    points:
${Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, address: ${k * 2}, type: float32 }`).join('\n')}`,
  ),
  ...opcua.map(
    (s, i) => `  - name: ua-${i}
    driver: opcua
    poll_interval_ms: ${INTERVAL}
    connection: { endpoint: "${s.endpoint}", security_policy: None, security_mode: None }
    points:
${Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, node_id: "${OPCUA_NODES[k % OPCUA_NODES.length]!.nodeId}" }`).join('\n')}`,
  ),
];
// Picked after the simulators have bound theirs (a port taken between here and the gateway's bind
// would stop the gateway at start).
const HEALTH_PORT = await freePort();
// A second output, InfluxDB 1.6 on loopback, when asked (the cost of two outputs against one).
const influx = values.influx ? await startInfluxd() : undefined;
if (influx) await influx.query('CREATE DATABASE plant');
writeFileSync(join(dir, 'devices.yaml'), `version: 1\ndevices:\n${devices.join('\n')}\n`);
const inbox = join(dir, 'inbox');
mkdirSync(inbox);
writeFileSync(
  join(dir, 'gateway.yaml'),
  `version: 1
site: plant
gateway_id: gw
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  payload: ${PAYLOAD}
  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }
${influx ? `outputs:\n  influxdb: { url: ${influx.url}, api: v1, database: plant }\n` : ''}buffer: { path: buffer.db, synchronous: ${values.sync === 'normal' ? 'normal' : 'full'} }
logging: { level: warn }
health: { port: ${HEALTH_PORT} }
${
  EL_RATE > 0
    ? `inference:
  model_dir: ${join(root, 'models/el-defect')}
  inbox: ${inbox}
  id_pattern: '^(?<line>L\\d+)_(?<station>S\\d+)_(?<cell>\\d+)\\.png$'
`
    : ''
}`,
);

const sub = await connectClient(broker);
await sub.subscribeAsync('plant/#', { qos: 1 });
const baseLat = await brokerBaseline(broker, sub);

// What the subscriber sees while measuring.
let measuring = false;
const lat: number[] = [];
const elLat: number[] = [];
const seqs = new Set<number>();
const pollTs = new Map<string, Set<number>>();
let received = 0;
let tags = 0;
let elVerdicts = 0;
sub.on('message', (topic, payload) => {
  if (!measuring || topic.includes('/status')) return;
  const text = payload.toString();
  const seq = Number(/"seq":(\d+)/.exec(text)?.[1]);
  const ts = Date.parse(/"ts":"([^"]+)"/.exec(text)?.[1] ?? '');
  if (!Number.isFinite(seq) || !Number.isFinite(ts)) return;
  received++;
  seqs.add(seq);
  const now = Date.now();
  if (topic.startsWith('plant/gw/el/')) {
    elVerdicts++;
    elLat.push(now - ts);
    return;
  }
  lat.push(now - ts);
  // A poll message carries all points of the poll: count them (one "quality" per point).
  if (PAYLOAD === 'poll') for (let i = text.indexOf('"quality"'); i >= 0; i = text.indexOf('"quality"', i + 9)) tags++;
  else tags++;
  const device = topic.split('/')[2]!;
  let set = pollTs.get(device);
  if (!set) pollTs.set(device, (set = new Set()));
  set.add(ts);
});

const profDir = join(dir, 'prof');
const gw = spawn(
  process.execPath,
  [
    ...values['node-flags'].split(' ').filter(Boolean),
    ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
    cli,
    'run',
    '--config',
    join(dir, 'gateway.yaml'),
  ],
  { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, MALLOC_ARENA_MAX: '2' } },
);
let gwExit: number | null | undefined;
gw.once('exit', (code) => (gwExit = code));
const camera = EL_RATE > 0 ? startElCamera({ inbox, rate: EL_RATE, defectShare: 0.2 }) : undefined;
const rss: { t: number; mb: number }[] = [];
const t00 = performance.now();
const sampler = setInterval(() => rss.push({ t: (performance.now() - t00) / 1000, mb: procStat(gw.pid!).rssKb / 1024 }), 1000);
await new Promise((r) => setTimeout(r, WARMUP * 1000));
if (gwExit !== undefined) throw new Error(`the gateway exited with code ${gwExit} during the warm-up (its stderr is above)`);
measuring = true;
const s0 = procStat(gw.pid!);
const t0 = performance.now();
let lastPrint = 0;
while (performance.now() - t0 < SECONDS * 1000) {
  await new Promise((r) => setTimeout(r, 1000));
  const el = (performance.now() - t0) / 1000;
  if (SECONDS > 120 && el - lastPrint >= RSS_EVERY) {
    lastPrint = el;
    console.error(`  ${el.toFixed(0)} s: RSS ${(procStat(gw.pid!).rssKb / 1024).toFixed(1)} MiB, ${received} samples`);
  }
}
const s1 = procStat(gw.pid!);
// Where the memory is, as the gateway's own /metrics says (V8 heap, external buffers, RSS).
const metricsText = await fetch(`http://127.0.0.1:${HEALTH_PORT}/metrics`).then(
  (r) => r.text(),
  () => '',
);
const metric = (name: string) => Number(new RegExp(`^edgeferry_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metricsText)?.[1] ?? NaN) / 1048576;
const memory = {
  heap_used_mb: +metric('nodejs_heap_size_used_bytes').toFixed(1),
  heap_total_mb: +metric('nodejs_heap_size_total_bytes').toFixed(1),
  external_mb: +metric('nodejs_external_memory_bytes').toFixed(1),
};
const elapsed = (performance.now() - t0) / 1000;
measuring = false;
clearInterval(sampler);
await camera?.stop();
const exited = new Promise((r) => gw.once('exit', r));
gw.kill('SIGTERM');
await exited;
await sub.endAsync();
if (values.profile) {
  const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
  if (f) printSummary(summarize(join(profDir, f)));
}
await Promise.all(modbus.map((s) => s.stop()));
await Promise.all(opcua.map((s) => s.stop()));
await broker.stop();
const influxPoints = influx ? ((await influx.query('SELECT count("seq") FROM edgeferry', 'plant')).results?.[0]?.series?.[0]?.values?.[0]?.[1] as number) : 0;
await influx?.stop();
rmSync(dir, { recursive: true, force: true });

// Figures.
let lo = Infinity;
let hi = -Infinity;
for (const s of seqs) {
  lo = Math.min(lo, s);
  hi = Math.max(hi, s);
}
let lost = 0;
for (let s = lo; s <= hi; s++) if (!seqs.has(s)) lost++;
const jitter: number[] = [];
for (const set of pollTs.values()) {
  const ts = [...set].sort((a, b) => a - b);
  for (let i = 1; i < ts.length; i++) jitter.push(Math.abs(ts[i]! - ts[i - 1]! - INTERVAL));
}
const offered = (PLCS * POINTS * 1000) / INTERVAL;
const measured = rss.filter((r) => r.t >= WARMUP);
const rssMb = measured.map((r) => r.mb);
const trend = slope(
  measured.map((r) => r.t / 60),
  rssMb,
);
// The trend once warmed up: V8 grows its heap to a steady size in the first minutes.
const late = measured.filter((r) => r.t >= WARMUP + SECONDS / 2);
const lateTrend =
  late.length > 2
    ? slope(
        late.map((r) => r.t / 60),
        late.map((r) => r.mb),
      )
    : NaN;
const result = {
  plcs: PLCS,
  modbus: PLCS - OPCUA,
  opcua: OPCUA,
  points: POINTS,
  interval_ms: INTERVAL,
  seconds: Math.round(elapsed),
  offered_tags_per_s: offered,
  payload: PAYLOAD,
  delivered_tags_per_s: Math.round(tags / elapsed),
  messages_per_s: Math.round(received / elapsed),
  el_rate: EL_RATE,
  el_verdicts_per_s: +(elVerdicts / elapsed).toFixed(2),
  cpu_cores: +((s1.cpuS - s0.cpuS) / elapsed).toFixed(3),
  cpu_user_cores: +((s1.userS - s0.userS) / elapsed).toFixed(3),
  cpu_sys_cores: +((s1.sysS - s0.sysS) / elapsed).toFixed(3),
  memory,
  rss_mb: {
    median: +pct(rssMb, 50).toFixed(1),
    max: +rssMb.reduce((a, b) => Math.max(a, b), 0).toFixed(1),
    trend_mb_per_min: +trend.toFixed(3),
    second_half_trend_mb_per_min: +lateTrend.toFixed(3),
  },
  jitter_ms: { p50: pct(jitter, 50), p99: pct(jitter, 99), n: jitter.length },
  latency_ms: { p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length },
  el_latency_ms: { p50: pct(elLat, 50), p99: pct(elLat, 99) },
  baseline_ms: { p50: +pct(baseLat, 50).toFixed(2), p99: +pct(baseLat, 99).toFixed(2) },
  lost,
  seq_range: [lo, hi],
  influx_points: influxPoints,
  rss_series: measured.filter((_, i) => i % RSS_EVERY === 0).map((r) => [Math.round(r.t), +r.mb.toFixed(1)]),
  machine: machine(),
};
console.log(
  `edgeferry seed plant${influx ? ' + InfluxDB output' : ''} — ${PLCS} PLCs (${PLCS - OPCUA} Modbus TCP, ${OPCUA} OPC UA) × ${POINTS} tags every ${INTERVAL} ms = ${offered} tags/s offered, EL camera ${EL_RATE} images/s; mqtt.payload ${PAYLOAD} (${PAYLOAD === 'poll' ? 'one message per device poll' : 'one message per tag'}), buffer synchronous ${values.sync}; ${result.seconds} s measured after ${WARMUP} s warm-up`,
);
console.log(result.machine);
console.log(
  `delivered       ${result.delivered_tags_per_s} tags/s in ${result.messages_per_s} messages/s, ${result.el_verdicts_per_s} EL verdicts/s; lost ${lost} messages (seqs ${lo}..${hi})`,
);
if (influx) console.log(`InfluxDB        ${influxPoints} points written (the second output, drained at stop)`);
console.log(`gateway CPU     ${result.cpu_cores} cores (user ${result.cpu_user_cores}, kernel ${result.cpu_sys_cores})`);
console.log(
  `gateway RSS     median ${result.rss_mb.median} MiB, max ${result.rss_mb.max} MiB, trend ${result.rss_mb.trend_mb_per_min} MiB/min (second half ${result.rss_mb.second_half_trend_mb_per_min} MiB/min)`,
);
console.log(
  `memory          V8 heap used ${memory.heap_used_mb} MiB of ${memory.heap_total_mb} MiB, external ${memory.external_mb} MiB (the rest of RSS: code, native libraries, SQLite, TLS)`,
);
console.log(`poll jitter     p50 ${result.jitter_ms.p50.toFixed(1)} ms, p99 ${result.jitter_ms.p99.toFixed(1)} ms (n=${jitter.length})`);
console.log(
  `device→broker   p50 ${result.latency_ms.p50.toFixed(1)} ms, p99 ${result.latency_ms.p99.toFixed(1)} ms (n=${lat.length} messages); EL verdict→subscriber p50 ${result.el_latency_ms.p50.toFixed(0)} ms`,
);
console.log(
  `baseline        broker alone p50 ${result.baseline_ms.p50} ms, p99 ${result.baseline_ms.p99} ms → gateway/baseline p50 ×${(result.latency_ms.p50 / result.baseline_ms.p50).toFixed(1)}, p99 ×${(result.latency_ms.p99 / result.baseline_ms.p99).toFixed(1)}`,
);
if (SECONDS > 120) console.log(`RSS series (s, MiB): ${result.rss_series.map(([t, m]) => `${t}:${m}`).join(' ')}`);
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
process.exit(lost === 0 ? 0 : 1);
