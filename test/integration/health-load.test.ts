// The health port shares the event loop with polling (issue 33): 200 parallel clients asking every
// URL as fast as they are answered, with 100,000 samples buffered (the broker away), must not slow
// the polls. The daemon runs as its own process (`edgeferry run`); the clients are this process.
// Poll gaps are read from the buffer afterwards: every sample carries the time it was taken. The
// assertions are about what a user would see (polls missed, a stall of a second, a monitor check
// unanswered), not a tight timing bound: the figures are printed, bench/ measures them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../../src/buffer/sqlite.js';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import { start as startSim } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { stopChild } from '../../simulators/stop-child.js';
import { gatewayYaml } from '../helpers/gateway.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const INTERVAL_MS = 100;
const CLIENTS = 200;
const LOAD_MS = 20_000;
const BACKLOG = 100_000;
const URLS = ['/healthz', '/metrics', '/status.json', '/', '/status.js', '/nothing'];

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One GET; resolves with the status code, or 0 when the connection failed. */
function get(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    let answer: IncomingMessage | undefined;
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      answer = res;
      res.resume();
      // 'close' comes after 'end', and also when the socket dies mid-body (then it is a failure).
      res.on('close', () => resolve(res.complete ? (res.statusCode ?? 0) : 0));
      res.on('error', () => undefined);
    });
    req.on('error', () => resolve(0));
    // However the request ends (destroyed before any answer included), it is counted once.
    req.on('close', () => resolve(answer?.complete ? (answer.statusCode ?? 0) : 0));
    // Never wait forever (a port that accepts and says nothing): counted as failed.
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.end();
  });
}

/** Where the test is, printed as it goes (a timeout then says which step did not end). */
const phase = (what: string) => console.log(`health-load ${new Date().toISOString()}: ${what}`);

