// Writes through command topics, end to end: a plant system publishes to a point's command topic
// on a real mosquitto (mutual TLS), the gateway checks the command against the device map, writes
// through the device's link runner to the Modbus simulator, reads the point back, answers on the
// result topic, and the next sample shows the value. Every refusal is answered and never sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRegisters } from '../../drivers/modbus/codec.js';
import { start as startModbus, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { Commander } from '../helpers/commander.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';

let broker: Mosquitto;
let sim: ModbusSimulator;
let tg: TestGateway;
let scada: Commander;

const devices = (port: number) => `version: 1
devices:
  - name: plc
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${port}, timeout_ms: 300 }
    link: { probe_interval_ms: 300, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 300 }
    points:
      - { name: setpoint, address: 10, type: float32, writable: true, min: 0, max: 100, write_min_interval_ms: 0, unit: degC }
      - { name: speed, address: 20, type: int16, scale: 0.1, writable: true, write_min_interval_ms: 0 }
      - { name: start, area: coil, address: 3, type: bool, writable: true, allowed: [true], write_min_interval_ms: 0 }
      - { name: recipe, address: 30, type: string, count: 4, writable: true, write_min_interval_ms: 0 }
      - { name: readonly, address: 40, type: uint16 }
      - { name: limited, address: 50, type: uint16, writable: true, write_min_interval_ms: 60000 }
      - { name: guarded, address: 60, type: uint16, writable: true, write_min_interval_ms: 0 }
      - { name: counter64, address: 70, type: uint64, writable: true, write_min_interval_ms: 0 }
  - name: plc2
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${port}, unit_id: 2, timeout_ms: 300, bit_write: read_modify_write }
    link: { probe_interval_ms: 300, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 300 }
    points:
      - { name: flag, address: 80, type: bool, bit: 2, writable: true, write_min_interval_ms: 0 }
`;

beforeAll(async () => {
  broker = await startMosquitto();
  sim = await startModbus({ registers: [{ area: 'holding', address: 80, value: 0b1000_0001 }] });
  tg = makeGateway(gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }), devices(sim.port));
  await tg.gw.start();
  await tg.gw.commandsReady();
  scada = await Commander.connect(broker);
  // The device is polled (and so up) before any command goes out.
  await scada.seen.waitFor((m) => m.topic === 's/g/plc/setpoint', 15_000, 'a first sample');
}, 60_000);

afterAll(async () => {
  await scada?.close();
  await tg?.cleanup();
  await sim?.stop();
  await broker?.stop();
});

