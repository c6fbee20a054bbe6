// The driver contract (src/core/driver.ts), checked the same way for every driver, through its
// registered spec and a device map as an engineer writes it, against a real peer of its protocol
// (the simulators): create/createLink do no I/O and start nothing; plan is pure; probe proves the
// device is there; read gives exactly one Reading per point, a point the device refuses as bad
// with its reason (not thrown); a device that stops answering makes read throw TimeoutError or
// NotConnectedError — never return made-up values. Every good value has a type the driver says
// (declared by the map through DriverSpec.valueType, or reported with the reading), and fits it:
// outputs (Sparkplug datatypes) take it from there, never from guessing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DRIVERS } from '../../drivers/registry.js';
import { startMstpDevice } from '../../simulators/bacnet-mstp/index.js';
import { start as startModbus } from '../../simulators/modbus/index.js';
import { startOpcuaSim } from '../../simulators/opcua/index.js';
import { freePort } from '../../simulators/free-port.js';
import { startRs485Bus } from '../../simulators/rs485-bus.js';
import { ConfigLoader, type LoadedDevice } from '../../src/config/load.js';
import { formatProblem, YamlFile } from '../../src/config/yaml-file.js';
import type { DriverSpec, Value, ValueType } from '../../src/core/driver.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'edgeferry-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A peer of the protocol, the device map that reads it, the point it refuses, and how to silence it. */
interface Case {
  driver: string;
  start(): Promise<{ map: string; silence(): Promise<void> | void; stop(): Promise<void> }>;
  refused: string;
}

const CASES: Case[] = [
  {
    driver: 'modbus_tcp',
    refused: 'missing',
    async start() {
      const sim = await startModbus({
        registers: [
          { area: 'holding', address: 0, type: 'uint16', value: 42 },
          { area: 'holding', address: 1, type: 'int16', value: -5 },
        ],
      });
      sim.script({ kind: 'exception', code: 2, area: 'holding', from: 900, to: 900 }); // Illegal Data Address, as a PLC answers
      return {
        // max_gap 16 merges "missing" with its neighbour at 895 into one read, which the device
        // refuses: the driver splits it, and its neighbour is still read.
        map: `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: ${sim.port}, timeout_ms: 300, max_gap: 16 }\n    points:\n      - { name: a, address: 0 }\n      - { name: b, address: 1, type: int16 }\n      - { name: near, address: 895 }\n      - { name: missing, address: 900 }\n      - { name: half, address: 0, scale: 0.5 }\n`,
        silence: () => sim.script({ kind: 'silent' }),
        stop: () => sim.stop(),
      };
    },
  },
  {
    driver: 'opcua',
    refused: 'missing',
    async start() {
      const sim = await startOpcuaSim({ pkiDir: join(dir, 'ua-server-pki'), port: await freePort() });
      return {
        map: `version: 1\ndevices:\n  - name: plc\n    driver: opcua\n    poll_interval_ms: 1000\n    connection: { endpoint: "${sim.endpoint}", security_policy: None, security_mode: None, trust_unknown_server: true, pki_dir: ${join(dir, 'ua-client-pki')}, timeout_ms: 2000 }\n    points:\n      - { name: temperature, node_id: "ns=1;s=Line1.Temperature" }\n      - { name: counter, node_id: "ns=1;s=Line1.Counter" }\n      - { name: missing, node_id: "ns=1;s=Line1.NoSuchThing" }\n`,
        silence: () => sim.stop(),
        stop: async () => undefined,
      };
    },
  },
  {
    driver: 'bacnet_mstp',
    refused: 'missing',
    async start() {
      const bus = await startRs485Bus(2, { baudRate: 38400 });
      const dev = await startMstpDevice({ path: bus.ports[1]!, mac: 5, deviceInstance: 1005, maxMaster: 15, usageTimeoutMs: 100 });
      return {
        map: `version: 1\ndevices:\n  - name: ahu\n    driver: bacnet_mstp\n    poll_interval_ms: 1000\n    connection: { port: ${bus.ports[0]}, baud_rate: 38400, station: 1, max_master: 15, usage_timeout_ms: 100, mac: 5, timeout_ms: 3000 }\n    points:\n      - { name: temp, object: "analog-input:1" }\n      - { name: pump, object: "binary-input:1" }\n      - { name: missing, object: "analog-input:99" }\n      - { name: id, object: "device:1005", property: object-name }\n`,
        silence: () => dev.stop(),
        stop: () => bus.stop(),
      };
    },
  },
];

