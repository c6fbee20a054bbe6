// A genuinely full disk (issue 15): the gateway runs as its own process (`edgeferry run`) with its
// buffer on a small tmpfs the test mounts, the broker down until the disk has been full for 30 s —
// part of that time another program's file takes even the last free block — then back. The daemon
// must never exit; every seq must arrive, stay buffered or be named in a data_lost event; the
// counts must add up; bulk must go before critical; after the broker returns the buffer drains and
// the status says up again. Needs root (mount); CI runs as root.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../simulators/free-port.js';
import { start as startSim } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { analyse, bufferFile, missing } from '../helpers/delivery.js';
import { gatewayYaml } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const root = process.getuid?.() === 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Healthz {
  ok: boolean;
  reasons: string[];
  health: string;
  degraded: Record<string, string>;
  mqtt: { state: string };
  buffer: { depth: number; evicted: number; unstored: number; state: string };
}

interface Mix {
  /** Each point's priority, in register order (one poll reads them all). */
  priorities: ('critical' | 'normal' | 'bulk')[];
  intervalMs: number;
  /** The tmpfs's size: the disk fills in tens of seconds at this mix's rate. */
  disk: string;
}

/** The first test's mix: one alarm among 39 bulk points. */
const BULK_MIX: Mix = { priorities: ['critical', ...Array<'bulk'>(39).fill('bulk')], intervalMs: 25, disk: '6m' };
/** Every priority on every page: deleting bulk rows alone frees no whole page of the file. */
const INTERLEAVED_MIX: Mix = { priorities: ['critical', 'bulk', 'normal', 'normal', 'normal'], intervalMs: 10, disk: '2m' };

describe('a full disk', () => {
  it.skipIf(!root)(
    'keeps the daemon running, evicts bulk first, accounts every seq, drains and recovers when the broker returns (root: mounts a tmpfs)',
    { timeout: 240_000 },
    () => fullDisk(BULK_MIX),
  );
  it.skipIf(!root)(
    '1 critical, 1 bulk and 3 normal points per poll: nothing refused while lower priorities can be evicted, critical never evicted, reserve back and up after the drain',
    { timeout: 240_000 },
    () => fullDisk(INTERLEAVED_MIX),
  );
});

