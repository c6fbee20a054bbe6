// BACnet MS/TP on virtual RS485 lines (socat pty pairs joined by the bus hub, paced at 38400 baud):
// the gateway's master node and simulated devices pass the token, and a passive monitor checks
// every frame on the wire against Clause 9's rules on who may send when.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MstpDriver } from '../../drivers/bacnet-mstp/driver.js';
import { MstpLink } from '../../drivers/bacnet-mstp/link.js';
import type { MstpConnectionConfig, MstpPointConfig } from '../../drivers/bacnet-mstp/schema.js';
import { startMstpDevice, type MstpDeviceOptions } from '../../simulators/bacnet-mstp/index.js';
import { MstpMonitor } from '../../simulators/bacnet-mstp/monitor.js';
import { startRs485Bus, type Rs485Bus } from '../../simulators/rs485-bus.js';
import type { Reading } from '../../src/core/driver.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';

const USAGE_MS = 100;
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function bus(nodes: number): Promise<{ bus: Rs485Bus; monitor: MstpMonitor }> {
  const b = await startRs485Bus(nodes, { baudRate: 38400 });
  cleanups.push(() => b.stop());
  // Every node, the line hub (the emulated wire itself) and the monitor share this process's event
  // loop on a 2-core machine that runs other test files too: the nodes use the standard's largest
  // Tusage_timeout (100 ms) so a late event loop is not taken for a dead successor, and the monitor
  // allows 30 ms of slack on the times it checks.
  const monitor = new MstpMonitor({ usageTimeoutMs: USAGE_MS, slackMs: 30 });
  b.observe((chunk, _from, at) => monitor.feed(chunk, at));
  cleanups.push(() => {
    if (monitor.violations.length) console.log(`line monitor, frames before each violation:\n${monitor.context.join('\n')}`);
  });
  return { bus: b, monitor };
}

async function device(o: MstpDeviceOptions) {
  const d = await startMstpDevice({ maxMaster: 15, usageTimeoutMs: USAGE_MS, ...o });
  cleanups.push(() => d.stop());
  return d;
}

function connection(port: string, mac: number, extra: Partial<MstpConnectionConfig> = {}): MstpConnectionConfig {
  return {
    port,
    baud_rate: 38400,
    station: 1,
    max_master: 15,
    max_info_frames: 1,
    usage_timeout_ms: USAGE_MS,
    mac,
    timeout_ms: 3000,
    read_multiple: true,
    max_properties_per_request: 16,
    ...extra,
  };
}

const point = (name: string, object: string, property = 'present-value'): MstpPointConfig => ({
  name,
  object,
  property,
  report: 'always',
  deadband: 0,
  priority: 'normal',
  writable: false,
  write_min_interval_ms: 1000,
});

async function gatewayNode(port: string) {
  const link = new MstpLink(connection(port, 0), log);
  const ac = new AbortController();
  await link.open(ac.signal, () => undefined);
  cleanups.push(async () => {
    ac.abort();
    await link.close();
  });
  const driverFor = (c: MstpConnectionConfig, points: MstpPointConfig[]) => {
    const d = new MstpDriver(
      { name: `dev${c.mac}`, driver: 'bacnet_mstp', enabled: true, poll_interval_ms: 1000, link: {} as never, connection: c, points },
      { log, baseDir: '.' },
    );
    const plan = d.plan(points);
    return { driver: d, read: () => d.read(plan, link, ac.signal), probe: () => d.probe(link, ac.signal) };
  };
  return { link, signal: ac.signal, driverFor };
}

const byName = (rs: Reading[]) => Object.fromEntries(rs.map((r) => [r.point, r]));