function load(driver: string, map: string): { spec: DriverSpec; device: LoadedDevice } {
  const file = join(dir, `${driver}.yaml`);
  writeFileSync(file, map);
  const { devices, problems } = new ConfigLoader(DRIVERS, dir).loadDeviceMap(new YamlFile(file, file));
  if (problems.length) throw new Error(problems.map(formatProblem).join('\n'));
  return { spec: DRIVERS.find((d) => d.type === driver)!, device: devices[0]! };
}

const int = (bits: number, signed: boolean) => (v: Value) =>
  (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint'
    ? signed
      ? BigInt(v) >= -(2n ** BigInt(bits - 1)) && BigInt(v) < 2n ** BigInt(bits - 1)
      : BigInt(v) >= 0n && BigInt(v) < 2n ** BigInt(bits)
    : false;
/** What a value of each type looks like (the test's own reading of src/core/driver.ts's ValueType). */
const FITS: Record<ValueType, (v: Value) => boolean> = {
  boolean: (v) => typeof v === 'boolean',
  int8: int(8, true),
  int16: int(16, true),
  int32: int(32, true),
  int64: int(64, true),
  uint8: int(8, false),
  uint16: int(16, false),
  uint32: int(32, false),
  uint64: int(64, false),
  float: (v) => typeof v === 'number',
  double: (v) => typeof v === 'number',
  string: (v) => typeof v === 'string',
  datetime: (v) => typeof v === 'string' && Number.isFinite(Date.parse(v)),
  array: (v) => Array.isArray(v),
};

/** Handles and requests alive in this process, by kind (sockets, timers, …). */
const resources = () => process.getActiveResourcesInfo().sort().join(',');

describe.each(CASES)('driver contract: $driver', (c) => {
  it('create/createLink are inert, plan is pure, probe and read keep the contract, silence throws', async () => {
    const peer = await c.start();
    try {
      const { spec, device } = load(c.driver, peer.map);
      // Inert: nothing opened or scheduled by making the driver and the link.
      const before = resources();
      const driver = spec.create(device, { log, baseDir: dir });
      const link = spec.createLink(device, { log, baseDir: dir });
      expect(resources()).toBe(before);
      // Pure: the same points plan the same way, without the link.
      const plan = driver.plan(device.points);
      expect(JSON.stringify(driver.plan(device.points))).toBe(JSON.stringify(plan));

      const ac = new AbortController();
      await link.open(ac.signal, () => undefined);
      try {
        // The first probe may race the peer's start (an MS/TP ring still forming): the link runner
        // probes again too; three tries.
        for (let i = 0; ; i++) {
          try {
            await driver.probe(link, ac.signal);
            break;
          } catch (err) {
            if (i === 2) throw err;
          }
        }
        const planned = JSON.stringify(plan);
        const readings = await driver.read(plan, link, ac.signal);
        // A plan is a value: reading with it does not change it.
        expect(JSON.stringify(plan)).toBe(planned);
        expect(readings.map((r) => r.point).sort()).toEqual(device.points.map((p) => p.name).sort());
        const types: string[] = [];
        for (const r of readings) {
          if (r.point === c.refused) {
            expect(r).toMatchObject({ quality: 'bad', value: null });
            expect(r.reason, `${c.driver}: a refused point says why`).toMatch(/\S/);
          } else {
            expect(r.quality, `${c.driver} ${r.point}: ${r.reason}`).toBe('good');
            expect(r.value).not.toBeNull();
            // Its type, from the driver: declared for the point, or reported with the value — and the value fits it.
            const declared = spec.valueType(device.points.find((p) => p.name === r.point)!);
            const type = declared ?? r.type;
            expect(type, `${c.driver} ${r.point}: no type declared or reported`).toBeDefined();
            if (declared && r.type) expect(r.type, `${c.driver} ${r.point}: reported against declared`).toBe(declared);
            expect(FITS[type!](r.value), `${c.driver} ${r.point}: ${JSON.stringify(r.value)} is no ${type}`).toBe(true);
            types.push(`${r.point}:${type}`);
          }
        }
        console.log(`${c.driver} value types: ${types.join(' ')}`);
        // A device that stops answering: read throws, and says which way.
        await peer.silence();
        const err = await driver.read(plan, link, ac.signal).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err instanceof TimeoutError || err instanceof NotConnectedError, `${c.driver}: ${String(err)}`).toBe(true);
      } finally {
        ac.abort();
        await link.close();
      }
    } finally {
      await peer.stop();
    }
  }, 60_000);
});
