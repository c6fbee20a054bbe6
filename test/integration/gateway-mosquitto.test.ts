// The whole gateway against Modbus simulators and a real mosquitto over mutual TLS.
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_STATUS_EXPIRY_S } from '../../src/publish/mqtt-publisher.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { VECTORS, wordsOf } from '../fixtures/modbus-vectors.js';
import { makeGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

const ROOT = 'plant-t/gw-t';

let broker: Mosquitto;
let typesSim: ModbusSimulator;
let simA: ModbusSimulator;
let simB: ModbusSimulator;
let tg: TestGateway;
let sub: Subscriber;

const vectorPoints = VECTORS.map((v, i) => ({ name: `${v.type}_${v.order}`, address: i * 4, ...v }));

function devicesYaml(): string {
  const pts = vectorPoints.map((p) => `      - { name: ${p.name}, address: ${p.address}, type: ${p.type}, byte_order: ${p.order} }`);
  return `version: 1
devices:
  - name: types
    driver: modbus_tcp
    poll_interval_ms: 500
    connection: { host: 127.0.0.1, port: ${typesSim.port}, unit_id: 7, timeout_ms: 1000 }
    points:
${pts.join('\n')}
      - { name: string_ABCD, address: 200, type: string, count: 3 }
      - { name: string_BADC, address: 203, type: string, count: 3, byte_order: BADC }
      - { name: bit_3, address: 210, type: bool, bit: 3 }
      - { name: bit_4, address: 210, type: bool, bit: 4 }
      - { name: status_word, address: 210, type: uint16 }
      - { name: scaled, address: 211, type: int16, scale: 0.1, offset: -40, unit: degC }
      - { name: input_u16, area: input, address: 5, type: uint16 }
      - { name: coil_7, area: coil, address: 7, type: bool }
      - { name: discrete_2, area: discrete, address: 2, type: bool }
      - { name: missing, address: 60000, type: uint16 }
  - name: plc-a
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${simA.port}, timeout_ms: 300 }
    link: { probe_interval_ms: 500, backoff_min_ms: 100, backoff_max_ms: 500 }
    points:
      - { name: counter, address: 0, type: uint32 }
  - name: plc-b
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${simB.port}, timeout_ms: 300 }
    link: { probe_interval_ms: 500, backoff_min_ms: 100, backoff_max_ms: 500 }
    points:
      - { name: counter, address: 0, type: uint32 }
`;
}

function gatewayYaml(): string {
  return `version: 1
site: plant-t
gateway_id: gw-t
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  protocol_version: 5
  reconnect_ms: 200
  tls:
    ca: ${broker.files.ca}
    cert: ${broker.files.clientCert}
    key: ${broker.files.clientKey}
buffer:
  path: buffer.db
logging:
  level: warn
health:
  port: 0
`;
}

beforeAll(async () => {
  broker = await startMosquitto();
  typesSim = await startSim({ units: [7], registers: [] });
  for (const p of vectorPoints) typesSim.setWords('holding', p.address, wordsOf(p.words));
  typesSim.setWords('holding', 200, wordsOf('4F4B 2D31 0000')); // "OK-1"
  typesSim.setWords('holding', 203, wordsOf('4B4F 312D 2020')); // "OK-1", bytes swapped, space padded
  typesSim.setWords('holding', 210, [0b01000]); // bit 3 set, bit 4 clear
  typesSim.setWords('holding', 211, [0xfe0c]); // -500 → -50.0 × … = -500 × 0.1 − 40 = −90
  typesSim.setWords('input', 5, [4242]);
  typesSim.setBits('coil', 7, [true]);
  typesSim.setBits('discrete', 2, [true]);
  typesSim.script({ kind: 'exception', code: 2, area: 'holding', from: 60000, to: 60000 });
  simA = await startSim({ registers: [{ area: 'holding', address: 0, type: 'uint32', generator: { kind: 'counter', step: 1, every_ms: 100 } }] });
  simB = await startSim({ registers: [{ area: 'holding', address: 0, type: 'uint32', generator: { kind: 'counter', step: 1, every_ms: 100 } }] });
  sub = await Subscriber.connect(broker, `${ROOT}/#`);
  tg = makeGateway(gatewayYaml(), devicesYaml());
  await tg.gw.start();
}, 60_000);

afterAll(async () => {
  await tg?.cleanup();
  await sub?.close();
  await Promise.all([typesSim?.stop(), simA?.stop(), simB?.stop()]);
  await broker?.stop();
});

const resumedReconnects = (m: { json: Record<string, unknown> }) => m.json.reconnects as number;
const onTopic = (topic: string) => (m: { topic: string }) => m.topic === topic;

describe('gateway → mosquitto (mutual TLS)', () => {
  it.each(vectorPoints)('publishes $type in byte order $order decoded exactly', async (p) => {
    const m = await sub.waitFor(onTopic(`${ROOT}/types/${p.name}`), 15_000, p.name);
    expect(m.text).toContain(`"value":${p.json},`);
    expect(m.json).toMatchObject({ quality: 'good' });
    expect(typeof m.json.seq).toBe('number');
    expect(new Date(m.json.ts as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('publishes strings, register bits and their status word, scaled values, input registers, coils and discrete inputs', async () => {
    const value = async (point: string) => (await sub.waitFor(onTopic(`${ROOT}/types/${point}`), 15_000, point)).json;
    expect(await value('string_ABCD')).toMatchObject({ value: 'OK-1' });
    expect(await value('string_BADC')).toMatchObject({ value: 'OK-1' });
    expect(await value('bit_3')).toMatchObject({ value: true });
    expect(await value('bit_4')).toMatchObject({ value: false });
    // The same register as a status word, beside its bits.
    expect(await value('status_word')).toMatchObject({ value: 0b01000, quality: 'good' });
    expect(await value('scaled')).toMatchObject({ value: -90, unit: 'degC' });
    expect(await value('input_u16')).toMatchObject({ value: 4242 });
    expect(await value('coil_7')).toMatchObject({ value: true });
    expect(await value('discrete_2')).toMatchObject({ value: true });
  });

  it('turns a Modbus exception into quality bad with the code and its name, without hurting neighbours', async () => {
    const m = await sub.waitFor(onTopic(`${ROOT}/types/missing`), 15_000, 'missing');
    expect(m.json).toMatchObject({ value: null, quality: 'bad', reason: 'modbus exception 2 (Illegal Data Address)' });
  });

  it('keeps gateway and device status on retained topics', async () => {
    const late = await Subscriber.connect(broker, `${ROOT}/status/#`);
    try {
      const gwStatus = await late.waitFor(onTopic(`${ROOT}/status`), 10_000, 'gateway status');
      expect(gwStatus).toMatchObject({ retain: true, json: { state: 'online' } });
      const dev = await late.waitFor(onTopic(`${ROOT}/status/types`), 10_000, 'device status');
      expect(dev).toMatchObject({ retain: true, json: { state: 'up', endpoint: `tcp://127.0.0.1:${typesSim.port}`, errors: 0, timeouts: 0 } });
      expect((dev.json.rtt_ms as { p50: number }).p50).toBeGreaterThan(0);
    } finally {
      await late.close();
    }
    // With MQTT 5 a retained device status expires unless refreshed (every 60 s): a gateway that
    // went away does not leave its devices "up" for good. The gateway status never expires.
    const v5 = mqtt.connect(broker.url, { ca: broker.caPem, cert: broker.client.cert, key: broker.client.key, protocolVersion: 5, reconnectPeriod: 0 });
    try {
      await new Promise<void>((resolve, reject) => (v5.once('connect', () => resolve()), v5.once('error', reject)));
      const seen = new Map<string, number | undefined>();
      const both = new Promise<void>((resolve) =>
        v5.on('message', (topic, _payload, packet) => {
          seen.set(topic, packet.properties?.messageExpiryInterval);
          if (seen.has(`${ROOT}/status`) && seen.has(`${ROOT}/status/types`)) resolve();
        }),
      );
      await v5.subscribeAsync([`${ROOT}/status`, `${ROOT}/status/types`], { qos: 1 });
      await both;
      expect(seen.get(`${ROOT}/status`)).toBeUndefined();
      expect(seen.get(`${ROOT}/status/types`)).toBeGreaterThan(DEVICE_STATUS_EXPIRY_S - 70);
      expect(seen.get(`${ROOT}/status/types`)).toBeLessThanOrEqual(DEVICE_STATUS_EXPIRY_S);
    } finally {
      await v5.endAsync();
    }
  });

  it('reports a stopped PLC offline, keeps the others in rhythm, and resumes when it returns', async () => {
    const aTopic = `${ROOT}/plc-a/counter`;
    const bTopic = `${ROOT}/plc-b/counter`;
    await sub.waitFor(onTopic(aTopic), 10_000, 'plc-a data');
    const port = simA.port;

    const offline = sub.next((m) => m.topic === `${ROOT}/status/plc-a` && m.json.state === 'down', 10_000, 'plc-a down');
    const outageStart = Date.now();
    await simA.stop();
    const off = await offline;
    // A consumer that connects now learns the state from the retained message.
    const late = await Subscriber.connect(broker, `${ROOT}/status/plc-a`);
    const retained = await late.waitFor(() => true, 5000, 'retained plc-a status').finally(() => late.close());
    expect(retained).toMatchObject({ retain: true, json: { state: 'down' } });
    expect(String(off.json.reason)).toMatch(/closed|no answer|ECONNREFUSED/);
    expect(resumedReconnects(off)).toBe(0);

    // Stay down for a while: plc-b must keep publishing every poll meanwhile.
    const bDuring = sub.next((m) => m.topic === bTopic && new Date(m.json.ts as string).getTime() > outageStart + 2000, 10_000, 'plc-b during outage');
    await bDuring;
    const outageEnd = Date.now();

    const online = sub.next((m) => m.topic === `${ROOT}/status/plc-a` && m.json.state === 'up', 15_000, 'plc-a up again');
    simA = await startSim({ port, registers: [{ area: 'holding', address: 0, type: 'uint32', value: 777 }] });
    await online;
    const resumed = await sub.next((m) => m.topic === aTopic, 10_000, 'plc-a data after return');
    const upAgain = sub.messages.filter((m) => m.topic === `${ROOT}/status/plc-a` && m.json.state === 'up').pop()!;
    expect(resumedReconnects(upAgain)).toBeGreaterThanOrEqual(1);
    expect(resumed.json).toMatchObject({ value: 777, quality: 'good' });

    const bTimes = sub.messages
      .filter((m) => m.topic === bTopic)
      .map((m) => new Date(m.json.ts as string).getTime())
      .filter((t) => t >= outageStart && t <= outageEnd);
    // 200 ms polls over at least 2 s: about 10 samples; a stalled plc-b would show a gap.
    expect(bTimes.length).toBeGreaterThanOrEqual(8);
    const gaps = bTimes.slice(1).map((t, i) => t - bTimes[i]!);
    expect(Math.max(...gaps)).toBeLessThan(1000);
    // The gap is marked once: one bad sample with the reason (with or just before the down
    // status), and nothing else of plc-a while it was down.
    const marks = sub.messages.filter((m) => m.topic === aTopic && m.json.quality === 'bad');
    expect(marks).toHaveLength(1);
    expect(marks[0]!.json).toMatchObject({ value: null, reason: expect.any(String) });
    // By when each sample was taken (its ts), not when it arrived: a sample polled just before the
    // stop may reach the broker after the down status, which travels apart from the data (CI saw it).
    const downSince = new Date(off.json.since as string).getTime();
    expect(Number.isFinite(downSince)).toBe(true);
    const taken = (m: Message) => new Date(m.json.ts as string).getTime();
    const aDuring = sub.messages.filter((m) => m.topic === aTopic && taken(m) > downSince && taken(m) < taken(resumed));
    expect(aDuring.filter((m) => m !== marks[0])).toEqual([]);
  });

  it('serves /healthz and Prometheus /metrics on loopback', async () => {
    const base = `http://127.0.0.1:${tg.gw.healthPort}`;
    const res = await fetch(`${base}/healthz`);
    const health = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(health).toMatchObject({ ok: true, reasons: [], mqtt: { state: 'connected', away_s: 0 } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const published = Number(/^edgeferry_samples_published_total (\d+)/m.exec(metrics)?.[1]);
    expect(published).toBeGreaterThan(0);
    expect(metrics).toMatch(/edgeferry_buffer_depth \d+/);
    expect(metrics).toMatch(/edgeferry_device_up\{device="plc-b"\} 1/);
    expect(metrics).toContain('edgeferry_poll_overruns_total');
  });
});