describe('writes to Modbus TCP through command topics', () => {
  it('writes a float32 setpoint: the result is ok with the value read back, the device holds it, the next sample shows it', async () => {
    const r = await scada.write('plc', 'setpoint', { value: 42.5 });
    expect(r).toMatchObject({ device: 'plc', point: 'setpoint', value: 42.5, outcome: 'ok', read_back: 42.5, read_back_quality: 'good' });
    expect(sim.getWords('holding', 10, 2)).toEqual(encodeRegisters(42.5, 'float32', 'ABCD'));
    const sample = await scada.seen.next((m) => m.topic === 's/g/plc/setpoint', 5000, 'the next setpoint sample');
    expect(sample.json.value).toBe(42.5);
  });

  it('applies scale in reverse (12.3 with scale 0.1 is 123 in the register), coils, strings and 64-bit integers beyond 2^53', async () => {
    expect(await scada.write('plc', 'speed', { value: 12.3 })).toMatchObject({ outcome: 'ok', read_back: 12.3 });
    expect(sim.getWords('holding', 20, 1)).toEqual([123]);
    expect(await scada.write('plc', 'start', { value: true })).toMatchObject({ outcome: 'ok', read_back: true });
    expect(sim.getBit('coil', 3)).toBe(true);
    expect(await scada.write('plc', 'recipe', { value: 'AB-7' })).toMatchObject({ outcome: 'ok', read_back: 'AB-7' });
    const big = '18446744073709551557'; // 2^64 - 59
    const r = await scada.write('plc', 'counter64', { value: big });
    expect(r.outcome, String(r.reason)).toBe('ok');
    expect(sim.getWords('holding', 70, 4)).toEqual(encodeRegisters(BigInt(big), 'uint64', 'ABCD'));
  });

  it('writes a bit of a holding register by read-modify-write where the device map allows it, leaving the other bits', async () => {
    expect(await scada.write('plc2', 'flag', { value: true })).toMatchObject({ outcome: 'ok', read_back: true });
    expect(sim.getWords('holding', 80, 1)).toEqual([0b1000_0101]);
  });

  it('refuses, with a reason, what the device map does not allow — and sends nothing', async () => {
    const before = sim.requests;
    const cases: [string, unknown, RegExp][] = [
      ['readonly', 1, /not writable/],
      ['setpoint', 150, /at most 100 \(max\)/],
      ['setpoint', 'hot', /expected a number/],
      ['speed', 12.34, /not a whole number/],
      ['speed', 4000, /-3276\.8\.\.3276\.7/],
      ['start', false, /expected one of \[true\]/],
      ['recipe', 'TOO-LONG-1', /at most 8 characters/],
      ['nosuch', 1, /has no point "nosuch"/],
    ];
    for (const [point, value, why] of cases) {
      const r = await scada.write('plc', point, { value });
      expect(r.outcome, `${point} = ${JSON.stringify(value)}`).toBe('refused');
      expect(r.reason, `${point} = ${JSON.stringify(value)}`).toMatch(why);
    }
    expect(await scada.write('ghost', 'x', { value: 1 })).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/no running device "ghost"/) });
    expect(await scada.write('plc', 'setpoint', { val: 1 })).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/"value"/) });
    // Polls went on meanwhile; no write request reached the device: nothing at the refused addresses changed.
    expect(sim.requests).toBeGreaterThanOrEqual(before);
    expect(sim.getWords('holding', 40, 1)).toEqual([0]);
    expect(sim.getWords('holding', 10, 2)).toEqual(encodeRegisters(42.5, 'float32', 'ABCD'));
  });

  it('rate limits writes per point (write_min_interval_ms)', async () => {
    expect(await scada.write('plc', 'limited', { value: 1 })).toMatchObject({ outcome: 'ok' });
    expect(await scada.write('plc', 'limited', { value: 2 })).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/rate limited/) });
    expect(sim.getWords('holding', 50, 1)).toEqual([1]);
  });

  it("passes the device's exception on: failed, with the exception code", async () => {
    sim.script({ kind: 'exception', code: 4, area: 'holding', from: 60, to: 60 });
    try {
      const r = await scada.write('plc', 'guarded', { value: 7 });
      expect(r).toMatchObject({ outcome: 'failed', code: 4, reason: 'modbus exception 4 (Server Device Failure)' });
    } finally {
      sim.clear();
    }
  });

  it('answers on the MQTT 5 Response Topic with the Correlation Data of the request', async () => {
    const got = new Promise<{ body: Record<string, unknown>; correlation?: string }>(
      (resolve) =>
        void scada.listen('scada/replies/1', (payload, correlation) =>
          resolve({ body: JSON.parse(payload.toString()) as Record<string, unknown>, correlation: correlation?.toString() }),
        ),
    );
    await new Promise((r) => setTimeout(r, 0));
    await scada.send('plc', 'setpoint', { value: 21 }, { properties: { responseTopic: 'scada/replies/1', correlationData: Buffer.from('corr-77') } });
    const reply = await got;
    expect(reply.correlation).toBe('corr-77');
    expect(reply.body).toMatchObject({ outcome: 'ok', read_back: 21 });
  });

  it('never applies a command late: one waiting for a down device past its expiry is answered expired and never sent', async () => {
    const downNow = scada.seen.next((m) => m.topic === 's/g/status/plc' && m.json.state === 'down', 10_000, 'plc down');
    sim.script({ kind: 'silent' });
    await downNow;
    const before = sim.getWords('holding', 10, 2);
    const id = await scada.send('plc', 'setpoint', { value: 99 }, { properties: { messageExpiryInterval: 1 } });
    const r = (await scada.result(id)).json;
    expect(r).toMatchObject({ outcome: 'expired', reason: expect.stringMatching(/expired while waiting for the device/) });
    // An expired body deadline is refused on arrival as well.
    expect(await scada.write('plc', 'setpoint', { value: 98, deadline: new Date(Date.now() - 1000).toISOString() })).toMatchObject({ outcome: 'expired' });
    const upAgain = scada.seen.next((m) => m.topic === 's/g/status/plc' && m.json.state === 'up', 10_000, 'plc up again');
    sim.clear();
    await upAgain;
    await scada.seen.next((m) => m.topic === 's/g/plc/setpoint' && m.json.quality === 'good', 5000, 'a sample after the return');
    expect(sim.getWords('holding', 10, 2)).toEqual(before);
  });

  it('sends a write queued while the device was down once it is back, if that is before the deadline', async () => {
    const downNow = scada.seen.next((m) => m.topic === 's/g/status/plc' && m.json.state === 'down', 10_000, 'plc down');
    sim.script({ kind: 'silent' });
    await downNow;
    const id = await scada.send('plc', 'setpoint', { value: 33, deadline: Date.now() + 20_000 });
    sim.clear();
    expect((await scada.result(id)).json).toMatchObject({ outcome: 'ok', read_back: 33 });
  });

  it('counts every attempt by outcome in edgeferry_writes_total', async () => {
    const text = await tg.gw.metrics.registry.metrics();
    expect(text).toMatch(/edgeferry_writes_total\{device="plc",outcome="ok"\} \d+/);
    expect(text).toMatch(/edgeferry_writes_total\{device="plc",outcome="refused"\} \d+/);
    expect(text).toMatch(/edgeferry_writes_total\{device="plc",outcome="expired"\} 2/);
    expect(text).toMatch(/edgeferry_writes_total\{device="plc",outcome="failed"\} 1/);
  });
});