async function fullDisk(mix: Mix): Promise<void> {
  const POINTS = mix.priorities.length;
  const INTERVAL_MS = mix.intervalMs;
  const name = (i: number) => (mix.priorities[i] === 'critical' ? 'alarm' : `${mix.priorities[i]}${i}`);
  const mnt = mkdtempSync(join(tmpdir(), 'edgeferry-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mix.disk}`, 'tmpfs', mnt]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const b = await startMosquitto({ persistence: true });
  cleanups.push(() => b.stop());
  const sub = await Subscriber.connect(b, 's/g/#', true);
  cleanups.push(() => sub.close());
  await b.kill();

  const sim = await startSim({
    registers: Array.from({ length: POINTS }, (_, i) => ({
      area: 'holding' as const,
      address: i,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  cleanups.push(() => sim.stop());
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-fulldisk-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const points = mix.priorities.map((p, i) => `      - { name: ${name(i)}, address: ${i}, priority: ${p} }`).join('\n');
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: ${INTERVAL_MS}\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n${points}\n`,
  );
  const healthPort = await freePort();
  const bufferPath = join(mnt, 'buffer.db');
  writeFileSync(
    join(dir, 'gateway.yaml'),
    gatewayYaml(b, { buffer: '  max_bytes: 1073741824' })
      .replace('  path: buffer.db', `  path: ${bufferPath}`)
      .replace('health: { port: 0 }', `health: { port: ${healthPort} }`),
  );

  const proc: ChildProcess = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited: number | null | undefined;
  proc.once('exit', (code) => (exited = code));
  cleanups.push(() => {
    if (exited === undefined) proc.kill('SIGKILL');
  });
  const healthz = async (): Promise<Healthz> => {
    if (exited !== undefined) throw new Error(`the daemon exited (${exited}): ${stderr.slice(-2000)}`);
    return (await (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json()) as Healthz;
  };
  const buffered = async () =>
    Number(/^edgeferry_samples_buffered_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text())?.[1]);
  const until = async (what: string, ok: (h: Healthz) => boolean, ms: number): Promise<Healthz> => {
    const end = Date.now() + ms;
    for (;;) {
      const h = await healthz().catch((err: Error) => {
        if (exited !== undefined) throw err;
        return undefined; // not listening yet
      });
      if (h && ok(h)) return h;
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(h)})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const full = await until('the disk full', (h) => /disk full/.test(h.degraded.buffer ?? ''), 90_000);
  expect(full.health).toBe('degraded');
  const fullAt = Date.now();
  const bufferedAtFull = await buffered();
  // Full for at least 30 s; 5 s in, another program's file takes every block that is left.
  await new Promise((r) => setTimeout(r, 5000));
  // The gateway may give blocks back meanwhile (an eviction, a WAL truncation): the filler takes
  // those too, until the file system has nothing left.
  let left = -1;
  for (let i = 0; i < 20 && left !== 0; i++) {
    try {
      appendFileSync(join(mnt, 'filler'), Buffer.alloc(8 << 20));
    } catch {
      /* ENOSPC: written as far as it would go */
    }
    left = Number(execFileSync('df', ['--output=avail', mnt]).toString().split('\n')[1]);
  }
  expect(left).toBe(0);
  await new Promise((r) => setTimeout(r, 15_000));
  unlinkSync(join(mnt, 'filler'));
  while (Date.now() - fullAt < 30_000) {
    const h = await healthz();
    expect(h.buffer.state).toBe('degraded');
    expect(h.ok).toBe(false);
    expect(h.reasons.join()).toMatch(/buffer degraded: .*disk full/);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const keptPerS = ((await buffered()) - bufferedAtFull) / ((Date.now() - fullAt) / 1000);
  const duringFull = await healthz();
  expect(duringFull.buffer.evicted).toBeGreaterThan(0);
  expect(keptPerS).toBeGreaterThan(((0.5 * (POINTS * 1000)) / INTERVAL_MS) * 0.25); // polling went on (a loose floor: a loaded 2-core box)

  const backAt = Date.now();
  await b.restart();
  await until('drained', (h) => h.mqtt.state === 'connected' && h.buffer.depth < POINTS * 4, 120_000);
  const drainedAt = Date.now();
  const recoverS = (drainedAt - backAt) / 1000;
  // Health follows the disk: the reserve is made again from the pages the drain freed, and the
  // gateway says up (HTTP 200) within seconds — not "disk full" until a restart.
  await until('up after the drain', (h) => h.health === 'up', 20_000);
  const upAfterDrainS = (Date.now() - drainedAt) / 1000;
  expect((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status).toBe(200);
  expect(statSync(`${bufferPath}.reserve`, { throwIfNoEntry: false })?.size).toBeGreaterThan(0);
  // Nothing refused while anything of lower priority could be evicted (every mix here has some).
  expect(duringFull.buffer.unstored).toBe(0);
  // Plant systems see it too: the retained gateway status said degraded (disk full), then up.
  const statuses = () => sub.messages.filter((m) => m.topic === 's/g/status' && m.at >= backAt);
  expect(statuses().some((m) => m.json.health === 'degraded' && /disk full/.test(String((m.json.degraded as Record<string, string>).buffer)))).toBe(true);
  await sub.waitFor(() => statuses().some((m) => m.json.health === 'up' && m.json.state === 'online'), 15_000, 'the gateway status back to up');
  console.log(
    `full disk: ${keptPerS.toFixed(0)} samples/s kept while full (polled ${(POINTS * 1000) / INTERVAL_MS}/s), ${duringFull.buffer.evicted} evicted, ${duringFull.buffer.unstored} not stored; drained ${recoverS.toFixed(1)} s after the broker returned, up ${upAfterDrainS.toFixed(1)} s after that`,
  );

  proc.kill('SIGTERM');
  await new Promise<void>((r) => (exited !== undefined ? r() : proc.once('exit', () => r())));
  expect(exited).toBe(0);
  const file = bufferFile(bufferPath);
  const db = new Database(bufferPath, { readonly: true });
  const unstored = (db.prepare("SELECT value FROM counters WHERE name = 'lost_unstored'").pluck().get() as number | undefined) ?? 0;
  db.close();

  const lossCount = (evs: Record<string, unknown>[]) => evs.filter((e) => e.event === 'data_lost').reduce((n, e) => n + (e.count as number), 0);
  const stillPending = lossCount(file.pendingEvents);
  const arrived = () => sub.messages.filter((m) => m.topic === 's/g/events').map((m) => m.json);
  await sub.waitFor(() => lossCount(arrived()) + stillPending >= file.evicted + unstored, 15_000, 'every loss event');
  const losses = [...arrived(), ...file.pendingEvents].filter((e) => e.event === 'data_lost');
  expect(unstored).toBe(0);
  expect(lossCount(losses)).toBe(file.evicted + unstored);
  const lost = new Set<number>();
  for (const l of losses) for (const [x, z] of l.ranges as [number, number][]) for (let q = x; q <= z; q++) lost.add(q);
  expect(lost.size).toBe(file.evicted + unstored);
  // Bulk before critical: no critical sample was evicted, and every alarm sample arrived.
  expect(losses.every((l) => !(l.by_priority as Record<string, number>).critical)).toBe(true);
  const isData = (m: Message) => m.topic.startsWith('s/g/plc/');
  const d = analyse(sub.messages, isData);
  const received = new Set(d.bySeq.keys());
  expect([...lost].filter((q) => received.has(q))).toEqual([]);
  expect(missing(file.lastSeq, received, lost, file.stored)).toEqual([]);
  const alarms = [...d.bySeq.values()]
    .filter((m) => m.topic === 's/g/plc/alarm')
    .map((m) => Date.parse(m.json.ts as string))
    .sort((x, y) => x - y);
  expect(alarms.length).toBeGreaterThan((30_000 / INTERVAL_MS) * 0.5);
  expect(Math.max(...alarms.slice(1).map((t, i) => t - alarms[i]!))).toBeLessThan(2000);
}
