// The Modbus TCP driver against the simulator with scripted faults.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { modbusTcp } from '../../drivers/modbus/index.js';
import type { ModbusPointConfig, ModbusTcpConnectionConfig } from '../../drivers/modbus/schema.js';
import type { DeviceConfig, Driver } from '../../src/core/driver.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { start, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { pt } from '../fixtures/modbus-point.js';

const log = pino({ level: 'silent' });

function device(port: number, points: ModbusPointConfig[], conn: Partial<ModbusTcpConnectionConfig> = {}): DeviceConfig<ModbusTcpConnectionConfig, ModbusPointConfig> {
  return {
    name: 'dut',
    driver: 'modbus_tcp',
    enabled: true,
    poll_interval_ms: 1000,
    connection: { host: '127.0.0.1', port, unit_id: 1, timeout_ms: 300, max_gap: 16, max_registers_per_read: 125, max_bits_per_read: 2000, ...conn },
    points,
  };
}

let sim: ModbusSimulator | undefined;
let driver: Driver<ModbusPointConfig> | undefined;
afterEach(async () => {
  await driver?.close();
  await sim?.stop();
  sim = driver = undefined;
});

async function setup(points: ModbusPointConfig[], conn: Partial<ModbusTcpConnectionConfig> = {}) {
  sim = await start();
  driver = modbusTcp.create(device(sim.port, points, conn), { log });
  await driver.connect(new AbortController().signal);
  return { sim, driver, plan: driver.plan(points) };
}

describe('modbus_tcp driver', () => {
  it('reads several points with one request when they are close together', async () => {
    const { sim, driver, plan } = await setup([pt('a', 0), pt('b', 5), pt('c', 10)]);
    sim.setWords('holding', 0, [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3]);
    const before = sim.requests;
    const r = await driver.read(plan, new AbortController().signal);
    expect(r.map((x) => x.value)).toEqual([1, 2, 3]);
    expect(sim.requests - before).toBe(1);
  });

  it('makes points bad with the exception code and name, and keeps the link', async () => {
    const { sim, driver, plan } = await setup([pt('a', 0)]);
    sim.script({ kind: 'exception', code: 6 });
    const r = await driver.read(plan, new AbortController().signal);
    expect(r[0]).toMatchObject({ quality: 'bad', value: null, reason: 'modbus exception 6 (Server Device Busy)' });
    sim.clear();
    expect((await driver.read(plan, new AbortController().signal))[0]!.quality).toBe('good');
  });

  it('splits a merged read refused with exception 2 so the good points stay good', async () => {
    const { sim, driver, plan } = await setup([pt('good1', 0), pt('hole', 3), pt('good2', 6)]);
    sim.setWords('holding', 0, [11, 0, 0, 0, 0, 0, 22]);
    sim.script({ kind: 'exception', code: 2, from: 3, to: 3 });
    const r = await driver.read(plan, new AbortController().signal);
    expect(r.map((x) => [x.point, x.quality, x.value])).toEqual([
      ['good1', 'good', 11],
      ['hole', 'bad', null],
      ['good2', 'good', 22],
    ]);
  });

  it('throws TimeoutError when the device goes silent', async () => {
    const { sim, driver, plan } = await setup([pt('a', 0)]);
    sim.script({ kind: 'silent' });
    await expect(driver.read(plan, new AbortController().signal)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('throws NotConnectedError at once when the device drops the connection', async () => {
    const { sim, driver, plan } = await setup([pt('a', 0)]);
    sim.script({ kind: 'delay', ms: 250 });
    const pending = driver.read(plan, new AbortController().signal);
    setImmediate(() => sim.dropConnections());
    await expect(pending).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('fails to connect with NotConnectedError when nothing listens, and never retries by itself', async () => {
    const s = await start();
    const port = s.port;
    await s.stop();
    driver = modbusTcp.create(device(port, [pt('a', 0)]), { log });
    await expect(driver.connect(new AbortController().signal)).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('answers only its unit id', async () => {
    sim = await start({ units: [9] });
    driver = modbusTcp.create(device(sim.port, [pt('a', 0)], { unit_id: 9 }), { log });
    await driver.connect(new AbortController().signal);
    const r = await driver.read(driver.plan([pt('a', 0)]), new AbortController().signal);
    expect(r[0]!.quality).toBe('good');
  });

  it('close() is idempotent and safe before connect', async () => {
    driver = modbusTcp.create(device(1, [pt('a', 0)]), { log });
    await driver.close();
    await driver.close();
  });
});
