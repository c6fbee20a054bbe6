// `edgeferry run` as systemd runs it: a separate process against a real mosquitto (mutual TLS).
// The retained gateway status says online after start, offline via the Last Will when the
// process is killed (-9), and offline with reason "stopped" after a clean SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { gatewayYaml } from '../helpers/gateway.js';
import { Subscriber } from '../helpers/subscriber.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
let broker: Mosquitto;
let sim: ModbusSimulator;
let sub: Subscriber;
let dir: string;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  broker = await startMosquitto();
  sim = await startSim({ registers: [{ area: 'holding', address: 0, type: 'uint16', value: 42 }] });
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-run-'));
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n      - { name: level, address: 0 }\n`,
  );
  writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(broker, { mqtt: '  keepalive_s: 5' }));
  sub = await Subscriber.connect(broker, 's/g/#');
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await sub?.close();
  await sim?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(): ChildProcess {
  const p = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(p);
  return p;
}

const status = (state: string, reason?: string) => (m: { topic: string; json: Record<string, unknown> }) =>
  m.topic === 's/g/status' && m.json.state === state && (reason === undefined || m.json.reason === reason);

describe('edgeferry run (separate process)', () => {
  it('goes online, publishes data, and its Last Will says offline when killed with -9', async () => {
    const online = sub.next(status('online'), 15_000, 'online');
    const p = run();
    await online;
    await sub.next((m) => m.topic === 's/g/plc/level' && m.json.value === 42, 10_000, 'data');
    const will = sub.next(status('offline', 'connection lost'), 15_000, 'Last Will');
    p.kill('SIGKILL');
    // The Will says when the lost session began (not a time of death it cannot know).
    const w = await will;
    expect(w.json.ts).toBeUndefined();
    expect(new Date(w.json.session_since as string).getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('stops cleanly on SIGTERM with exit code 0 and a retained offline status', async () => {
    const online = sub.next(status('online'), 15_000, 'online');
    const p = run();
    await online;
    const stopped = sub.next(status('offline', 'stopped'), 15_000, 'offline (stopped)');
    const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    expect(await exit).toBe(0);
    await stopped;
    const late = await Subscriber.connect(broker, 's/g/status');
    const retained = await late.waitFor(() => true, 5000, 'retained status').finally(() => late.close());
    expect(retained).toMatchObject({ retain: true, json: { state: 'offline', reason: 'stopped' } });
  });
});
