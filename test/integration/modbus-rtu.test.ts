// Modbus RTU over a virtual serial line (socat pty pair): several slaves on one port, every data
// type, a silent slave, CRC errors, and the port vanishing and coming back.
import Database from '../../src/buffer/sqlite.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { modbusRtu } from '../../drivers/modbus/index.js';
import type { ModbusPointConfig, ModbusRtuConnectionConfig } from '../../drivers/modbus/schema.js';
import type { DeviceConfig } from '../../src/core/driver.js';
import { BadFrameError, TimeoutError } from '../../src/errors.js';
import { startRtu, type RtuSimulator } from '../../simulators/modbus/rtu.js';
import { VECTORS, wordsOf } from '../fixtures/modbus-vectors.js';
import { pt } from '../fixtures/modbus-point.js';
import { capturedGateway } from '../helpers/captured-gateway.js';
import { ptyPair, type PtyPair } from '../../simulators/serial-line.js';

const log = pino({ level: 'silent' });
const signal = new AbortController().signal;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function line(): Promise<{ pty: PtyPair; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-rtu-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await ptyPair(dir);
  cleanups.push(() => pty.stop());
  return { pty, dir };
}

async function slaves(path: string, ids: number[]): Promise<RtuSimulator> {
  const sim = await startRtu({ path, units: Object.fromEntries(ids.map((id) => [id, [{ area: 'holding' as const, address: 0, value: id * 100 }]])) });
  cleanups.push(() => sim.stop());
  return sim;
}

const vectorPoints = VECTORS.map((v, i) => ({ ...v, point: pt(`${v.type}_${v.order}`, 10 + i * 4, { type: v.type, byte_order: v.order }) }));

function rtuDevice(path: string, unit: number, points: ModbusPointConfig[]): DeviceConfig<ModbusRtuConnectionConfig, ModbusPointConfig> {
  return {
    name: `slave-${unit}`,
    driver: 'modbus_rtu',
    enabled: true,
    poll_interval_ms: 200,
    link: { probe_interval_ms: 500, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 400 },
    connection: {
      port: path,
      baud_rate: 19200,
      parity: 'even',
      bit_write: 'refuse',
      data_bits: 8,
      stop_bits: 1,
      unit_id: unit,
      timeout_ms: 200,
      max_gap: 16,
      max_registers_per_read: 125,
      max_bits_per_read: 2000,
      probe: { area: 'holding', address: 0 },
    },
    points,
  };
}