describe('BACnet MS/TP', () => {
  it('passes the token with a simulated master and reads by ReadProperty and ReadPropertyMultiple, by the rules', async () => {
    const { bus: b, monitor } = await bus(2);
    // The gateway's node first: its data link thread takes a moment to start, and a node that
    // starts on a silent line ~40 ms after another claims the token in the same instant (a
    // start-up collision, which the standard resolves but the monitor would flag).
    const gw = await gatewayNode(b.ports[0]!);
    const sim = await device({ path: b.ports[1]!, mac: 5, deviceInstance: 1005 });
    const points = [
      point('temp', 'analog-input:1'),
      point('flags', 'analog-input:1', 'status-flags'),
      point('name', 'analog-input:1', 'object-name'),
      point('pump', 'binary-input:1'),
      point('mode', 'multi-state-value:1'),
      point('setpoint', 'analog-value:1'),
      point('missing', 'analog-input:99'),
      point('no_such_property', 'binary-output:1', 'units'),
    ];
    // Who-Is learns the device instance; the probe then reads the device object's name.
    const rpm = gw.driverFor(connection(b.ports[0]!, 5), points);
    await rpm.probe();
    expect(sim.served.whoIs).toBe(1);
    const r = byName(await rpm.read());
    expect(sim.served.rpm).toBe(1);
    expect(r.temp).toMatchObject({ quality: 'good' });
    expect(r.temp!.value as number).toBeGreaterThan(18.9);
    expect(r.flags).toMatchObject({ quality: 'good', value: [false, false, false, false] });
    expect(r.name).toMatchObject({ quality: 'good', value: 'SupplyTemp' });
    expect(typeof r.pump!.value).toBe('boolean');
    expect([1, 2, 3]).toContain(r.mode!.value);
    expect(r.setpoint).toMatchObject({ quality: 'good', value: 22.5 });
    expect(r.missing).toMatchObject({ quality: 'bad', value: null, reason: 'bacnet error: object/unknown-object' });
    expect(r.no_such_property).toMatchObject({ quality: 'bad', reason: 'bacnet error: property/unknown-property' });

    const rp = gw.driverFor(connection(b.ports[0]!, 5, { read_multiple: false, device_instance: 1005 }), points.slice(0, 2).concat(points[6]!));
    const one = byName(await rp.read());
    expect(sim.served.rp).toBeGreaterThanOrEqual(3);
    expect(one.temp).toMatchObject({ quality: 'good' });
    expect(one.missing).toMatchObject({ quality: 'bad', reason: 'bacnet error: object/unknown-object' });

    // Both nodes held the token, in turn, and nobody sent out of turn.
    expect((await gw.link.stats())!.counters.tokensReceived).toBeGreaterThan(2);
    expect(sim.node.counters.tokensReceived).toBeGreaterThan(2);
    expect(monitor.violations).toEqual([]);
    expect(monitor.invalid).toBe(0);
  });

  it('three nodes on one line; a node that leaves is dropped from the ring and taken back when it returns', async () => {
    const { bus: b, monitor } = await bus(3);
    const gw = await gatewayNode(b.ports[0]!);
    await device({ path: b.ports[1]!, mac: 5, deviceInstance: 1005 });
    let far = await device({ path: b.ports[2]!, mac: 9, deviceInstance: 1009 });
    const near = gw.driverFor(connection(b.ports[0]!, 5, { device_instance: 1005 }), [point('temp', 'analog-input:1')]);
    const away = gw.driverFor(connection(b.ports[0]!, 9, { device_instance: 1009, timeout_ms: 1500 }), [point('temp', 'analog-input:1')]);
    expect((await near.read())[0]!.quality).toBe('good');
    expect((await away.read())[0]!.quality).toBe('good');
    // The ring is 0 → 5 → 9 → 0: everyone got the token.
    expect(far.node.counters.tokensReceived).toBeGreaterThan(0);

    await far.stop();
    // Nobody answers for MAC 9: its reads fail (a timeout for the pool to count), MAC 5 goes on.
    await expect(away.read()).rejects.toBeInstanceOf(TimeoutError);
    for (let i = 0; i < 3; i++) expect((await near.read())[0]!.quality).toBe('good');
    const passes = monitor.frames.filter((f) => f.type === 0 && f.dest === 9).length;

    far = await startMstpDevice({ path: b.ports[2]!, mac: 9, deviceInstance: 1009, maxMaster: 15, usageTimeoutMs: USAGE_MS });
    cleanups.push(() => far.stop());
    // It answers requests at once (no token needed for that) ...
    expect((await away.read())[0]!.quality).toBe('good');
    // ... and maintenance Poll-For-Master (one address every Npoll = 50 tokens) takes it back into
    // the ring: 5 polls 6, 7, 8, then 9.
    for (let i = 0; i < 200 && far.node.counters.tokensReceived === 0; i++) await near.read();
    expect(far.node.counters.tokensReceived).toBeGreaterThan(0);
    expect(monitor.frames.filter((f) => f.type === 0 && f.dest === 9).length).toBeGreaterThan(passes);
    expect(monitor.violations).toEqual([]);
  }, 60_000);

  it('as the only master with a slave device', async () => {
    const { bus: b, monitor } = await bus(2);
    const gw = await gatewayNode(b.ports[0]!);
    const slave = await device({ path: b.ports[1]!, mac: 130, role: 'slave', deviceInstance: 1130 });
    const d = gw.driverFor(connection(b.ports[0]!, 130, { device_instance: 1130 }), [point('temp', 'analog-input:1'), point('pump', 'binary-input:1')]);
    await d.probe();
    const r = byName(await d.read());
    expect(r.temp!.quality).toBe('good');
    expect((await gw.link.stats())!.soleMaster).toBe(true);
    expect(slave.node.counters.framesSent).toBeGreaterThan(0);
    expect(slave.node.counters.tokensReceived).toBe(0);
    expect(monitor.violations).toEqual([]);
  }, 30_000);

  it('waits out a Reply Postponed and falls back to ReadProperty when ReadPropertyMultiple is refused', async () => {
    const { bus: b, monitor } = await bus(2);
    const gw = await gatewayNode(b.ports[0]!);
    const slow = await device({ path: b.ports[1]!, mac: 5, deviceInstance: 1005, answerDelayMs: 400, noReadMultiple: true });
    // The point is the Reply Postponed path, not a time bound: a long APDU timeout, so that a loaded
    // box (seen: a package install beside the suite) does not fail it.
    const d = gw.driverFor(connection(b.ports[0]!, 5, { device_instance: 1005, timeout_ms: 10_000 }), [
      point('temp', 'analog-input:1'),
      point('sp', 'analog-value:1'),
    ]);
    const r = byName(await d.read());
    expect(r.temp!.quality).toBe('good');
    expect(r.sp).toMatchObject({ quality: 'good', value: 22.5 });
    expect(slow.node.counters.replyPostponedSent).toBeGreaterThanOrEqual(2);
    expect(monitor.frames.some((f) => f.type === 7)).toBe(true);
    expect(monitor.violations).toEqual([]);
  }, 30_000);
  it('an adapter that goes away (the line ends) closes the link with the port in the reason; requests fail fast, not by timeout', async () => {
    const { bus: b } = await bus(2);
    await device({ path: b.ports[1]!, mac: 5, deviceInstance: 1005 });
    const link = new MstpLink(connection(b.ports[0]!, 5), log);
    const ac = new AbortController();
    const lost: string[] = [];
    const gone = new Promise<void>((resolve) => {
      void link.open(ac.signal, (reason) => {
        lost.push(reason);
        resolve();
      });
    });
    cleanups.push(async () => {
      ac.abort();
      await link.close();
    });
    // The ring works, then the pty pair under the gateway's end disappears.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => void link.stats().then((s) => s && s.counters.tokensReceived > 2 && (clearInterval(poll), resolve())), 20);
      cleanups.push(() => clearInterval(poll));
    });
    await b.stop();
    await gone;
    expect(lost[0]).toContain(b.ports[0]!);
    const t0 = performance.now();
    await expect(link.request(5, (id) => Buffer.from([1, 4, 0, 5, id, 12, 12, 0, 0, 0, 1, 25, 85]), 3000, ac.signal)).rejects.toBeInstanceOf(NotConnectedError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
