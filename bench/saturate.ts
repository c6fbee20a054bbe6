// Saturation: raise the tag rate through the whole gateway (Modbus TCP simulators → `edgeferry
// run` → mosquitto over mutual TLS at QoS 1 → a subscriber here) until the gateway saturates one
// core or stops keeping up; print delivered tags/s and tags/s per core at each step, and a CPU
// profile summary of the gateway at the last step (where the time goes).
//
//   npm run bench:saturate -- [--plcs 40 --points 100 --step-seconds 8] [--payload point|poll] [--json FILE]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../simulators/modbus/index.js';
import { connectClient, counterRegisters, machine, procStat } from './lib.js';
import { printSummary, summarize, type ProfileSummary } from './profile.js';

const values = scriptArgs('bench:saturate', 'One core saturated: tags per CPU-second.', {
  plcs: { type: 'string', default: '40' },
  points: { type: 'string', default: '100' },
  'step-seconds': { type: 'string', default: '8' },
  intervals: { type: 'string', default: '1000,500,250,150,100,75,50,35,25' },
  json: { type: 'string' },
  payload: { type: 'string', default: 'point' },
});
const PLCS = Number(values.plcs);
const POINTS = Number(values.points);
const STEP_S = Number(values['step-seconds']);
const PAYLOAD = values.payload === 'poll' ? 'poll' : 'point';
const cli = fileURLToPath(new URL('../src/main.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'edgeferry-saturate-'));
const broker = await startMosquitto({ unboundedQueues: true });
const sims: ModbusSimulator[] = [];
for (let i = 0; i < PLCS; i++) sims.push(await startSim({ registers: counterRegisters(POINTS) }));
const sub = await connectClient(broker);
// The gateway publishes at QoS 1 (every message PUBACKed by the broker before it leaves the
// buffer); the counting subscriber takes QoS 0, so mosquitto's per-subscriber window of 20
// unacknowledged messages does not cap what is measured.
await sub.subscribeAsync('sat/#', { qos: 0 });
let received = 0;
// Tags, not messages: a poll message carries one "quality" per point.
sub.on('message', (_topic, payload) => {
  if (PAYLOAD === 'point') return void received++;
  const text = payload.toString('latin1');
  for (let i = text.indexOf('"quality"'); i >= 0; i = text.indexOf('"quality"', i + 9)) received++;
});

interface Step {
  interval_ms: number;
  offered: number;
  delivered: number;
  cpu_cores: number;
  per_core: number;
}
const steps: Step[] = [];
let profile: ProfileSummary | undefined;
const intervals = values.intervals.split(',').map(Number);
for (const [n, interval] of intervals.entries()) {
  const devices = sims.map(
    (s, i) =>
      `  - name: plc-${i}\n    driver: modbus_tcp\n    poll_interval_ms: ${interval}\n    connection: { host: 127.0.0.1, port: ${s.port} }\n    points:\n${Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, address: ${k}, type: uint16 }`).join('\n')}`,
  );
  const cfg = join(dir, `step-${n}`);
  mkdirSync(cfg);
  writeFileSync(join(cfg, 'devices.yaml'), `version: 1\ndevices:\n${devices.join('\n')}\n`);
  writeFileSync(
    join(cfg, 'gateway.yaml'),
    `version: 1\nsite: sat\ngateway_id: gw\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  payload: ${PAYLOAD}\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nlogging: { level: warn }\nhealth: { enabled: false }\n`,
  );
  const last = n === intervals.length - 1;
  const prof = join(cfg, 'prof');
  const gw = spawn(process.execPath, [...(last ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), cli, 'run', '--config', join(cfg, 'gateway.yaml')], {
    cwd: cfg,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
  });
  await new Promise((r) => setTimeout(r, 3000));
  const r0 = received;
  const s0 = procStat(gw.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, STEP_S * 1000));
  const s1 = procStat(gw.pid!);
  const secs = (performance.now() - t0) / 1000;
  const delivered = (received - r0) / secs;
  const cpu = (s1.cpuS - s0.cpuS) / secs;
  const exited = new Promise((r) => gw.once('exit', r));
  gw.kill('SIGTERM');
  await exited;
  const step = {
    interval_ms: interval,
    offered: Math.round((PLCS * POINTS * 1000) / interval),
    delivered: Math.round(delivered),
    cpu_cores: +cpu.toFixed(3),
    per_core: Math.round(delivered / cpu),
  };
  steps.push(step);
  console.error(
    `  every ${interval} ms: offered ${step.offered} tags/s, delivered ${step.delivered}, CPU ${step.cpu_cores} cores → ${step.per_core} tags/s per core`,
  );
  if (last) {
    const f = readdirSync(prof).find((x) => x.endsWith('.cpuprofile'));
    if (f) profile = summarize(join(prof, f), 20);
  }
  // Saturated: a full core, or falling behind what is offered.
  if (!last && (cpu >= 0.95 || delivered < 0.95 * step.offered)) {
    intervals.length = n + 2; // one more step (profiled) beyond the knee
  }
}
await sub.endAsync();
await Promise.all(sims.map((s) => s.stop()));
await broker.stop();
rmSync(dir, { recursive: true, force: true });

const best = steps.reduce((a, b) => (b.delivered > a.delivered ? b : a));
const oneCore = steps.filter((s) => s.cpu_cores <= 1.05).reduce((a, b) => (b.delivered > a.delivered ? b : a), steps[0]!);
console.log(
  `edgeferry saturation — ${PLCS} Modbus TCP PLCs × ${POINTS} uint16 tags, QoS 1 over mutual TLS to mosquitto, mqtt.payload ${PAYLOAD} (${PAYLOAD === 'poll' ? 'one message per device poll' : 'one message per tag'}), ${STEP_S} s per step`,
);
console.log(machine());
console.log('| poll interval | offered tags/s | delivered tags/s | gateway CPU (cores) | tags/s per core |');
console.log('|---|---|---|---|---|');
for (const s of steps) console.log(`| ${s.interval_ms} ms | ${s.offered} | ${s.delivered} | ${s.cpu_cores} | ${s.per_core} |`);
console.log(
  `most delivered: ${best.delivered} tags/s at ${best.cpu_cores} cores; within one core: ${oneCore.delivered} tags/s (${oneCore.per_core} tags/s per core)`,
);
if (profile) printSummary(profile);
if (values.json)
  writeFileSync(values.json, JSON.stringify({ plcs: PLCS, points: POINTS, steps, best, one_core: oneCore, profile, machine: machine() }, null, 2));
