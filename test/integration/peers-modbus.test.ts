// The whole gateway against Modbus servers nobody on the team wrote: pymodbus (TCP, and RTU with
// two slaves on a socat pty pair) and libmodbus (TCP), publishing to a real mosquitto. pymodbus
// builds its register images with its own payload builder; libmodbus serves the hand-worked words
// of test/fixtures/modbus-vectors.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { ptyPair, type PtyPair } from '../../simulators/serial-line.js';
import { VECTORS, wordsOf } from '../fixtures/modbus-vectors.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';
import { buildLibmodbusServer, PYMODBUS_SERVER, PYTHON, startPeer, type Peer } from '../peers/peers.js';

const ROOT = 's/g';
const vectors = VECTORS.map((v, i) => ({ ...v, name: `${v.type}_${v.order}`, address: i * 4 }));

let dir: string;
let broker: Mosquitto;
let line: PtyPair;
const peers: Peer[] = [];
let libmodbus: ReturnType<typeof buildLibmodbusServer> | undefined;
let tg: TestGateway;
let sub: Subscriber;

// The same points on every TCP server: each type in each byte order, then the other areas.
const tcpPoints = [
  ...vectors.map((v) => `      - { name: ${v.name}, address: ${v.address}, type: ${v.type}, byte_order: ${v.order} }`),
  '      - { name: text, address: 200, type: string, count: 3 }',
  '      - { name: bit_3, address: 210, type: bool, bit: 3 }',
  '      - { name: bit_4, address: 210, type: bool, bit: 4 }',
  '      - { name: scaled, address: 211, type: int16, scale: 0.1, offset: -40, unit: degC }',
  '      - { name: input_u16, area: input, address: 5, type: uint16 }',
  '      - { name: coil_7, area: coil, address: 7, type: bool }',
  '      - { name: discrete_2, area: discrete, address: 2, type: bool }',
  '      - { name: missing, address: 5000, type: uint16 }',
].join('\n');

function pymodbusSpec(): string {
  // Values as JSON text, so 64-bit integers reach Python exactly.
  const values = vectors.map((v) => `{"area":"holding","address":${v.address},"type":"${v.type}","order":"${v.order}","value":${v.json}}`);
  const extra = [
    '{"area":"holding","address":200,"string":"OK-1"}',
    '{"area":"holding","address":210,"words":[8]}',
    '{"area":"holding","address":211,"type":"int16","value":-500}',
    '{"area":"input","address":5,"words":[4242]}',
    '{"area":"coil","address":7,"bits":[true]}',
    '{"area":"discrete","address":2,"bits":[true]}',
  ];
  const rtu1 = '{"area":"holding","address":0,"type":"float32","order":"CDAB","value":21.5},{"area":"coil","address":3,"bits":[true]}';
  const rtu2 = '{"area":"holding","address":0,"type":"int32","order":"DCBA","value":-70000},{"area":"input","address":1,"words":[7]}';
  return `{"units":{"1":[${[...values, ...extra].join(',')}],"7":[${[...values, ...extra].join(',')}],"21":[${rtu1}],"22":[${rtu2}]}}`;
}

function libmodbusImage(): string {
  const lines: string[] = [];
  for (const v of vectors) wordsOf(v.words).forEach((w, i) => lines.push(`h ${v.address + i} ${w.toString(16)}`));
  lines.push('h 200 4f4b', 'h 201 2d31', 'h 210 8', 'h 211 fe0c', 'i 5 1092', 'c 7 1', 'd 2 1');
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-peers-modbus-'));
  writeFileSync(join(dir, 'spec.json'), pymodbusSpec());
  broker = await startMosquitto();
  line = await ptyPair(dir);
  libmodbus = buildLibmodbusServer();
  const pyTcp = await startPeer(PYTHON, [PYMODBUS_SERVER, 'tcp', join(dir, 'spec.json')], /^listening \d+/);
  peers.push(pyTcp);
  const lmTcp = await startPeer(libmodbus.bin, [], /^listening \d+/, { stdin: libmodbusImage() });
  peers.push(lmTcp);
  peers.push(await startPeer(PYTHON, [PYMODBUS_SERVER, 'rtu', join(dir, 'spec.json'), line.b, '19200'], /^listening /));
  const devices = `version: 1
devices:
  - name: pymodbus
    driver: modbus_tcp
    poll_interval_ms: 500
    connection: { host: 127.0.0.1, port: ${pyTcp.ready[1]}, unit_id: 7, timeout_ms: 2000 }
    points:
${tcpPoints}
  - name: libmodbus
    driver: modbus_tcp
    poll_interval_ms: 500
    connection: { host: 127.0.0.1, port: ${lmTcp.ready[1]}, unit_id: 1, timeout_ms: 2000 }
    points:
${tcpPoints}
  - name: rtu-21
    driver: modbus_rtu
    poll_interval_ms: 500
    connection: { port: ${line.a}, baud_rate: 19200, parity: none, unit_id: 21, timeout_ms: 2000 }
    points:
      - { name: temp, address: 0, type: float32, byte_order: CDAB }
      - { name: run, area: coil, address: 3, type: bool }
  - name: rtu-22
    driver: modbus_rtu
    poll_interval_ms: 500
    connection: { port: ${line.a}, baud_rate: 19200, parity: none, unit_id: 22, timeout_ms: 2000 }
    points:
      - { name: energy, address: 0, type: int32, byte_order: DCBA }
      - { name: faults, area: input, address: 1, type: uint16 }
`;
  sub = await Subscriber.connect(broker, `${ROOT}/#`);
  tg = makeGateway(gatewayYaml(broker), devices);
  await tg.gw.start();
}, 60_000);

