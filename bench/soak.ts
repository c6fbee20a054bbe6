// The soak: the seed plant (137 PLCs × 50 tags every second: Modbus TCP and some OPC UA servers)
// through `edgeferry run` to a local mosquitto over mutual TLS for --minutes, with a broker outage
// in the middle and every health URL scraped once a second all along. Prints the gateway's RSS and
// V8 heap slopes (whole run and second half, MiB per hour), the poll gap p99 from each sample's own
// timestamp, the scrapes' answer times, and the delivery account: every seq the gateway handed out
// either reached the subscriber, or is named in a data_lost event, or is missing (must be 0).
//
//   npm run bench:soak -- --minutes 30 [--outage 120 --plcs 137 --opcua 7 --points 50]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import Database from '../src/buffer/sqlite.js';
import { scriptArgs } from '../src/core/script-args.js';
import { freePort } from '../simulators/free-port.js';
import { start as startSim, type ModbusSimulator } from '../simulators/modbus/index.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { PLANT_NODES, startOpcuaSim, type OpcuaSimulator } from '../simulators/opcua/index.js';
import { machine, pct, procStat, sineRegisters, slope } from './lib.js';

const values = scriptArgs('bench:soak', 'The seed plant for a long run: a broker outage, a scrape every second, memory slopes and the delivery account.', {
  minutes: { type: 'string', default: '30' },
  outage: { type: 'string', default: '120' },
  plcs: { type: 'string', default: '137' },
  opcua: { type: 'string', default: '7' },
  points: { type: 'string', default: '50' },
  interval: { type: 'string', default: '1000' },
});
const MINUTES = Number(values.minutes);
const OUTAGE_S = Number(values.outage);
const PLCS = Number(values.plcs);
const OPCUA = Math.min(PLCS, Number(values.opcua));
const POINTS = Number(values.points);
const INTERVAL = Number(values.interval);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/src/main.js');
const OPCUA_NODES = Object.values(PLANT_NODES).filter((n) => ['Double', 'Float', 'UInt32', 'Int16', 'Int64'].includes(n.dataType));

const dir = mkdtempSync(join(tmpdir(), 'edgeferry-soak-'));
// Persistence: the subscriber's session (QoS 1, clean start off) keeps what arrives while it reconnects.
const broker = await startMosquitto({ persistence: true, unboundedQueues: true });
const modbus: ModbusSimulator[] = [];
const opcua: OpcuaSimulator[] = [];
for (let i = 0; i < PLCS - OPCUA; i++) modbus.push(await startSim({ registers: sineRegisters(POINTS) }));
for (let i = 0; i < OPCUA; i++) opcua.push(await startOpcuaSim({ pkiDir: join(dir, `pki-${i}`) }));
const devices = [
  ...modbus.map(
    (s, i) =>
      `  - name: mb-${i}\n    driver: modbus_tcp\n    poll_interval_ms: ${INTERVAL}\n    connection: { host: 127.0.0.1, port: ${s.port} }\n    points:\n` +
      Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, address: ${k * 2}, type: float32 }`).join('\n'),
  ),
  ...opcua.map(
    (s, i) =>
      `  - name: ua-${i}\n    driver: opcua\n    poll_interval_ms: ${INTERVAL}\n    connection: { endpoint: "${s.endpoint}", security_policy: None, security_mode: None }\n    points:\n` +
      Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, node_id: "${OPCUA_NODES[k % OPCUA_NODES.length]!.nodeId}" }`).join('\n'),
  ),
];
const HEALTH_PORT = await freePort();
writeFileSync(join(dir, 'devices.yaml'), `version: 1\ndevices:\n${devices.join('\n')}\n`);
writeFileSync(
  join(dir, 'gateway.yaml'),
  `version: 1\nsite: plant\ngateway_id: gw\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  reconnect_ms: 500\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nlogging: { level: warn }\nhealth: { port: ${HEALTH_PORT} }\n`,
);