describe('modbus_rtu', () => {
  it('reads every data type and byte order from several slaves on one line, CRC checked', async () => {
    const { pty } = await line();
    const sim = await slaves(pty.b, [1, 2, 3]);
    for (const id of [1, 2]) for (const v of vectorPoints) wordsOf(v.words).forEach((w, k) => (sim.unit(id).words.holding[v.point.address + k] = w));
    const link = modbusRtu.createLink(rtuDevice(pty.a, 1, []), { log, baseDir: '.' });
    cleanups.push(() => link.close());
    await link.open(signal, () => undefined);
    const points = vectorPoints.map((v) => v.point);
    for (const id of [1, 2]) {
      const driver = modbusRtu.create(rtuDevice(pty.a, id, points), { log, baseDir: '.' });
      const readings = await driver.read(driver.plan(points), link, signal);
      expect(readings.map((r) => (typeof r.value === 'bigint' ? r.value.toString() : JSON.stringify(r.value)))).toEqual(vectorPoints.map((v) => v.json));
    }
    // A garbled answer is a typed error, and the line keeps working for the others.
    sim.script(3, { kind: 'bad_crc' });
    const bad = modbusRtu.create(rtuDevice(pty.a, 3, [pt('x', 0)]), { log, baseDir: '.' });
    await expect(bad.read(bad.plan([pt('x', 0)]), link, signal)).rejects.toBeInstanceOf(BadFrameError);
    const good = modbusRtu.create(rtuDevice(pty.a, 1, [pt('x', 0)]), { log, baseDir: '.' });
    expect((await good.read(good.plan([pt('x', 0)]), link, signal))[0]).toMatchObject({ value: 100, quality: 'good' });
    // A slave that is not there times out.
    const ghost = modbusRtu.create(rtuDevice(pty.a, 9, [pt('x', 0)]), { log, baseDir: '.' });
    await expect(ghost.read(ghost.plan([pt('x', 0)]), link, signal)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('keeps the other slaves polling when one stops answering or garbles, and counts it', async () => {
    const { pty } = await line();
    const sim = await slaves(pty.b, [1, 2, 3]);
    const dev = (id: number) => `  - name: slave-${id}
    driver: modbus_rtu
    poll_interval_ms: 200
    connection: { port: ${pty.a}, unit_id: ${id}, timeout_ms: 150 }
    link: { probe_interval_ms: 400, failures_before_down: 2, backoff_min_ms: 100, backoff_max_ms: 400 }
    points:
      - { name: v, address: 0 }
`;
    const { gw, polls, statuses, until } = await capturedGateway(cleanups, `version: 1\ndevices:\n${dev(1)}${dev(2)}${dev(3)}`);
    await until(() => [1, 2, 3].every((id) => polls.some((p) => p.device === `slave-${id}`)), 10_000, 'all three polled');
    sim.script(2, { kind: 'silent' });
    sim.script(3, { kind: 'bad_crc' });
    const mark = Date.now();
    await until(() => statuses.some((s) => s.device === 'slave-2' && s.h.state === 'down' && s.at > mark), 10_000, 'slave-2 down');
    await until(() => polls.filter((p) => p.device === 'slave-1' && p.ts > mark).length >= 10, 10_000, 'slave-1 keeps polling');
    const s1 = polls.filter((p) => p.device === 'slave-1' && p.ts > mark).map((p) => p.ts);
    // A silent slave costs the line at most its timeout per turn: slave-1 never waits much longer.
    expect(Math.max(...s1.slice(1).map((t, i) => t - s1[i]!))).toBeLessThan(200 + 2 * 150 + 400);
    expect(gw.deviceStatus('slave-3')!.errors).toBeGreaterThanOrEqual(1);
    expect(gw.deviceStatus('slave-3')!.state).not.toBe('up');
    expect(gw.deviceStatus('slave-1')).toMatchObject({ state: 'up', errors: 0, timeouts: 0 });
    sim.clear(2);
    sim.clear(3);
    const healed = Date.now();
    await until(() => ['slave-2', 'slave-3'].every((d) => statuses.some((s) => s.device === d && s.h.state === 'up' && s.at > healed)), 10_000, 'both back');
  });

  it('reopens the port when it vanishes and comes back (USB adapter re-plugged)', async () => {
    const { pty } = await line();
    let sim = await slaves(pty.b, [1]);
    const { gw, polls, statuses, until, dir } = await capturedGateway(
      cleanups,
      `version: 1\ndevices:\n  - name: meter\n    driver: modbus_rtu\n    poll_interval_ms: 200\n    connection: { port: ${pty.a}, unit_id: 1, timeout_ms: 150 }\n    link: { probe_interval_ms: 400, backoff_min_ms: 100, backoff_max_ms: 400 }\n    points:\n      - { name: v, address: 0 }\n`,
    );
    await until(() => polls.length >= 2, 10_000, 'polling');
    const unplug = Date.now();
    await sim.stop();
    await pty.stop();
    await until(() => statuses.some((s) => s.h.state === 'down' && s.at >= unplug), 10_000, 'down after unplug');
    await pty.restart();
    sim = await slaves(pty.b, [1]);
    const back = Date.now();
    await until(() => polls.some((p) => p.ts > back), 15_000, 'data after re-plug');
    expect(gw.deviceStatus('meter')).toMatchObject({ state: 'up' });
    expect(gw.deviceStatus('meter')!.reconnects).toBeGreaterThanOrEqual(1);
    // The samples are in the buffer with the serial channel.
    const db = new Database(join(dir, 'buffer.db'), { readonly: true });
    // The newest good one: polling goes on meanwhile, and a poll that fails after it (seen once in
    // CI on a loaded machine, just after the re-plug) adds its gap marker behind it.
    const rows = (db.prepare('SELECT body FROM samples ORDER BY seq DESC LIMIT 20').pluck().all() as string[]).map(
      (r) => JSON.parse(r) as Record<string, unknown>,
    );
    db.close();
    expect(
      rows.find((r) => r.quality === 'good'),
      JSON.stringify(rows.slice(0, 5)),
    ).toMatchObject({ value: 100, quality: 'good', channel: `serial:${pty.a}@19200` });
  });
});