afterAll(async () => {
  await tg?.cleanup();
  await sub?.close();
  for (const p of peers) await p.stop();
  await line?.stop();
  await broker?.stop();
  libmodbus?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const on = (topic: string) => (m: Message) => m.topic === topic;
const value = (device: string, point: string) => sub.waitFor(on(`${ROOT}/${device}/${point}`), 20_000, `${device}/${point}`);

describe.each(['pymodbus', 'libmodbus'])('Modbus TCP against %s', (device) => {
  it.each(vectors)('reads $type in byte order $order exactly', async (v) => {
    const m = await value(device, v.name);
    expect(m.text).toContain(`"value":${v.json},`);
    expect(m.json).toMatchObject({ quality: 'good' });
  });

  it('reads strings, register bits, scaled values, input registers, coils and discrete inputs', async () => {
    expect((await value(device, 'text')).json).toMatchObject({ value: 'OK-1', quality: 'good' });
    expect((await value(device, 'bit_3')).json).toMatchObject({ value: true });
    expect((await value(device, 'bit_4')).json).toMatchObject({ value: false });
    expect((await value(device, 'scaled')).json).toMatchObject({ value: -90, unit: 'degC' });
    expect((await value(device, 'input_u16')).json).toMatchObject({ value: 4242 });
    expect((await value(device, 'coil_7')).json).toMatchObject({ value: true });
    expect((await value(device, 'discrete_2')).json).toMatchObject({ value: true });
  });

  it("turns the server's exception for an address it lacks into a bad sample, neighbours unharmed", async () => {
    expect((await value(device, 'missing')).json).toMatchObject({ value: null, quality: 'bad', reason: 'modbus exception 2 (Illegal Data Address)' });
    const status = await sub.waitFor((m) => m.topic === `${ROOT}/status/${device}` && m.json.state === 'up', 20_000, `${device} up`);
    expect(status.json).toMatchObject({ errors: 0, timeouts: 0 });
  });
});

describe('Modbus RTU against pymodbus on a serial line', () => {
  it('reads two slaves sharing the line', async () => {
    expect((await value('rtu-21', 'temp')).json).toMatchObject({ value: 21.5, quality: 'good' });
    expect((await value('rtu-21', 'run')).json).toMatchObject({ value: true, quality: 'good' });
    expect((await value('rtu-22', 'energy')).json).toMatchObject({ value: -70000, quality: 'good' });
    expect((await value('rtu-22', 'faults')).json).toMatchObject({ value: 7, quality: 'good' });
    // Both keep being read, one request at a time on the line, without timeouts.
    await sub.next(on(`${ROOT}/rtu-21/temp`), 10_000, 'rtu-21 again');
    await sub.next(on(`${ROOT}/rtu-22/energy`), 10_000, 'rtu-22 again');
    const statuses = sub.messages.filter((m) => m.topic.startsWith(`${ROOT}/status/rtu-`) && m.json.state !== 'connecting');
    expect(statuses.length).toBeGreaterThanOrEqual(2);
    expect(statuses.map((m) => [m.json.state, m.json.timeouts])).toEqual(statuses.map(() => ['up', 0]));
  });
});