// The subscriber: a bitmap of seqs received, each device's sample times, the loss events.
let seen = new Uint8Array(1 << 24);
let received = 0;
let duplicates = 0;
const pollTs = new Map<string, number[]>();
const lostSeqs: [number, number][] = [];
const sub = mqtt.connect(broker.url, {
  ca: broker.caPem,
  cert: broker.client.cert,
  key: broker.client.key,
  clientId: 'soak-subscriber',
  clean: false,
  protocolVersion: 5,
  properties: { sessionExpiryInterval: 3600 },
  reconnectPeriod: 500,
});
sub.on('message', (topic, payload) => {
  const text = payload.toString();
  if (topic === 'plant/gw/events') {
    const e = JSON.parse(text) as { event?: string; ranges?: [number, number][] };
    if (e.event === 'data_lost') lostSeqs.push(...(e.ranges ?? []));
    return;
  }
  if (topic.includes('/status')) return;
  const seq = Number(/"seq":(\d+)/.exec(text)?.[1]);
  if (!Number.isFinite(seq)) return;
  while (seq >= seen.length) {
    const bigger = new Uint8Array(seen.length * 2);
    bigger.set(seen);
    seen = bigger;
  }
  if (seen[seq]) duplicates++;
  else received++;
  seen[seq] = 1;
  const device = topic.split('/')[2]!;
  const ts = Date.parse(/"ts":"([^"]+)"/.exec(text)?.[1] ?? '');
  if (topic.endsWith('/p0') && Number.isFinite(ts)) {
    let list = pollTs.get(device);
    if (!list) pollTs.set(device, (list = []));
    list.push(ts);
  }
});
await new Promise<void>((r) => sub.once('connect', () => r()));
await sub.subscribeAsync('plant/#', { qos: 1 });

const gw = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], {
  cwd: dir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, MALLOC_ARENA_MAX: '2' },
});
let gwExit: number | null | undefined;
gw.once('exit', (code) => (gwExit = code));

// Every health URL once a second: answer times, failures, the gateway's heap from /metrics.
const URLS = ['/healthz', '/metrics', '/status.json'] as const;
const answerMs = new Map<string, number[]>(URLS.map((u) => [u, []]));
let scrapeFailures = 0;
const mem: { t: number; rss: number; heap: number }[] = [];
const depthSeen: { t: number; depth: number }[] = [];
const t0 = performance.now();
const minutesNow = () => (performance.now() - t0) / 60_000;
const scraper = setInterval(() => {
  for (const u of URLS) {
    const t = performance.now();
    fetch(`http://127.0.0.1:${HEALTH_PORT}${u}`, { signal: AbortSignal.timeout(5000) })
      .then(async (res) => {
        const body = await res.text();
        answerMs.get(u)!.push(performance.now() - t);
        if (u === '/metrics') {
          const heap = Number(/^edgeferry_nodejs_heap_size_used_bytes (\S+)$/m.exec(body)?.[1]) / 1048576;
          if (gwExit === undefined) mem.push({ t: minutesNow(), rss: procStat(gw.pid!).rssKb / 1024, heap });
        }
        if (u === '/healthz') depthSeen.push({ t: minutesNow(), depth: (JSON.parse(body) as { buffer: { depth: number } }).buffer.depth });
      })
      .catch(() => scrapeFailures++);
  }
}, 1000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const outageAt = MINUTES / 3;
let outage: { from: number; to: number } | undefined;
let lastPrint = 0;
while (minutesNow() < MINUTES) {
  await sleep(1000);
  if (gwExit !== undefined) throw new Error(`the gateway exited with code ${gwExit} (its stderr is above)`);
  if (!outage && minutesNow() >= outageAt) {
    outage = { from: minutesNow(), to: NaN };
    await broker.kill();
    await sleep(OUTAGE_S * 1000);
    await broker.restart();
    outage.to = minutesNow();
  }
  if (minutesNow() - lastPrint >= 1) {
    lastPrint = minutesNow();
    const m = mem[mem.length - 1];
    console.error(
      `  ${lastPrint.toFixed(1)} min: RSS ${m?.rss.toFixed(1)} MiB, heap ${m?.heap.toFixed(1)} MiB, ${received} samples, depth ${depthSeen[depthSeen.length - 1]?.depth}`,
    );
  }
}
// The backlog drains (below one poll round: live samples keep coming), then a clean stop, which
// publishes what is left.
while ((depthSeen[depthSeen.length - 1]?.depth ?? Infinity) >= PLCS * POINTS && minutesNow() < MINUTES + 10) await sleep(1000);
clearInterval(scraper);
const exited = new Promise((r) => gw.once('exit', r));
gw.kill('SIGTERM');
await exited;
await sleep(2000); // the last PUBACKed messages reach the subscriber
const db = new Database(join(dir, 'buffer.db'), { readonly: true });
const lastSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck().get() as number | undefined) ?? 0;
const inBuffer = new Set(db.prepare('SELECT seq FROM samples').pluck().all() as number[]);
db.close();
await sub.endAsync();
await Promise.all(modbus.map((s) => s.stop()));
await Promise.all(opcua.map((s) => s.stop()));
await broker.stop();
rmSync(dir, { recursive: true, force: true });

