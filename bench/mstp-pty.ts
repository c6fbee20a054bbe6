// MS/TP token passing with bacnet-stack's bacserv on a plain socat pty pair — no pacing, octets
// cross the moment they are written, as with a USB-RS485 adapter's bursts but more so. The gateway
// (`edgeferry run`, a real process) polls bacserv's objects; socat's own dump of the pair (`-x -v`)
// is decoded by the Clause 9 line monitor. Per run: token passes and retries of each station,
// the gateway's token loop (time between tokens it receives), silences of Tno_token (token lost)
// and who held the token then. Runs idle and with busy loops holding the cores; with --baseline
// (another build's dist/src/main.js) the two builds alternate, run by run.
//
//   npm run bench:mstp-pty -- [--seconds 60] [--rounds 1] [--busy 0,2] [--baseline /path/to/old/dist/src/main.js]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { MstpMonitor, tallyTokens } from '../simulators/bacnet-mstp/monitor.js';
import { peersBin } from '../simulators/peers.js';
import { ptyPair } from '../simulators/serial-line.js';
import { stopChild } from '../simulators/stop-child.js';
import { machine, pct } from './lib.js';

const values = scriptArgs('bench:mstp-pty', 'MS/TP token passing against bacnet-stack bacserv on a plain pty pair.', {
  seconds: { type: 'string', default: '60' },
  rounds: { type: 'string', default: '1' },
  busy: { type: 'string', default: '0,2' },
  baseline: { type: 'string', default: '' },
});
const SECONDS = Number(values.seconds);
const here = dirname(fileURLToPath(import.meta.url));
const NOW = join(resolve(here, '../..'), 'dist/src/main.js');
const GW = 3;
const PEER = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(cli: string, busyLoops: number) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-mstp-pty-'));
  const monitor = new MstpMonitor({ usageTimeoutMs: 20, slackMs: 2 });
  let counting = false;
  const line = await ptyPair(dir, 'tty', (_from, at, octets) => counting && monitor.feed(octets, at));
  const peer = spawn(join(peersBin(), 'bacserv'), ['1234', 'refdev'], {
    stdio: 'ignore',
    env: { ...process.env, BACNET_IFACE: line.b, BACNET_MSTP_BAUD: '38400', BACNET_MSTP_MAC: String(PEER), BACNET_MAX_MASTER: '10' },
  });
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1
devices:
  - name: refdev
    driver: bacnet_mstp
    poll_interval_ms: 250
    connection: { port: ${line.a}, baud_rate: 38400, station: ${GW}, max_master: 10, mac: ${PEER}, device_instance: 1234 }
    points:
${['analog-input:1', 'analog-output:1', 'analog-value:1', 'binary-input:1', 'binary-value:1', 'multi-state-value:1'].map((o) => `      - { name: ${o.replace(/[-:]/g, '_')}, object: ${o} }`).join('\n')}
`,
  );
  // No broker: the samples stay in the buffer; the line is what is measured.
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `version: 1\nsite: b\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtt://127.0.0.1:1\n  allow_plaintext: true\nbuffer: { path: buffer.db }\nhealth: { enabled: false }\nlogging: { level: error }\n`,
  );
  const gw = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const busy: ChildProcess[] = [];
  try {
    await sleep(4000); // ring formed, polling steady
    for (let i = 0; i < busyLoops; i++) busy.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
    counting = true;
    await sleep(SECONDS * 1000);
    counting = false;
  } finally {
    for (const b of busy) b.kill('SIGKILL');
    await stopChild(gw);
    await stopChild(peer);
    await line.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const t = tallyTokens(monitor.frames);
  const loops = monitor.tokenLoops(GW);
  return { t, loops, frames: monitor.frames.length, violations: monitor.violations.length };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
const share = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(2)}%` : '—');
const builds: [string, string][] = values.baseline
  ? [
      ['baseline', resolve(values.baseline)],
      ['now', NOW],
    ]
  : [['now', NOW]];
const busyList = values.busy.split(',').map(Number);
console.log(`edgeferry MS/TP on a plain pty pair against bacnet-stack bacserv — ${machine()}`);
console.log(`38400 baud, gateway MAC ${GW}, bacserv MAC ${PEER}, 6 objects polled every 250 ms; ${SECONDS} s per run\n`);
const pooled = new Map<string, { passes: number; retries: number; loops: number[]; lostGw: number; lost: number }>();
for (let r = 0; r < Number(values.rounds); r++) {
  for (const busy of busyList) {
    for (const [name, cli] of builds) {
      const x = await run(cli, busy);
      const passes = [...x.t.passes.values()].reduce((a, b) => a + b, 0);
      const retries = [...x.t.retries.values()].reduce((a, b) => a + b, 0);
      const lost = [...x.t.lost.values()].reduce((a, b) => a + b, 0);
      const lostGw = x.t.lost.get(GW) ?? 0;
      console.log(
        `${name.padEnd(8)} busy ${busy}: ${x.frames} frames; token passes edgeferry ${x.t.passes.get(GW) ?? 0} bacserv ${x.t.passes.get(PEER) ?? 0}; ` +
          `retries edgeferry ${x.t.retries.get(GW) ?? 0} bacserv ${x.t.retries.get(PEER) ?? 0} (${share(retries, passes)} of passes); ` +
          `edgeferry's token loop p50 ${f1(pct(x.loops, 50))} ms p99 ${f1(pct(x.loops, 99))} ms; tokens lost ${lost} (held by edgeferry ${lostGw}); monitor violations ${x.violations}`,
      );
      const key = `${name} busy ${busy}`;
      const p = pooled.get(key) ?? { passes: 0, retries: 0, loops: [], lostGw: 0, lost: 0 };
      p.passes += passes;
      p.retries += retries;
      p.loops.push(...x.loops);
      p.lost += lost;
      p.lostGw += lostGw;
      pooled.set(key, p);
    }
  }
}
console.log('\nsummary:');
for (const [k, p] of pooled)
  console.log(
    `  ${k.padEnd(18)} retries ${share(p.retries, p.passes)} of ${p.passes} passes; token loop p50 ${f1(pct(p.loops, 50))} ms p99 ${f1(pct(p.loops, 99))} ms; lost ${p.lost} (edgeferry ${p.lostGw})`,
  );
