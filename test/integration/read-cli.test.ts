// Commissioning (issue 34): `edgeferry read` polls the real devices of a map — here servers nobody on
// the team wrote, pymodbus and open62541 (../shared/peers) — prints each point's decoded value,
// quality and reason, and exits; non-zero when a device cannot be read. Run as a user would: the
// built command, a gateway file and a device map.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/tls/certs.js';
import { freePort } from '../../simulators/free-port.js';
import { peersBin, PYMODBUS_SERVER, PYTHON, startPeer, type Peer } from '../peers/peers.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
let dir: string;
const peers: Peer[] = [];
let mbPort: number;
let uaPort: number;
let closedPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-read-'));
  writeFileSync(
    join(dir, 'spec.json'),
    JSON.stringify({
      units: {
        '1': [
          { area: 'holding', address: 0, type: 'float32', order: 'CDAB', value: 21.78 },
          { area: 'holding', address: 2, type: 'int16', order: 'ABCD', value: -7 },
          { area: 'holding', address: 20, string: 'OK-1' },
        ],
      },
    }),
  );
  const py = await startPeer(PYTHON, [PYMODBUS_SERVER, 'tcp', join(dir, 'spec.json')], /^listening \d+/);
  peers.push(py);
  mbPort = Number(py.ready[1]);
  uaPort = await freePort();
  peers.push(await startPeer(join(peersBin(), 'ref_server'), [String(uaPort), '127.0.0.1'], /New DiscoveryUrl added/));
  closedPort = await freePort();
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1
devices:
  - name: boiler
    driver: modbus_tcp
    poll_interval_ms: 500
    connection: { host: 127.0.0.1, port: ${mbPort} }
    points:
      - { name: temp, address: 0, type: float32, byte_order: CDAB, unit: degC }
      - { name: offset, address: 2, type: int16 }
      - { name: label, address: 20, type: string, count: 2 }
  - name: line
    driver: opcua
    poll_interval_ms: 500
    connection: { endpoint: "opc.tcp://127.0.0.1:${uaPort}", security_policy: None, security_mode: None }
    points:
      - { name: answer, node_id: "ns=1;s=the.answer" }
      - { name: ghost, node_id: "ns=1;s=NoSuchNode" }
  - name: gone
    driver: modbus_tcp
    poll_interval_ms: 500
    connection: { host: 127.0.0.1, port: ${closedPort}, timeout_ms: 300 }
    points:
      - { name: x, address: 0 }
`,
  );
  writeFileSync(
    join(dir, 'gateway.yaml'),
    'version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtts://127.0.0.1:1\n  tls: { ca: ca.pem }\n',
  );
  writeFileSync(join(dir, 'ca.pem'), createCa().cert); // a valid gateway file; the broker is never asked
}, 60_000);

afterAll(async () => {
  for (const p of peers) await p.stop();
  rmSync(dir, { recursive: true, force: true });
});

function read(config: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, 'read', '--config', config, ...args], { cwd: dir });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => resolve({ code, out, err }));
  });
}

describe('edgeferry read', () => {
  it('prints each point of pymodbus and open62541 as decoded, and exits 0', async () => {
    const r = await read('gateway.yaml', '--device', 'boiler', '--device', 'line');
    console.log(`$ edgeferry read --config gateway.yaml --device boiler --device line\n${r.out}${r.err}`);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^device\s+point\s+value\s+quality\s+reason$/);
    expect(lines).toContainEqual(expect.stringMatching(/^boiler\s+temp\s+21\.78\s+good$/));
    expect(lines).toContainEqual(expect.stringMatching(/^boiler\s+offset\s+-7\s+good$/));
    expect(lines).toContainEqual(expect.stringMatching(/^boiler\s+label\s+"OK-1"\s+good$/));
    expect(lines).toContainEqual(expect.stringMatching(/^line\s+answer\s+42\s+good$/));
    expect(lines).toContainEqual(expect.stringMatching(/^line\s+ghost\s+—\s+bad\s+\S.*NodeIdUnknown/));
  }, 60_000);

  it('a device map on its own, --json --count 2: JSON lines, two rounds; a device that cannot be reached makes it exit 1 and says which', async () => {
    const r = await read('devices.yaml', '--json', '--count', '2');
    expect(r.code, r.err).toBe(1);
    const rows = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { device: string; point: string; value: unknown; quality: string; round: number });
    expect(
      rows.filter((x) => x.device === 'boiler' && x.point === 'temp').map((x) => [x.round, x.value]),
      r.err,
    ).toEqual([
      [1, 21.78],
      [2, 21.78],
    ]);
    expect(rows.some((x) => x.device === 'gone')).toBe(false);
    expect(r.err).toMatch(/gone: cannot connect to tcp:\/\/127\.0\.0\.1:\d+/);
    expect(r.err).toMatch(/1 of 3 devices could not be read: gone/);
  }, 60_000);

  it('names a device that is not in the maps', async () => {
    const r = await read('gateway.yaml', '--device', 'boiler2');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no device "boiler2" in gateway\.yaml \(devices: boiler, line, gone\)/);
  });
});
