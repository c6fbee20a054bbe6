// Logs as journald and a person see them. Under systemd, stdout is a stream to the journal that
// systemd names in JOURNAL_STREAM (device:inode); each line then starts with its syslog priority
// (<4> for a warning) — what journald reads to make `journalctl -p warning` work. Here the gateway
// runs as a real process whose stdout is a file named the same way, with its broker unreachable.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogSink, REPEAT_WINDOW_MS, textLine } from '../../src/log.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const dir = mkdtempSync(join(tmpdir(), 'edgeferry-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const closedPort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

describe('logs for journald and people', () => {
  it('under systemd, a warning line carries journald priority 4, an info line 6; a repeated broker error is printed once, and its count at the stop', async () => {
    const port = await closedPort();
    writeFileSync(
      join(dir, 'devices.yaml'),
      'version: 1\ndevices:\n  - { name: plc, driver: modbus_tcp, poll_interval_ms: 1000, enabled: false, connection: { host: 127.0.0.1 }, points: [{ name: v, address: 0 }] }\n',
    );
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtts://127.0.0.1:${port}\n  reconnect_ms: 200\nbuffer: { path: buffer.db }\nhealth: { enabled: false }\n`,
    );
    const out = join(dir, 'journal.txt');
    const fd = openSync(out, 'w');
    const st = fstatSync(fd);
    const p = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], {
      cwd: dir,
      stdio: ['ignore', fd, 'ignore'],
      env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    });
    closeSync(fd);
    try {
      // About 20 connection attempts in 4 s (reconnect_ms 200): wait for the first error, then for more attempts.
      const deadline = Date.now() + 15_000;
      while (!/mqtt error/.test(readFileSync(out, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 4000));
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const errors = lines.filter((l) => l.includes('mqtt error'));
    // Printed once while it repeats; at the stop, the count of those held back, after "gateway stopped".
    expect(errors.length, lines.join('\n')).toBe(2);
    expect(errors[0]).toMatch(/^<4>WARN {2}publisher: mqtt error err="connect ECONNREFUSED 127\.0\.0\.1:\d+" code=ECONNREFUSED$/);
    expect(errors[1]).toMatch(/ repeated="\d+ more like it in the last \d+ s \(this is the last of them\)"$/);
    expect(lines.indexOf(errors[1]!)).toBeGreaterThan(lines.findIndex((l) => l.includes('gateway stopped')));
    expect(lines.find((l) => l.includes('gateway started'))).toMatch(/^<6>INFO {2}gateway started /);
    // journald stamps lines itself: no second time in them.
    expect(lines.every((l) => /^<\d>[A-Z]+ /.test(l))).toBe(true);
  }, 30_000);

  it('text on a terminal: ISO time and level name; JSON for collectors: level name and ISO time too', () => {
    const l = { level: 40, time: 1795940900782, component: 'link', msg: 'device down', device: 'plc', reason: 'tcp://10.0.0.5:502: no answer after 500 ms' };
    expect(textLine(l, true)).toBe('2026-11-29T08:28:20.782Z WARN  link: device down device=plc reason="tcp://10.0.0.5:502: no answer after 500 ms"');
    const got: string[] = [];
    new LogSink({ format: 'json', journald: false, write: (s) => void got.push(s) }).write(
      JSON.stringify({ level: 'warn', time: '2026-11-29T08:28:20.782Z', msg: 'x' }),
    );
    expect(JSON.parse(got[0]!)).toEqual({ level: 'warn', time: '2026-11-29T08:28:20.782Z', msg: 'x' });
  });

  it('holds back identical warnings for a minute and then says how many there were', () => {
    let now = 0;
    const got: string[] = [];
    const sink = new LogSink({ format: 'text', journald: true, write: (s) => void got.push(s), now: () => now });
    const line = (msg: string, device = 'plc') => JSON.stringify({ level: 'error', component: 'publisher', msg, device, err: { message: 'refused' } });
    sink.write(line('mqtt error'));
    for (let i = 0; i < 29; i++) {
      now += 2000;
      sink.write(line('mqtt error'));
    }
    sink.write(line('mqtt error', 'other')); // another device: not the same line
    sink.write(JSON.stringify({ level: 'info', msg: 'device up' }));
    sink.write(JSON.stringify({ level: 'info', msg: 'device up' })); // info is never held back
    now = REPEAT_WINDOW_MS + 1;
    sink.write(line('mqtt error'));
    expect(got).toEqual([
      '<3>ERROR publisher: mqtt error device=plc err="refused"\n',
      '<3>ERROR publisher: mqtt error device=other err="refused"\n',
      '<6>INFO  device up\n',
      '<6>INFO  device up\n',
      '<3>ERROR publisher: mqtt error device=plc err="refused" repeated="29 more like it in the 60 s before"\n',
    ]);
  });

  it('never holds back audit lines (every write attempt, every reload outcome), and prints the counts it holds at stop (flush)', () => {
    const now = 0;
    const got: string[] = [];
    const sink = new LogSink({ format: 'json', journald: false, write: (s) => void got.push(s), now: () => now });
    const refused = (id: number) =>
      JSON.stringify({ level: 'warn', component: 'commands', msg: 'write refused', audit: 'write', device: 'plc', point: 'ro', request_id: id });
    for (let i = 0; i < 5; i++) sink.write(refused(i));
    const reload = JSON.stringify({
      level: 'error',
      msg: 'reload refused [GW_ERR_CONFIG_INVALID]: 1 problem; the running configuration stays',
      audit: 'reload',
    });
    sink.write(reload);
    sink.write(reload);
    const warn = (n: number) => JSON.stringify({ level: 'warn', component: 'link', msg: 'device down', device: 'plc', n });
    for (let i = 0; i < 4; i++) sink.write(warn(i));
    expect(got.length).toBe(5 + 2 + 1);
    sink.flush();
    expect(got.length).toBe(9);
    expect(JSON.parse(got[8]!)).toMatchObject({ msg: 'device down', n: 3, repeated: '3 more like it in the last 0 s (this is the last of them)' });
    sink.flush(); // nothing held any more
    expect(got.length).toBe(9);
  });
});
