// A reload never stalls the plant (issue 16): `edgeferry run` polls a PLC every 100 ms while it is
// sent SIGHUP with a large valid map (30,000 points over 300 devices) and then with the same map
// broken at its end. The PLC is polled while the map is loaded (polls between the "reloading" and
// the "applied" status: events, not wall-clock bounds — the largest gap is printed), and the MQTT
// session (keep-alive 5 s) is never dropped: no Last Will "offline" on the status topic.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startSim } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml } from '../helpers/gateway.js';
import { Subscriber } from '../helpers/subscriber.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const INTERVAL = 100;

/** 300 devices × 100 points; the first 10 enabled (on their own PLC), the rest disabled but checked in full. */
function bigMap(port: number, broken: boolean): string {
  let y = 'version: 1\ndevices:\n';
  for (let d = 0; d < 300; d++) {
    y += `  - name: line-${d}\n    driver: modbus_tcp\n    enabled: ${d < 10}\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: ${port}, unit_id: ${1 + (d % 200)} }\n    points:\n`;
    for (let k = 0; k < 100; k++) y += `      - { name: p${k}, address: ${k}${k % 10 === 0 ? ', priority: critical' : ''} }\n`;
  }
  if (broken) y += '      - { name: oops, address: 100, area: holdng }\n';
  return y;
}

describe('reload of a large map', () => {
  it('keeps polling every 100 ms and the MQTT session alive while a 30,000-point map is loaded, applied and refused', { timeout: 120_000 }, async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const plc = await startSim({
      registers: [{ area: 'holding', address: 0, type: 'uint16', generator: { kind: 'counter', step: 1, every_ms: 10, wrap: 60000 } }],
    });
    cleanups.push(() => plc.stop());
    const line = await startSim({ registers: Array.from({ length: 100 }, (_, i) => ({ area: 'holding' as const, address: i, value: i })) });
    cleanups.push(() => line.stop());
    const sub = await Subscriber.connect(broker, 's/g/#');
    cleanups.push(() => sub.close());
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-reload-large-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'lines'));
    writeFileSync(
      join(dir, 'lines', 'lines.yaml'),
      `version: 1\ndevices:\n  - name: spare\n    driver: modbus_tcp\n    enabled: false\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: ${line.port} }\n    points:\n      - { name: p0, address: 0 }\n`,
    );
    writeFileSync(
      join(dir, 'devices.yaml'),
      `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: ${INTERVAL}\n    connection: { host: 127.0.0.1, port: ${plc.port} }\n    points:\n      - { name: level, address: 0 }\n`,
    );
    writeFileSync(
      join(dir, 'gateway.yaml'),
      gatewayYaml(broker, { mqtt: '  keepalive_s: 5' }).replace('devices: [devices.yaml]', 'devices: [devices.yaml, lines]'),
    );

    const proc: ChildProcess = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let exited: number | null | undefined;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    proc.once('exit', (code) => (exited = code));
    cleanups.push(() => {
      if (exited === undefined) proc.kill('SIGKILL');
    });
    const polls = () => sub.messages.filter((m) => m.topic === 's/g/plc/level').map((m) => Date.parse(m.json.ts as string));
    await sub
      .waitFor(() => polls().length >= 10, 15_000, 'the PLC polled')
      .catch((err: Error) => {
        throw new Error(`${err.message}; the gateway said: ${stderr}`);
      });
    const from = Date.now();

    writeFileSync(join(dir, 'lines', 'lines.yaml'), bigMap(line.port, false));
    const reloading = sub.waitFor(
      (m) => m.topic === 's/g/status' && (m.json.config as { reloading?: boolean } | undefined)?.reloading === true,
      60_000,
      'reloading',
    );
    proc.kill('SIGHUP');
    const started = await reloading;
    const applied = await sub.waitFor(
      (m) => m.topic === 's/g/status' && (m.json.config as { ok?: boolean } | undefined)?.ok === true,
      60_000,
      'the large map applied',
    );
    expect((applied.json.config as { added: string[] }).added).toHaveLength(10);
    await sub.waitFor((m) => m.topic === 's/g/line-0/p5', 15_000, 'data from a device of the new map');

    writeFileSync(join(dir, 'lines', 'lines.yaml'), bigMap(line.port, true));
    proc.kill('SIGHUP');
    const refused = await sub.waitFor(
      (m) => m.topic === 's/g/status' && (m.json.config as { ok?: boolean } | undefined)?.ok === false,
      60_000,
      'the broken map refused',
    );
    expect(JSON.stringify(refused.json.config)).toContain('holdng');
    const until = Date.now() + 2 * INTERVAL;
    await sub.waitFor(() => polls().some((t) => t > until), 10_000, 'polls after the refusal');

    const during = polls().filter((t) => t >= from - INTERVAL);
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    // Events, not a wall-clock bound (a busy machine stretches every gap): the PLC was polled while
    // the large map was being loaded and checked — between the "reloading" and the "applied" status.
    // A loader on the event loop would leave no poll in between.
    const whileLoading = polls().filter((t) => t > started.at && t < applied.at);
    console.log(
      `reload of 30,000 points: ${applied.at - started.at} ms from reloading to applied, ${whileLoading.length} polls of the PLC in between; ${during.length} polls in all, largest gap ${Math.max(...gaps)} ms (interval ${INTERVAL} ms)`,
    );
    // At least one poll, and about one in three of those due while loading (the loop free; a starved
    // CPU delays timers and loading alike).
    expect(whileLoading.length).toBeGreaterThanOrEqual(Math.max(1, Math.floor((applied.at - started.at) / INTERVAL / 3)));
    expect(sub.messages.filter((m) => m.topic === 's/g/status' && m.json.state === 'offline')).toEqual([]);
    expect(exited).toBeUndefined();
    proc.kill('SIGTERM');
    await new Promise<void>((r) => (exited !== undefined ? r() : proc.once('exit', () => r())));
    expect(exited).toBe(0);
  });
});