describe('the health port under load', () => {
  it(
    `${CLIENTS} parallel clients on every URL for ${LOAD_MS / 1000} s with ${BACKLOG} samples buffered: polling keeps its rate, every monitor check answered`,
    { timeout: 180_000 },
    async () => {
      phase('start');
      const broker = await startMosquitto();
      cleanups.push(() => broker.stop());
      phase('broker started');
      await broker.kill(); // away for the whole test: the backlog stays
      phase('broker stopped');
      const sim = await startSim({
        registers: [{ area: 'holding', address: 0, type: 'uint16', generator: { kind: 'counter', step: 1, every_ms: 10, wrap: 60000 } }],
      });
      cleanups.push(() => sim.stop());
      const dir = mkdtempSync(join(tmpdir(), 'edgeferry-healthload-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

      // The backlog, written before the start as an outage would have left it.
      const pre = new SqliteBuffer(join(dir, 'buffer.db'), { synchronous: 'normal', maxBytes: 2 ** 40, maxAgeS: 2 ** 40 });
      pre.open();
      const t0 = Date.now() - 3_600_000;
      for (let i = 0; i < BACKLOG; i += 1000) {
        pre.append(
          Array.from({ length: 1000 }, (_, k) => ({
            ts: t0 + i + k,
            device: 'old',
            point: `p${k % 50}`,
            value: i + k,
            quality: 'good' as const,
            channel: 'primary',
          })),
        );
      }
      pre.close();
      phase(`${BACKLOG} samples buffered`);

      writeFileSync(
        join(dir, 'devices.yaml'),
        `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: ${INTERVAL_MS}\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n      - { name: v, address: 0 }\n`,
      );
      // Port 0: the daemon binds its own and logs it (no race with other tests for a port picked here).
      writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(broker).replace('logging: { level: warn }', 'logging: { level: info }'));
      const proc: ChildProcess = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      cleanups.push(() => stopChild(proc));
      let port = 0;
      const startBy = Date.now() + 60_000;
      while (!port) {
        if (proc.exitCode !== null) throw new Error(`the daemon exited: ${stderr.slice(-2000)}`);
        if (Date.now() > startBy) throw new Error(`no health_port in the daemon's log within 60 s: ${stdout.slice(-2000)}${stderr.slice(-2000)}`);
        port = Number(/"health_port":(\d+)/.exec(stdout)?.[1] ?? 0);
        await new Promise((r) => setTimeout(r, 100));
      }
      phase(`daemon up, health port ${port}`);
      const probe = new Agent({ keepAlive: false });

      // The load: each client asks the next URL as soon as the last one is answered (or failed).
      const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
      const codes = new Map<number, number>();
      let stop = false;
      const loadFrom = Date.now();
      const clients = Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = c; !stop; i++) {
          const code = await get(agent, port, URLS[i % URLS.length]!);
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === 0) await new Promise((r) => setTimeout(r, 10));
        }
      });
      // A monitor checks /healthz once a second on its own connection, as systemd or Nagios would.
      const monitor: number[] = [];
      while (Date.now() - loadFrom < LOAD_MS) {
        const t = Date.now();
        // One check: the status once the whole answer is in, 0 when it failed or took over 5 s.
        const check = fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then(
          async (res) => (await res.arrayBuffer(), res.status),
          () => 0,
        );
        monitor.push(await Promise.race([check, new Promise<number>((r) => setTimeout(() => r(0), 6000).unref())]));
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t))));
      }
      const loadTo = Date.now();
      stop = true;
      // Whatever is still in flight ends now (its socket destroyed), so no client can wait on a stalled answer.
      agent.destroy();
      phase(`load over; waiting for ${CLIENTS} clients' last requests`);
      let pending = CLIENTS;
      const settled = Promise.all(clients.map((c) => c.then(() => pending--)));
      const done = await Promise.race([settled.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000).unref())]);
      expect(done, `${pending} clients still waiting for an answer 30 s after the load stopped`).toBe(true);
      probe.destroy();
      phase('clients done; stopping the daemon');
      // SIGTERM must end it (the stop deadline is the daemon's own); say so rather than time out.
      const exited = new Promise<boolean>((r) => proc.once('exit', () => r(true)));
      proc.kill('SIGTERM');
      const stopped = await Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), 60_000).unref())]);
      expect(stopped, `the daemon did not exit within 60 s of SIGTERM: ${stdout.slice(-3000)}`).toBe(true);

      const db = new Database(join(dir, 'buffer.db'), { readonly: true });
      const taken = db.prepare("SELECT ts FROM samples WHERE device = 'plc' AND ts BETWEEN ? AND ? ORDER BY ts").pluck().all(loadFrom, loadTo) as number[];
      const backlog = db.prepare("SELECT count(*) FROM samples WHERE device = 'old'").pluck().get() as number;
      db.close();
      const gaps = taken.slice(1).map((t, i) => t - taken[i]!);
      const sorted = [...gaps].sort((a, b) => a - b);
      const answered = [...codes].filter(([c]) => c > 0).reduce((n, [, k]) => n + k, 0);
      console.log(
        `health port: ${answered} answers in ${((loadTo - loadFrom) / 1000).toFixed(1)} s (${JSON.stringify(Object.fromEntries(codes))}); ` +
          `${taken.length} polls, gap p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms; monitor ${JSON.stringify(monitor)}; daemon log ${stdout.length + stderr.length} bytes`,
      );
      expect(backlog).toBe(BACKLOG); // nothing of the backlog lost or sent (the broker is away)
      expect(answered).toBeGreaterThan(CLIENTS * 10); // the load was real: every client was answered many times
      expect(monitor.every((c) => c === 200 || c === 503)).toBe(true); // 503: the broker is away
      expect(taken.length).toBeGreaterThan((LOAD_MS / INTERVAL_MS) * 0.9); // polling kept its rate (it fell to 11–31% before)
      expect(Math.max(...gaps)).toBeLessThan(1000); // no stall a user would see (3 s gaps before)
    },
  );
});
