// edgeferry against Node-RED, side by side in one run: the same simulated PLCs (bench/plc-farm.ts,
// a process of their own), the same local mosquitto (mutual TLS, plaintext, or each in turn), QoS 1, one MQTT message per
// device poll on both sides. edgeferry runs with `mqtt.payload: poll` and its durable default
// (`synchronous: full`); Node-RED 4.1 with node-red-contrib-modbus 5.23 runs the flow a plant would
// build: modbus-read of the holding registers → a function node decoding the float32 into an
// object → mqtt out at QoS 1. Node-RED is installed into .cache/nodered at the first run (from the
// npm registry; it is not a dependency of the project). Rounds interleave the two (A B, B A, …).
// Figures are each gateway process's own CPU (utime + stime from /proc over the measured seconds,
// after a warm-up) and its RSS sampled every second; tags are counted by a subscriber here.
//
//   npm run bench:nodered -- [--shape seed|fast|both] [--tls on|off|both] [--rounds 2] [--seconds 30]
//                            [--warmup 15] [--sync full|normal] [--profile] [--json FILE] [--before DIR]
//   --before DIR: another checkout's build (e.g. the commit before a change) as a third gateway in every round
//   seed: 137 PLCs × 50 float32 every 1000 ms (6,850 tags/s); fast: 20 PLCs × 50 every 100 ms (10,000 tags/s)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { startMosquitto, type Mosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { freePort } from '../simulators/free-port.js';
import { stopChild } from '../simulators/stop-child.js';
import { connectClient, machine, pct, procStat, threadCpu } from './lib.js';
import { printSummary, summarize } from './profile.js';

