// kill -9 the gateway process at random moments under load, ten times: no committed sample is
// lost (each one reaches the broker or is still in the buffer file), per-point order holds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { analyse, bufferFile, missing } from '../helpers/delivery.js';
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
  sim = await startSim({
    registers: Array.from({ length: 10 }, (_, i) => ({
      area: 'holding' as const,
      address: i,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-crash-'));
  const points = Array.from({ length: 10 }, (_, i) => `      - { name: p${i}, address: ${i} }`).join('\n');
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 20\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n${points}\n`,
  );
  writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(broker).replace('health: { port: 0 }', 'health: { enabled: false }'));
  sub = await Subscriber.connect(broker, 's/g/#');
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await sub?.close();
  await sim?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(): { proc: ChildProcess; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(proc);
  return { proc, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}

const isData = (m: { topic: string }) => m.topic.startsWith('s/g/plc/');

describe('crash loop', () => {
  it('loses no committed sample over 10 kill -9 at random moments', async () => {
    let kills = 0;
    for (let i = 0; i < 10; i++) {
      const online = sub.next((m) => m.topic === 's/g/status' && m.json.state === 'online', 20_000, `online #${i}`);
      const { proc, exited } = run();
      await online;
      // 500 samples/s offered; kill somewhere between 50 ms and 1 s into the run.
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 950));
      proc.kill('SIGKILL');
      await exited;
      kills++;
    }
    // A last clean run drains what the kills left behind.
    const online = sub.next((m) => m.topic === 's/g/status' && m.json.state === 'online', 20_000, 'final online');
    const { proc, exited } = run();
    await online;
    await new Promise((r) => setTimeout(r, 500));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);

    const file = bufferFile(join(dir, 'buffer.db'));
    const d = analyse(sub.messages, isData);
    expect(kills).toBe(10);
    expect(file.lastSeq).toBeGreaterThan(1000);
    expect(missing(file.lastSeq, new Set(d.bySeq.keys()), file.stored)).toEqual([]);
    expect(d.outOfOrder).toEqual([]);
  });
});
