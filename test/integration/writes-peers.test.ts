// Writes through command topics to servers nobody on the team wrote — pymodbus (TCP, and RTU on a
// socat pty pair), libmodbus (TCP), open62541 (Setpoint, the.answer, Label) — and to our OPC UA
// simulator, over a real mosquitto with mutual TLS: the result is ok, the value read back from the
// device equals what was written, and the next sample shows it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../simulators/free-port.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { startOpcuaSim, type OpcuaSimulator } from '../../simulators/opcua/index.js';
import { ptyPair, type PtyPair } from '../../simulators/serial-line.js';
import { Commander } from '../helpers/commander.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { buildLibmodbusServer, peersBin, PYMODBUS_SERVER, PYTHON, startPeer, type Peer } from '../peers/peers.js';

let dir: string;
let broker: Mosquitto;
let line: PtyPair;
let libmodbus: ReturnType<typeof buildLibmodbusServer> | undefined;
let uaSim: OpcuaSimulator;
const peers: Peer[] = [];
let tg: TestGateway;
let scada: Commander;

const W = 'writable: true, write_min_interval_ms: 0';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-writes-peers-'));
  writeFileSync(
    join(dir, 'spec.json'),
    JSON.stringify({
      units: {
        '1': [
          { area: 'holding', address: 0, type: 'float32', order: 'CDAB', value: 1.5 },
          { area: 'coil', address: 3, bits: [false] },
        ],
        '21': [{ area: 'holding', address: 4, words: [7] }],
      },
    }),
  );
  broker = await startMosquitto();
  line = await ptyPair(dir);
  libmodbus = buildLibmodbusServer();
  const py = await startPeer(PYTHON, [PYMODBUS_SERVER, 'tcp', join(dir, 'spec.json')], /^listening \d+/);
  peers.push(py);
  const lm = await startPeer(libmodbus.bin, [], /^listening \d+/, { stdin: 'h 10 0\n' });
  peers.push(lm);
  peers.push(await startPeer(PYTHON, [PYMODBUS_SERVER, 'rtu', join(dir, 'spec.json'), line.b, '19200'], /^listening /));
  const uaPort = await freePort();
  peers.push(await startPeer(join(peersBin(), 'ref_server'), [String(uaPort), '127.0.0.1'], /New DiscoveryUrl added/));
  uaSim = await startOpcuaSim({ pkiDir: join(dir, 'sim-pki') });
  const ua = 'security_policy: None, security_mode: None, trust_unknown_server: true';
  const devices = `version: 1
devices:
  - name: pymodbus
    driver: modbus_tcp
    poll_interval_ms: 300
    connection: { host: 127.0.0.1, port: ${py.ready[1]}, unit_id: 1, timeout_ms: 2000 }
    points:
      - { name: sp, address: 0, type: float32, byte_order: CDAB, ${W} }
      - { name: run, area: coil, address: 3, type: bool, ${W} }
  - name: libmodbus
    driver: modbus_tcp
    poll_interval_ms: 300
    connection: { host: 127.0.0.1, port: ${lm.ready[1]}, timeout_ms: 2000 }
    points:
      - { name: flow, address: 10, type: int32, scale: 0.01, ${W} }
      - { name: valve, area: coil, address: 5, type: bool, ${W} }
  - name: rtu
    driver: modbus_rtu
    poll_interval_ms: 300
    connection: { port: ${line.a}, baud_rate: 19200, unit_id: 21, timeout_ms: 1000 }
    points:
      - { name: level_sp, address: 4, type: uint16, ${W} }
  - name: open62541
    driver: opcua
    poll_interval_ms: 300
    connection: { endpoint: "opc.tcp://127.0.0.1:${uaPort}", ${ua} }
    points:
      - { name: Setpoint, node_id: "ns=1;s=Setpoint", ${W} }
      - { name: the_answer, node_id: "ns=1;s=the.answer", ${W} }
      - { name: Label, node_id: "ns=1;s=Label", ${W} }
  - name: uasim
    driver: opcua
    poll_interval_ms: 300
    connection: { endpoint: "${uaSim.endpoint}", ${ua} }
    points:
      - { name: Setpoint, node_id: "ns=1;s=Line1.Setpoint", ${W} }
`;
  tg = makeGateway(gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }), devices);
  await tg.gw.start();
  await tg.gw.commandsReady();
  scada = await Commander.connect(broker);
  for (const d of ['pymodbus', 'libmodbus', 'rtu', 'open62541', 'uasim']) {
    await scada.seen.waitFor((m) => m.topic === `s/g/status/${d}` && m.json.state === 'up', 30_000, `${d} up`);
  }
}, 90_000);

afterAll(async () => {
  await scada?.close();
  await tg?.cleanup();
  for (const p of peers) await p.stop();
  await uaSim?.stop();
  await line?.stop();
  libmodbus?.remove();
  await broker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes, checks the result and read back, then waits for a later sample of the point with the value. */
async function writeAndSee(device: string, point: string, value: unknown, shown: unknown = value): Promise<void> {
  const r = await scada.write(device, point, { value });
  expect(r, `${device}/${point}`).toMatchObject({ outcome: 'ok', read_back: shown, read_back_quality: 'good' });
  const after = Date.now();
  const s = await scada.seen.waitFor((m) => m.at >= after && m.topic === `s/g/${device}/${point}`, 10_000, `a sample of ${device}/${point}`);
  expect(s.json.value, `${device}/${point} sample`).toEqual(shown);
}

describe('writes to independent peers', () => {
  it('pymodbus over TCP: a float32 (CDAB) holding register and a coil (FC16, FC5)', async () => {
    await writeAndSee('pymodbus', 'sp', 21.25);
    await writeAndSee('pymodbus', 'run', true);
  });

  it('libmodbus over TCP: a scaled int32 and a coil', async () => {
    await writeAndSee('libmodbus', 'flow', -123.45);
    await writeAndSee('libmodbus', 'valve', true);
  });

  it('pymodbus over Modbus RTU on a serial line: one register (FC6)', async () => {
    await writeAndSee('rtu', 'level_sp', 512);
  });

  it("open62541: a Double, an Int32 and a String in the node's own data type; a value outside Int32 refused before writing", async () => {
    await writeAndSee('open62541', 'Setpoint', 17.5);
    await writeAndSee('open62541', 'the_answer', -7);
    await writeAndSee('open62541', 'Label', 'line 2');
    const r = await scada.write('open62541', 'the_answer', { value: 2 ** 31 });
    expect(r).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/Int32/) });
  });

  it('the OPC UA simulator: Line1.Setpoint', async () => {
    await writeAndSee('uasim', 'Setpoint', 63.5);
  });
});
