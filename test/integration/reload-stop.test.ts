// `edgeferry run` as systemd runs it (a separate process, NOTIFY_SOCKET and WATCHDOG_USEC set, a
// real notify socket, real mosquitto with mutual TLS, Modbus simulators):
// - READY=1 once running, WATCHDOG=1 while the event loop runs;
// - SIGHUP with a valid change: a device added and one removed, samples buffered while the broker
//   was away all delivered (no seq missing), the untouched device's link not reopened;
// - SIGHUP with a broken file: refused with the problem on the gateway status topic, the running
//   configuration keeps polling;
// - SIGTERM with samples buffered: STOPPING=1, every buffered sample published before exit 0, the
//   database left empty and closed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { gatewayYaml } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');

/** The systemd side of sd_notify: a Unix datagram socket that records what the gateway says. */
class NotifySocket {
  readonly lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: () => void }[] = [];
  private readonly sock: { bind(p: string): void; close(): void; on(e: 'message', f: (b: Buffer) => void): void };
  constructor(readonly path: string) {
    const dgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(t: 'unix_dgram'): NotifySocket['sock'] };
    this.sock = dgram.createSocket('unix_dgram');
    this.sock.on('message', (buf) => {
      for (const l of buf.toString().split('\n')) {
        this.lines.push(l);
        this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(), false) : true));
      }
    });
    this.sock.bind(path);
  }
  count = (line: string) => this.lines.filter((l) => l === line).length;
  /** Resolves on the next line (from now) that matches. */
  next(pred: (l: string) => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(this.lines.slice(-8))}`)), ms);
      this.waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) });
    });
  }
  close = () => this.sock.close();
}

let broker: Mosquitto;
const sims: ModbusSimulator[] = [];
let sub: Subscriber;
let dir: string;
let notify: NotifySocket;
const procs: ChildProcess[] = [];

const device = (name: string, sim: ModbusSimulator) =>
  `  - name: ${name}\n    driver: modbus_tcp\n    poll_interval_ms: 100\n    connection: { host: 127.0.0.1, port: ${sim.port}, timeout_ms: 1000 }\n    points:\n      - { name: level, address: 0 }\n`;
const writeDevices = (...names: string[]) =>
  writeFileSync(join(dir, 'devices.yaml'), `version: 1\ndevices:\n${names.map((n) => device(n, sims[['plc-a', 'plc-b', 'plc-c'].indexOf(n)]!)).join('')}`);

beforeAll(async () => {
  broker = await startMosquitto({ persistence: true });
  for (const v of [1, 2, 3]) sims.push(await startSim({ registers: [{ area: 'holding', address: 0, type: 'uint16', value: v }] }));
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-reload-'));
  notify = new NotifySocket(join(dir, 'notify.sock'));
  writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(broker, { mqtt: '  keepalive_s: 5' }));
  sub = await Subscriber.connect(broker, 's/g/#', true);
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await sub?.close();
  notify?.close();
  for (const s of sims) await s.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The daemon's log (JSON lines: stdout is a pipe). */
let stdout = '';
const logLines = (msg: RegExp) => stdout.split('\n').filter((l) => msg.test(l));

function run(): ChildProcess {
  const p = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '400000' },
  });
  p.stderr.resume();
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  procs.push(p);
  return p;
}

const data =
  (dev: string, after = 0) =>
  (m: Message) =>
    m.topic === `s/g/${dev}/level` && m.at > after;
/** Buffered samples (a reader beside the running gateway: WAL allows it). */
const depth = () => {
  const db = new Database(join(dir, 'buffer.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n;
  } finally {
    db.close();
  }
};
const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
/** Every seq from the first to the last seen, once at least: nothing lost. */
const missingSeqs = (msgs: Message[]) => {
  const seqs = new Set(msgs.map((m) => m.json.seq as number).filter((s) => typeof s === 'number'));
  const lo = Math.min(...seqs);
  const hi = Math.max(...seqs);
  const missing: number[] = [];
  for (let s = lo; s <= hi; s++) if (!seqs.has(s)) missing.push(s);
  return { missing, lo, hi };
};

describe('edgeferry run under systemd: notify, reload, stop', () => {
  let p: ChildProcess;

  it('says READY=1 once running and pings the watchdog from the event loop', async () => {
    writeDevices('plc-a', 'plc-b');
    const ready = notify.next((l) => l === 'READY=1', 20_000, 'READY=1');
    p = run();
    await ready;
    await sub.waitFor(data('plc-a'), 10_000, 'plc-a data');
    await sub.waitFor(data('plc-b'), 10_000, 'plc-b data');
    const pings = notify.count('WATCHDOG=1');
    await notify.next((l) => l === 'WATCHDOG=1', 5000, 'a watchdog ping');
    await notify.next((l) => l === 'WATCHDOG=1', 5000, 'another watchdog ping');
    expect(notify.count('WATCHDOG=1')).toBeGreaterThanOrEqual(pings + 2);
  });

  it('SIGHUP applies an added and a removed device; samples buffered meanwhile all arrive', async () => {
    // Broker away: samples pile up in the buffer, then the reload happens under them.
    await broker.kill();
    await until(() => depth() >= 20, 15_000, '20 samples buffered');
    writeDevices('plc-a', 'plc-c');
    const reloaded = notify.next((l) => l === 'READY=1', 15_000, 'READY=1 after the reload');
    const reloading = notify.next((l) => l === 'RELOADING=1', 15_000, 'RELOADING=1');
    p.kill('SIGHUP');
    await reloading;
    await reloaded;
    await broker.restart();
    const t = Date.now();
    const report = await sub.waitFor(
      (m) => m.topic === 's/g/status' && (m.json.config as { at?: string } | undefined)?.at !== undefined,
      15_000,
      'reload report',
    );
    expect(report.json.config).toMatchObject({ ok: true, added: ['plc-c'], removed: ['plc-b'], changed: [], restartNeeded: [] });
    // Only plc-b's and plc-c's links restarted; plc-a kept its link.
    const relinked = (report.json.config as { relinked: string[] }).relinked;
    expect(relinked.some((k) => k.includes(String(sims[0]!.port)))).toBe(false);
    expect(relinked.some((k) => k.includes(String(sims[2]!.port)))).toBe(true);
    await sub.waitFor(data('plc-c', t), 15_000, 'plc-c data');
    await sub.waitFor(data('plc-a', t), 15_000, 'plc-a data after the reload');
    // plc-b's retained status is cleared; its buffered samples were still delivered.
    await sub.waitFor((m) => m.topic === 's/g/status/plc-b' && m.text === '', 15_000, 'plc-b status cleared');
    await until(() => depth() === 0, 15_000, 'the buffer to drain');
    const { missing, lo, hi } = missingSeqs(sub.messages.filter((m) => /^s\/g\/plc-[abc]\/level$/.test(m.topic)));
    expect(missing, `seqs ${lo}..${hi}`).toEqual([]);
    expect(sub.messages.filter(data('plc-b')).length).toBeGreaterThan(0);
  });

  it('SIGHUP with a broken file is refused, says why on the status topic, and the running config stays', async () => {
    writeFileSync(
      join(dir, 'devices.yaml'),
      `version: 1\ndevices:\n  - name: plc-a\n    driver: modbus_tcp\n    connection: { host: 127.0.0.1, port: ${sims[0]!.port} }\n    points:\n      - { name: level, address: 0, type: uint17 }\n`,
    );
    const refused = sub.next(
      (m) => m.topic === 's/g/status' && (m.json.config as { ok?: boolean } | undefined)?.ok === false,
      15_000,
      'refusal on the status topic',
    );
    p.kill('SIGHUP');
    const m = await refused;
    const problems = (m.json.config as { problems: string[] }).problems.join('\n');
    expect(problems).toMatch(/devices\.yaml/);
    expect(problems).toMatch(/uint17/);
    // A second refused reload is a log line of its own (reload outcomes are audit lines, never held back as repeats).
    const m0 = m;
    const again = sub.next(
      (m) => m.topic === 's/g/status' && (m.json.config as { ok?: boolean } | undefined)?.ok === false && m !== m0,
      15_000,
      'the second refusal',
    );
    p.kill('SIGHUP');
    await again;
    await until(() => logLines(/reload refused/).length === 2, 10_000, 'two "reload refused" log lines');
    const t = Date.now();
    await sub.waitFor(data('plc-a', t), 10_000, 'plc-a still polled');
    await sub.waitFor(data('plc-c', t), 10_000, 'plc-c still polled');
    expect(p.exitCode).toBeNull();
  });

  it('SIGTERM publishes everything buffered, then exits 0 with the database empty and closed', async () => {
    await broker.kill();
    await until(() => depth() >= 20, 15_000, '20 samples buffered');
    await broker.restart();
    const stopping = notify.next((l) => l === 'STOPPING=1', 15_000, 'STOPPING=1');
    const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    await stopping;
    expect(await exit).toBe(0);
    // Closed cleanly: the WAL was checkpointed into the main file and removed.
    expect(existsSync(join(dir, 'buffer.db-wal'))).toBe(false);
    expect(depth()).toBe(0);
    const db = new Database(join(dir, 'buffer.db'), { readonly: true });
    const maxSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").get() as { seq: number }).seq;
    db.close();
    // The broker acknowledged every one before the gateway exited; its copies reach this
    // subscriber a moment later (the last of them may still be on their way at the exit).
    const isLevel = (m: { topic: string }) => /^s\/g\/plc-[abc]\/level$/.test(m.topic);
    await sub.waitFor((m) => isLevel(m) && m.json.seq === maxSeq, 5_000, `seq ${maxSeq} at the subscriber`);
    const { missing, lo, hi } = missingSeqs(sub.messages.filter(isLevel));
    expect(missing, `seqs ${lo}..${hi}`).toEqual([]);
    expect(hi).toBe(maxSeq);
  });
});
