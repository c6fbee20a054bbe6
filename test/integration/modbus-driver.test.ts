// The Modbus TCP driver against the simulator with scripted faults.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { modbusTcp } from '../../drivers/modbus/index.js';
import type { ModbusPointConfig, ModbusTcpConnectionConfig } from '../../drivers/modbus/schema.js';
import type { DeviceConfig } from '../../src/core/driver.js';
import type { ModbusLink } from '../../drivers/modbus/link.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { start, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { pt } from '../fixtures/modbus-point.js';

const log = pino({ level: 'silent' });

function device(
  port: number,
  points: ModbusPointConfig[],
  conn: Partial<ModbusTcpConnectionConfig> = {},
): DeviceConfig<ModbusTcpConnectionConfig, ModbusPointConfig> {
  return {
    name: 'dut',
    driver: 'modbus_tcp',
    enabled: true,
    poll_interval_ms: 1000,
    link: { probe_interval_ms: 1000, failures_before_down: 2, backoff_min_ms: 100, backoff_max_ms: 1000 },
    connection: {
      host: '127.0.0.1',
      port,
      keepalive_s: 10,
      bit_write: 'refuse',
      unit_id: 1,
      timeout_ms: 300,
      max_gap: 16,
      max_registers_per_read: 125,
      max_bits_per_read: 2000,
      probe: { area: 'holding', address: 0 },
      ...conn,
    },
    points,
  };
}

const signal = new AbortController().signal;
let sim: ModbusSimulator | undefined;
let link: ModbusLink | undefined;
afterEach(async () => {
  await link?.close();
  await sim?.stop();
  sim = link = undefined;
});

async function setup(points: ModbusPointConfig[], conn: Partial<ModbusTcpConnectionConfig> = {}, simOpts: Parameters<typeof start>[0] = {}) {
  sim = await start(simOpts);
  const dev = device(sim.port, points, conn);
  link = modbusTcp.createLink(dev, { log, baseDir: '.' });
  const lost: string[] = [];
  await link.open(signal, (r) => lost.push(r));
  const driver = modbusTcp.create(dev, { log, baseDir: '.' });
  return { sim, link, driver, plan: driver.plan(points), lost };
}

describe('modbus_tcp driver on a link', () => {
  it('reads several points with one request when they are close together', async () => {
    const { sim, link, driver, plan } = await setup([pt('a', 0), pt('b', 5), pt('c', 10)]);
    sim.setWords('holding', 0, [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3]);
    const before = sim.requests;
    const r = await driver.read(plan, link, signal);
    expect(r.map((x) => x.value)).toEqual([1, 2, 3]);
    expect(sim.requests - before).toBe(1);
  });

  it('makes points bad with the exception code and name, and keeps the link', async () => {
    const { sim, link, driver, plan } = await setup([pt('a', 0)]);
    sim.script({ kind: 'exception', code: 6 });
    const r = await driver.read(plan, link, signal);
    expect(r[0]).toMatchObject({ quality: 'bad', value: null, reason: 'modbus exception 6 (Server Device Busy)' });
    sim.clear();
    expect((await driver.read(plan, link, signal))[0]!.quality).toBe('good');
  });

  it('splits a merged read refused with exception 2 so the good points stay good', async () => {
    const { sim, link, driver, plan } = await setup([pt('good1', 0), pt('hole', 3), pt('good2', 6)]);
    sim.setWords('holding', 0, [11, 0, 0, 0, 0, 0, 22]);
    sim.script({ kind: 'exception', code: 2, from: 3, to: 3 });
    const r = await driver.read(plan, link, signal);
    expect(r.map((x) => [x.point, x.quality, x.value])).toEqual([
      ['good1', 'good', 11],
      ['hole', 'bad', null],
      ['good2', 'good', 22],
    ]);
  });

  it('throws TimeoutError when the device goes silent', async () => {
    const { sim, link, driver, plan } = await setup([pt('a', 0)]);
    sim.script({ kind: 'silent' });
    await expect(driver.read(plan, link, signal)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('throws NotConnectedError at once and reports the link lost when the device drops the connection', async () => {
    const { sim, link, driver, plan, lost } = await setup([pt('a', 0)]);
    sim.script({ kind: 'delay', ms: 250 });
    const pending = driver.read(plan, link, signal);
    setImmediate(() => sim.dropConnections());
    await expect(pending).rejects.toBeInstanceOf(NotConnectedError);
    expect(lost).toEqual(['connection closed']);
  });

  it('fails to open with NotConnectedError when nothing listens', async () => {
    const s = await start();
    const port = s.port;
    await s.stop();
    link = modbusTcp.createLink(device(port, [pt('a', 0)]), { log, baseDir: '.' });
    await expect(link.open(signal, () => undefined)).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('answers only its unit id; a probe counts any answer, an exception included', async () => {
    const { sim, link, driver, plan } = await setup([pt('a', 0)], { unit_id: 9 }, { units: [9] });
    expect((await driver.read(plan, link, signal))[0]!.quality).toBe('good');
    sim.script({ kind: 'exception', code: 2 });
    await expect(driver.probe(link, signal)).resolves.toBeUndefined();
  });

  it('close() is idempotent and safe before open', async () => {
    link = modbusTcp.createLink(device(1, [pt('a', 0)]), { log, baseDir: '.' });
    await link.close();
    await link.close();
  });
});