// The account.
const named = new Uint8Array(lastSeq + 1);
for (const [a, z] of lostSeqs) for (let q = a; q <= Math.min(z, lastSeq); q++) named[q] = 1;
let missing = 0;
let namedLost = 0;
for (let q = 1; q <= lastSeq; q++) {
  if (seen[q] || inBuffer.has(q)) continue;
  if (named[q]) namedLost++;
  else missing++;
}
const gaps: number[] = [];
for (const list of pollTs.values()) {
  const ts = [...new Set(list)].sort((a, b) => a - b);
  for (let i = 1; i < ts.length; i++) gaps.push(ts[i]! - ts[i - 1]!);
}
const perHour = (xs: typeof mem, key: 'rss' | 'heap') =>
  slope(
    xs.map((m) => m.t / 60),
    xs.map((m) => m[key]),
  );
const warm = mem.filter((m) => m.t >= 2 && m.t <= MINUTES); // V8 sizes its heap in the first minutes
const late = mem.filter((m) => m.t >= MINUTES / 2 && m.t <= MINUTES);
const peakDepth = depthSeen.reduce((n, d) => Math.max(n, d.depth), 0);
const drainedAt = outage ? depthSeen.find((d) => d.t > outage.to && d.depth < PLCS * POINTS)?.t : undefined;
const f1 = (x: number) => x.toFixed(1);
// (No Math.max(...xs): a 30-minute run has hundreds of thousands of gaps, beyond the call stack.)

console.log(
  `edgeferry soak — ${PLCS} PLCs (${PLCS - OPCUA} Modbus TCP, ${OPCUA} OPC UA) × ${POINTS} tags every ${INTERVAL} ms, ${MINUTES} min; broker away ${OUTAGE_S} s from minute ${f1(outageAt)}; /healthz, /metrics, /status.json each scraped every second`,
);
console.log(machine());
console.log(
  `RSS             first ${f1(warm[0]?.rss ?? NaN)} MiB, last ${f1(warm[warm.length - 1]?.rss ?? NaN)} MiB, max ${f1(mem.reduce((n, m) => Math.max(n, m.rss), 0))} MiB; slope ${f1(perHour(warm, 'rss'))} MiB/h (second half ${f1(perHour(late, 'rss'))} MiB/h)`,
);
console.log(
  `V8 heap used    first ${f1(warm[0]?.heap ?? NaN)} MiB, last ${f1(warm[warm.length - 1]?.heap ?? NaN)} MiB; slope ${f1(perHour(warm, 'heap'))} MiB/h (second half ${f1(perHour(late, 'heap'))} MiB/h)`,
);
console.log(
  `poll gap        p50 ${pct(gaps, 50)} ms, p99 ${pct(gaps, 99)} ms, max ${gaps.reduce((n, g) => Math.max(n, g), 0)} ms (×${(pct(gaps, 99) / INTERVAL).toFixed(2)} of the interval at p99; n=${gaps.length}, device p0 samples)`,
);
console.log(
  `scrapes         ${URLS.map((u) => `${u} p50 ${f1(pct(answerMs.get(u)!, 50))} ms p99 ${f1(pct(answerMs.get(u)!, 99))} ms`).join('; ')}; ${scrapeFailures} failed`,
);
console.log(
  `outage          backlog peak ${peakDepth} samples; below one poll round ${drainedAt && outage ? f1((drainedAt - outage.to) * 60) : '?'} s after the broker returned`,
);
console.log(
  `delivery        ${lastSeq} seqs handed out: ${received} received (${duplicates} duplicates), ${inBuffer.size} still buffered, ${namedLost} named in data_lost events, ${missing} missing`,
);
process.exit(missing === 0 ? 0 : 1);