const values = scriptArgs('bench:nodered', 'edgeferry against Node-RED side by side: tags per CPU-second and memory.', {
  shape: { type: 'string', default: 'both' },
  /** Mutual TLS to the broker (on), plaintext (off), or both in turn (each its own broker). */
  tls: { type: 'string', default: 'both' },
  rounds: { type: 'string', default: '2' },
  seconds: { type: 'string', default: '30' },
  warmup: { type: 'string', default: '15' },
  sync: { type: 'string', default: 'full' },
  profile: { type: 'boolean', default: false },
  json: { type: 'string' },
  /** Another checkout's built edgeferry (its dist/), e.g. the commit before a change, measured in its place. */
  'edgeferry-root': { type: 'string' },
  /** Another checkout's built edgeferry (its root, with dist/) run as a third gateway in every round: before/after in one run. */
  before: { type: 'string' },
  /** Extra flags for edgeferry's node (e.g. --single-threaded-gc), to try V8 settings. */
  'node-flags': { type: 'string', default: '' },
  /** Measure only one of them (quick experiments; the ratios need both). */
  only: { type: 'string' },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const SYNC = values.sync === 'normal' ? 'normal' : 'full';
const NODE_RED = '4.1';
const CONTRIB_MODBUS = '5.23';

interface Shape {
  name: string;
  plcs: number;
  points: number;
  intervalMs: number;
}
const SHAPES: Shape[] = [
  { name: 'seed', plcs: 137, points: 50, intervalMs: 1000 },
  { name: 'fast', plcs: 20, points: 50, intervalMs: 100 },
].filter((s) => values.shape === 'both' || values.shape === s.name);
const TLS_MODES = [true, false].filter((t) => values.tls === 'both' || values.tls === (t ? 'on' : 'off'));
if (!TLS_MODES.length) throw new Error(`--tls: expected on, off or both, got "${values.tls}"`);

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(values['edgeferry-root'] ?? root, 'dist/src/main.js');
const farmScript = join(root, 'dist/bench/plc-farm.js');
const nrHome = join(root, '.cache/nodered');

/** Node-RED and the Modbus nodes in a scratch folder (not project dependencies), once. */
function installNodeRed(): string {
  const red = join(nrHome, 'node_modules/node-red/red.js');
  if (existsSync(red) && existsSync(join(nrHome, 'node_modules/node-red-contrib-modbus/package.json'))) return red;
  mkdirSync(nrHome, { recursive: true });
  writeFileSync(join(nrHome, 'package.json'), '{"name":"edgeferry-bench-nodered","private":true}\n');
  console.error(`installing node-red@${NODE_RED} and node-red-contrib-modbus@${CONTRIB_MODBUS} into ${nrHome} …`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `node-red@${NODE_RED}`, `node-red-contrib-modbus@${CONTRIB_MODBUS}`], {
    cwd: nrHome,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return red;
}
const version = (pkg: string) =>
  JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require('${pkg}/package.json').version)`], { cwd: nrHome }).toString()) as string;

async function startFarm(shape: Shape): Promise<{ proc: ChildProcess; ports: number[] }> {
  const proc = spawn(process.execPath, [farmScript, '--plcs', String(shape.plcs), '--points', String(shape.points)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`plc-farm exited with ${code}`)));
  });
  return { proc, ports: (JSON.parse(line) as { ports: number[] }).ports };
}

/** The flow a plant engineer would build in Node-RED for the same job, one chain per PLC. */
function nodeRedFlow(shape: Shape, ports: number[], broker: Mosquitto): unknown[] {
  const brokerPort = new URL(broker.url).port;
  // Decodes the float32 (two registers each, high word first) into {ts, device, values: {p0: …}}.
  const func = `const w = msg.payload; const dv = new DataView(new ArrayBuffer(4)); const values = {};
for (let k = 0; k < ${shape.points}; k++) { dv.setUint16(0, w[2 * k]); dv.setUint16(2, w[2 * k + 1]); values['p' + k] = dv.getFloat32(0); }
msg.payload = { ts: new Date().toISOString(), device: msg.topic, values };
return msg;`;
  const flow: unknown[] = [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'tls', type: 'tls-config', name: '', cert: broker.files.clientCert, key: broker.files.clientKey, ca: broker.files.ca, verifyservercert: true },
    {
      id: 'broker',
      type: 'mqtt-broker',
      name: '',
      broker: '127.0.0.1',
      port: brokerPort,
      ...(broker.url.startsWith('mqtts:') ? { tls: 'tls', usetls: true } : { usetls: false }),
      clientid: '',
      autoConnect: true,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
    },
  ];
  ports.forEach((port, i) => {
    flow.push(
      {
        id: `client${i}`,
        type: 'modbus-client',
        name: `mb-${i}`,
        clienttype: 'tcp',
        bufferCommands: true,
        stateLogEnabled: false,
        queueLogEnabled: false,
        failureLogEnabled: false,
        tcpHost: '127.0.0.1',
        tcpPort: String(port),
        tcpType: 'DEFAULT',
        unit_id: '1',
        commandDelay: '1',
        clientTimeout: '1000',
        reconnectOnTimeout: true,
        reconnectTimeout: '2000',
        parallelUnitIdsAllowed: true,
      },
      {
        id: `read${i}`,
        type: 'modbus-read',
        z: 'tab',
        name: '',
        topic: `mb-${i}`,
        showStatusActivities: false,
        logIOActivities: false,
        showErrors: false,
        unitid: '',
        dataType: 'HoldingRegister',
        adr: '0',
        quantity: String(shape.points * 2),
        rate: String(shape.intervalMs),
        rateUnit: 'ms',
        delayOnStart: false,
        startDelayTime: '',
        server: `client${i}`,
        useIOFile: false,
        ioFile: '',
        useIOForPayload: false,
        emptyMsgOnFail: false,
        wires: [[`decode${i}`], []],
      },
      { id: `decode${i}`, type: 'function', z: 'tab', name: 'decode', func, outputs: 1, noerr: 0, wires: [[`out${i}`]] },
      { id: `out${i}`, type: 'mqtt out', z: 'tab', name: '', topic: `nr/mb-${i}`, qos: '1', retain: 'false', broker: 'broker', wires: [] },
    );
  });
  return flow;
}

async function startNodeRed(dir: string, red: string, shape: Shape, ports: number[], broker: Mosquitto): Promise<ChildProcess> {
  const userDir = join(dir, 'nr');
  mkdirSync(userDir);
  symlinkSync(join(nrHome, 'node_modules'), join(userDir, 'node_modules'));
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(nodeRedFlow(shape, ports, broker)));
  writeFileSync(
    join(userDir, 'settings.js'),
    `module.exports = { uiHost: '127.0.0.1', uiPort: ${await freePort()}, httpAdminRoot: false, httpNodeRoot: false,
  flowFile: 'flows.json', credentialSecret: false, functionExternalModules: false,
  diagnostics: { enabled: false }, runtimeState: { enabled: false }, telemetry: { enabled: false },
  logging: { console: { level: 'warn', metrics: false, audit: false } } };\n`,
  );
  return spawn(process.execPath, [red, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], {
    cwd: userDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function startEdgeferry(
  dir: string,
  shape: Shape,
  ports: number[],
  broker: Mosquitto,
  profDir: string | undefined,
  main = cli,
  gatewayId = 'gw',
): Promise<ChildProcess> {
  const ef = join(dir, 'ef');
  mkdirSync(ef);
  const points = Array.from({ length: shape.points }, (_, k) => `      - { name: p${k}, address: ${k * 2}, type: float32 }`).join('\n');
  const devices = ports.map(
    (port, i) => `  - name: mb-${i}
    driver: modbus_tcp
    poll_interval_ms: ${shape.intervalMs}
    connection: { host: 127.0.0.1, port: ${port} }
    points:
${points}`,
  );
  writeFileSync(join(ef, 'devices.yaml'), `version: 1\ndevices:\n${devices.join('\n')}\n`);
  writeFileSync(
    join(ef, 'gateway.yaml'),
    `version: 1
site: ef
gateway_id: ${gatewayId}
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  payload: poll
${
  broker.url.startsWith('mqtts:')
    ? `  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }`
    : '  allow_plaintext: true'
}
buffer: { path: buffer.db, synchronous: ${SYNC} }
logging: { level: warn }
health: { port: ${await freePort()} }
`,
  );
  const flags = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  flags.push(...values['node-flags'].split(' ').filter(Boolean));
  return spawn(process.execPath, [...flags, main, 'run', '--config', join(ef, 'gateway.yaml')], {
    cwd: ef,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
  });
}

/** The middle value; with an even count, the mean of the two middle ones. */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

interface Run {
  round: number;
  shape: string;
  tls: boolean;
  gateway: 'edgeferry' | 'node-red' | 'before';
  tagsPerS: number;
  messagesPerS: number;
  cores: number;
  userCores: number;
  sysCores: number;
  tagsPerCpuS: number;
  rssMedianMiB: number;
  rssMaxMiB: number;
  /** Cores by thread name: where the process's CPU goes (main thread, V8 GC workers, libuv pool, …). */
  threads: Record<string, number>;
}

/** Counts what each gateway delivers: tags (points in each poll message) and messages, by topic root. */
function counter(sub: Awaited<ReturnType<typeof connectClient>>) {
  let root = '';
  let tags = 0;
  let messages = 0;
  sub.on('message', (topic, payload) => {
    if (!root || !topic.startsWith(root)) return;
    const msg = JSON.parse(payload.toString()) as { points?: object; values?: object };
    const n = Object.keys(msg.points ?? msg.values ?? {}).length;
    if (!n) return; // status messages
    tags += n;
    messages++;
  });
  return {
    reset(r: string) {
      root = r;
      tags = 0;
      messages = 0;
    },
    get tags() {
      return tags;
    },
    get messages() {
      return messages;
    },
  };
}

/** One gateway's figures over the measured seconds; `from`: when they began (performance.now()). */
async function measure(
  proc: ChildProcess,
  count: ReturnType<typeof counter>,
  rootTopic: string,
): Promise<Omit<Run, 'round' | 'shape' | 'tls' | 'gateway'> & { from: number }> {
  let exited: number | null | undefined;
  proc.once('exit', (code) => (exited = code));
  // Warm-up: until the first message arrives, then the warm-up seconds.
  count.reset(rootTopic);
  for (const until = Date.now() + 60_000; count.messages === 0; await new Promise((r) => setTimeout(r, 100))) {
    if (exited !== undefined) throw new Error(`${rootTopic}: the gateway exited with code ${exited} before publishing`);
    if (Date.now() > until) throw new Error(`${rootTopic}: nothing published within 60 s`);
  }
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(procStat(proc.pid!).rssKb / 1024), 1000);
  count.reset(rootTopic);
  const s0 = procStat(proc.pid!);
  const th0 = threadCpu(proc.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const s1 = procStat(proc.pid!);
  const th1 = threadCpu(proc.pid!);
  const elapsed = (performance.now() - t0) / 1000;
  const threads: Record<string, number> = {};
  for (const [name, cpu] of th1) {
    const cores = (cpu - (th0.get(name) ?? 0)) / elapsed;
    if (cores >= 0.0005) threads[name] = +cores.toFixed(4);
  }
  clearInterval(sampler);
  if (exited !== undefined) throw new Error(`${rootTopic}: the gateway exited with code ${exited}`);
  const cores = (s1.cpuS - s0.cpuS) / elapsed;
  const tagsPerS = count.tags / elapsed;
  return {
    tagsPerS,
    messagesPerS: count.messages / elapsed,
    cores,
    userCores: (s1.userS - s0.userS) / elapsed,
    sysCores: (s1.sysS - s0.sysS) / elapsed,
    tagsPerCpuS: tagsPerS / cores,
    rssMedianMiB: pct(rss, 50),
    rssMaxMiB: Math.max(...rss),
    threads,
    from: t0,
  };
}

const tlsName = (tls: boolean) => (tls ? 'TLS' : 'plaintext');
const red = installNodeRed();
console.log(`edgeferry vs Node-RED ${version('node-red')} + node-red-contrib-modbus ${version('node-red-contrib-modbus')}, ${machine()}`);
console.log(
  `edgeferry: mqtt.payload poll, buffer synchronous ${SYNC}; both: QoS 1 to a local mosquitto (${TLS_MODES.map(tlsName).join(' and ')}); ${SECONDS} s measured after ${WARMUP} s warm-up`,
);
const brokers = new Map<boolean, { broker: Mosquitto; count: ReturnType<typeof counter>; sub: Awaited<ReturnType<typeof connectClient>> }>();
for (const tls of TLS_MODES) {
  const broker = await startMosquitto({ unboundedQueues: true, plaintext: !tls });
  const sub = await connectClient(broker);
  await sub.subscribeAsync([`ef/#`, `nr/#`], { qos: 0 });
  brokers.set(tls, { broker, sub, count: counter(sub) });
}
const runs: Run[] = [];
const dir = mkdtempSync(join(tmpdir(), 'edgeferry-nodered-'));
try {
  for (const shape of SHAPES) {
    console.log(
      `\n${shape.name}: ${shape.plcs} PLCs × ${shape.points} float32 every ${shape.intervalMs} ms = ${(shape.plcs * shape.points * 1000) / shape.intervalMs} tags/s offered`,
    );
    const farm = await startFarm(shape);
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const all: Run['gateway'][] = ['edgeferry', 'node-red', ...(values.before ? (['before'] as const) : [])];
        const order = round % 2 ? all : [...all].reverse();
        for (const tls of TLS_MODES) {
          const { broker, count } = brokers.get(tls)!;
          for (const gateway of order.filter((g) => !values.only || g === values.only)) {
            const runDir = join(dir, `${shape.name}-${round}-${tlsName(tls)}-${gateway}`);
            mkdirSync(runDir);
            const profDir = values.profile && gateway === 'edgeferry' ? join(runDir, 'prof') : undefined;
            const spawnedAt = performance.now();
            let measuredFrom = spawnedAt;
            const proc =
              gateway === 'edgeferry'
                ? await startEdgeferry(runDir, shape, farm.ports, broker, profDir)
                : gateway === 'before'
                  ? await startEdgeferry(runDir, shape, farm.ports, broker, undefined, join(values.before!, 'dist/src/main.js'), 'gwb')
                  : await startNodeRed(runDir, red, shape, farm.ports, broker);
            try {
              const m = await measure(proc, count, gateway === 'edgeferry' ? 'ef/gw/' : gateway === 'before' ? 'ef/gwb/' : 'nr/');
              measuredFrom = m.from;
              const { from: _from, ...figures } = m;
              const run: Run = { round, shape: shape.name, tls, gateway, ...figures };
              runs.push(run);
              console.log(
                `  round ${round} ${tlsName(tls).padEnd(9)} ${gateway.padEnd(9)} ${m.tagsPerS.toFixed(0).padStart(6)} tags/s (${m.messagesPerS.toFixed(0)} msg/s)  ${m.cores.toFixed(3)} cores (user ${m.userCores.toFixed(3)}, kernel ${m.sysCores.toFixed(3)})  ` +
                  `${m.tagsPerCpuS.toFixed(0).padStart(6)} tags/CPU-s  RSS median ${m.rssMedianMiB.toFixed(1)} MiB, max ${m.rssMaxMiB.toFixed(1)} MiB`,
              );
              const byThread = Object.entries(m.threads).sort((a, b) => b[1] - a[1]);
              console.log(`      cores by thread: ${byThread.map(([n, c]) => `${n} ${c.toFixed(3)}`).join(', ')}`);
            } finally {
              await stopChild(proc);
            }
            if (profDir) {
              const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
              if (f) printSummary(summarize(join(profDir, f), 30, { fromMs: measuredFrom - spawnedAt, busyOnly: true }));
            }
          }
        }
      }
    } finally {
      await stopChild(farm.proc);
    }
    for (const tls of TLS_MODES) {
      const of = (g: Run['gateway'], k: 'tagsPerCpuS' | 'rssMedianMiB' | 'cores') =>
        median(runs.filter((r) => r.shape === shape.name && r.tls === tls && r.gateway === g).map((r) => r[k]));
      console.log(
        `  ${shape.name} ${tlsName(tls)}, median of ${ROUNDS}: edgeferry ${of('edgeferry', 'cores').toFixed(3)} cores, Node-RED ${of('node-red', 'cores').toFixed(3)} cores; ` +
          `tags per CPU-second edgeferry/Node-RED ×${(of('edgeferry', 'tagsPerCpuS') / of('node-red', 'tagsPerCpuS')).toFixed(2)}; ` +
          `RSS median edgeferry/Node-RED ×${(of('edgeferry', 'rssMedianMiB') / of('node-red', 'rssMedianMiB')).toFixed(2)}`,
      );
      if (values.before)
        console.log(
          `  ${shape.name} ${tlsName(tls)}, before (${values.before}) ${of('before', 'cores').toFixed(3)} cores: tags per CPU-second after/before ×${(of('edgeferry', 'tagsPerCpuS') / of('before', 'tagsPerCpuS')).toFixed(2)}, ` +
            `before/Node-RED ×${(of('before', 'tagsPerCpuS') / of('node-red', 'tagsPerCpuS')).toFixed(2)}; RSS after/before ×${(of('edgeferry', 'rssMedianMiB') / of('before', 'rssMedianMiB')).toFixed(2)}`,
        );
    }
  }
} finally {
  for (const { sub, broker } of brokers.values()) {
    await sub.endAsync();
    await broker.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: machine(), sync: SYNC, runs }, null, 2));
