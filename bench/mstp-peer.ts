// MS/TP timing against an independent master under load: the gateway (`edgeferry run`, a real
// process with Modbus polling and MQTT publishing keeping its main thread busy) and bacnet-stack's
// bacserv (../shared/peers) share a paced virtual RS485 line (bench/line-hub.ts, its own process),
// with busy loops holding the cores. Runs the gateway's MS/TP data link on its own thread (now)
// and on the main event loop (before; EDGEFERRY_MSTP_INLINE=1), interleaved, and prints per run
// what the line saw: token-use delay (Tusage_delay is 15 ms), tokens missed, tokens lost.
//
//   npm run bench:mstp-peer -- [--seconds 60] [--rounds 2] [--busy 2] [--plcs 20] [--points 50] [--poll-ms 100] [--modes inline,thread]
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../simulators/modbus/index.js';
import { peersBin } from '../simulators/peers.js';
import { stopChild } from '../simulators/stop-child.js';
import { counterRegisters, machine, pct, procStat } from './lib.js';

const values = scriptArgs('bench:mstp-peer', 'MS/TP timing against bacnet-stack bacserv under load.', {
  seconds: { type: 'string', default: '60' },
  rounds: { type: 'string', default: '2' },
  busy: { type: 'string', default: '2' },
  plcs: { type: 'string', default: '20' },
  points: { type: 'string', default: '50' },
  'poll-ms': { type: 'string', default: '100' },
  baud: { type: 'string', default: '38400' },
  modes: { type: 'string', default: 'inline,thread' },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BUSY = Number(values.busy);
const PLCS = Number(values.plcs);
const POINTS = Number(values.points);
const BAUD = Number(values.baud);
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const cli = join(root, 'dist/src/main.js');
const GW_MAC = 3;
const PEER_MAC = 5;

interface Station {
  tokens: number;
  delays: number[];
  missed: number;
  lost: number;
}
interface Report {
  priority: string;
  frames: number;
  lostOther: number;
  stations: Record<string, Station>;
  contexts: string[];
}

const waitFor = <T>(p: ChildProcess, pred: (m: { t: string } & T) => boolean) =>
  new Promise<T>((res, rej) => {
    const on = (m: { t: string } & T) => {
      if (!pred(m)) return;
      p.off('message', on);
      res(m);
    };
    p.on('message', on);
    p.once('exit', (c) => rej(new Error(`line hub exited (${c})`)));
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

console.log(`edgeferry MS/TP against bacnet-stack bacserv under load — ${machine()}`);
console.log(
  `line ${BAUD} baud (paced, own process), gateway MAC ${GW_MAC}, bacserv MAC ${PEER_MAC}; gateway main thread also polls ${PLCS} Modbus PLCs × ${POINTS} points every ${values['poll-ms']} ms and publishes each point to mosquitto (QoS 1); ${BUSY} busy loop(s); ${SECONDS} s per run\n`,
);

const busy: ChildProcess[] = [];
for (let i = 0; i < BUSY; i++) busy.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
const broker = await startMosquitto({ unboundedQueues: true });
const sims: ModbusSimulator[] = [];
for (let i = 0; i < PLCS; i++) sims.push(await startSim({ registers: counterRegisters(POINTS) }));

type Mode = 'inline' | 'thread';
const MODES = values.modes.split(',').filter((m): m is Mode => m === 'inline' || m === 'thread');
if (MODES.length === 0) throw new Error('--modes: inline, thread or both (comma-separated)');
const LABEL: Record<Mode, string> = { inline: 'the main event loop (before)', thread: 'its own thread (now)' };

async function run(mode: Mode) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-mstp-peer-'));
  const hub = fork(join(here, 'line-hub.js'), [String(BAUD), '2', `${GW_MAC},${PEER_MAC}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { ports, priority } = await waitFor<{ ports: string[]; priority: string }>(hub, (m) => m.t === 'ready');
  const peer = spawn(join(peersBin(), 'bacserv'), ['1234', 'refdev'], {
    stdio: 'ignore',
    env: { ...process.env, BACNET_IFACE: ports[1]!, BACNET_MSTP_BAUD: String(BAUD), BACNET_MSTP_MAC: String(PEER_MAC), BACNET_MAX_MASTER: '10' },
  });
  const modbus = sims.map(
    (s, i) =>
      `  - name: plc-${i}\n    driver: modbus_tcp\n    poll_interval_ms: ${values['poll-ms']}\n    connection: { host: 127.0.0.1, port: ${s.port} }\n    points:\n${Array.from({ length: POINTS }, (_, k) => `      - { name: p${k}, address: ${k} }`).join('\n')}`,
  );
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1
devices:
  - name: refdev
    driver: bacnet_mstp
    poll_interval_ms: 250
    connection: { port: ${ports[0]}, baud_rate: ${BAUD}, station: ${GW_MAC}, max_master: 10, mac: ${PEER_MAC}, device_instance: 1234 }
    points:
${['analog-input:1', 'analog-output:1', 'analog-value:1', 'binary-input:1', 'binary-value:1', 'multi-state-value:1'].map((o) => `      - { name: ${o.replace(/[-:]/g, '_')}, object: ${o} }`).join('\n')}
${modbus.join('\n')}
`,
  );
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `version: 1\nsite: b\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nhealth: { enabled: false }\nlogging: { level: warn }\n`,
  );
  const gw = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, EDGEFERRY_MSTP_INLINE: mode === 'inline' ? '1' : '0' },
  });
  await sleep(5000); // start-up, ring formed, polling steady
  const cpu0 = procStat(gw.pid!).cpuS;
  hub.send({ t: 'mark' });
  await sleep(SECONDS * 1000);
  hub.send({ t: 'report' });
  const r = await waitFor<Report>(hub, (m) => m.t === 'report');
  const cores = (procStat(gw.pid!).cpuS - cpu0) / SECONDS;
  await stopChild(gw);
  await stopChild(peer);
  hub.send({ t: 'stop' });
  await new Promise((res) => hub.once('exit', res));
  rmSync(dir, { recursive: true, force: true });
  return { mode, r, cores, priority };
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : x > 0 ? '∞' : '—');
/** Token uses with the missed ones (somebody else spoke first) counted as never. */
const uses = (s: Station[]) => [...s.flatMap((x) => x.delays), ...s.flatMap((x) => Array<number>(x.missed).fill(Infinity))];
const rows: Awaited<ReturnType<typeof run>>[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of MODES) {
      const x = await run(mode);
      rows.push(x);
      const line = (name: string, mac: number) => {
        const s = x.r.stations[String(mac)]!;
        const u = uses([s]);
        return `  ${name.padEnd(9)} tokens ${String(s.tokens).padStart(5)}  use delay p50 ${f(pct(u, 50))} ms  p99 ${f(pct(u, 99))} ms  max ${f(Math.max(...s.delays))} ms  later than 15 ms ${u.filter((d) => d > 15).length} (${s.missed} missed)  tokens lost ${s.lost}`;
      };
      console.log(
        `run ${rows.length}: gateway MS/TP data link on ${LABEL[mode]}; gateway ${x.cores.toFixed(2)} cores; line hub ${x.priority}; ${x.r.frames} frames`,
      );
      console.log(line('edgeferry', GW_MAC));
      console.log(line('bacserv', PEER_MAC));
      if (x.r.lostOther) console.log(`  tokens lost charged to other stations: ${x.r.lostOther}`);
      // The wire before each token lost, for whoever has to find out why (at most three a run).
      for (const c of x.r.contexts.filter((c) => c.startsWith('lost')).slice(0, 3)) console.log(`    ${c}`);
    }
  }
  console.log('\nsummary (all runs of a mode pooled; token-use delay with missed tokens counted as never):');
  for (const mode of MODES) {
    const of = rows.filter((x) => x.mode === mode);
    for (const [name, mac] of [
      ['edgeferry', GW_MAC],
      ['bacserv', PEER_MAC],
    ] as const) {
      const st = of.map((x) => x.r.stations[String(mac)]!);
      const u = uses(st);
      const lost = st.reduce((a, s) => a + s.lost, 0);
      console.log(
        `  ${mode.padEnd(6)} ${name.padEnd(9)} p50 ${f(pct(u, 50))} ms  p99 ${f(pct(u, 99))} ms  >15 ms ${u.filter((d) => d > 15).length}/${u.length}  tokens lost ${lost} in ${of.length * SECONDS} s`,
      );
    }
  }
} finally {
  for (const s of sims) await s.stop();
  await broker.stop();
  for (const b of busy) b.kill('SIGKILL');
}
