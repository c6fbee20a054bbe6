// The Sparkplug pieces without a broker: datatypes from device maps, aliases, a metric born again
// when its values change kind, values through the protobuf payload and back, and bdSeq on disk.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommonPoint } from '../../src/config/schema.js';
import { BdSeqStore } from '../../src/publish/sparkplug/bdseq.js';
import { MetricCatalog } from '../../src/publish/sparkplug/catalog.js';
import type { ValueType } from '../../src/core/driver.js';
import { modbusTcp } from '../../drivers/modbus/index.js';
import { bacnetMstp } from '../../drivers/bacnet-mstp/index.js';
import { opcua } from '../../drivers/opcua/index.js';
import { decodePayload, DT, encodePayload, setValue, valueOf } from '../../src/publish/sparkplug/payload.js';

const pt = (name: string, extra: Record<string, unknown> = {}) =>
  ({ name, report: 'always', deadband: 0, priority: 'normal', writable: false, write_min_interval_ms: 0, ...extra }) as CommonPoint;

describe('MetricCatalog', () => {
  it("takes datatypes from the point's driver: declared by the map, or reported by the device; aliases unique and stable", () => {
    const c = new MetricCatalog();
    const by = (spec: { valueType(p: never): ValueType | undefined }) => (p: CommonPoint) => spec.valueType(p as never);
    const devices = [
      {
        name: 'plc',
        points: [pt('a', { type: 'int16' }), pt('b', { type: 'int16', scale: 0.1 }), pt('c', { type: 'uint64' }), pt('d', { type: 'bool', bit: 1 })],
        declared: by(modbusTcp),
      },
      {
        name: 'ahu',
        points: [
          pt('t', { object: 'analog-input:1', property: 'present-value' }),
          pt('f', { object: 'binary-output:1', property: 'present-value' }),
          pt('n', { object: 'device:1', property: 'object-name' }),
        ],
        declared: by(bacnetMstp),
      },
      { name: 'ua', points: [pt('n', { node_id: 'ns=1;s=x' })], declared: by(opcua) },
    ];
    c.update(devices);
    expect(c.metrics('plc').map((m) => m.datatype)).toEqual([DT.Int16, DT.Double, DT.UInt64, DT.Boolean]);
    expect(c.metrics('ahu').map((m) => [m.datatype, m.declared])).toEqual([
      [DT.Float, true],
      [DT.Boolean, true],
      [DT.Double, false],
    ]);
    expect(c.get('ua', 'n')).toMatchObject({ declared: false });
    const aliases = c.devices().flatMap((d) => c.metrics(d).map((m) => m.alias));
    expect(new Set(aliases).size).toBe(aliases.length);
    // At a birth, a reported metric takes the type its device reported (OPC UA: Int32).
    c.learn('ua', 'n', 5, 'int32');
    expect(c.get('ua', 'n')!.datatype).toBe(DT.Int32);
    // A value that type cannot carry: the type changes (the device is born again); declared ones never do.
    expect(c.fit('ua', 'n', 7, 'int32')).toBe(false);
    expect(c.fit('ua', 'n', 'text', 'string')).toBe(true);
    expect(c.get('ua', 'n')!.datatype).toBe(DT.String);
    expect(c.fit('ua', 'n', 'more text', 'string')).toBe(false);
    expect(c.fit('plc', 'a', 'text', undefined)).toBe(false);
    // No type reported at all (a BACnet property that is NULL): the kind of the value.
    c.learn('ahu', 'n', 'AHU-1', undefined);
    expect(c.get('ahu', 'n')!.datatype).toBe(DT.String);
    // Rebuilt (a reload): the same points keep their aliases, new ones get new aliases.
    const before = c.get('plc', 'a')!.alias;
    c.update([{ name: 'plc', points: [pt('a', { type: 'int16' }), pt('z', { type: 'int16' })], declared: by(modbusTcp) }]);
    expect(c.get('plc', 'a')!.alias).toBe(before);
    expect(aliases).not.toContain(c.get('plc', 'z')!.alias);
    expect(c.devices()).toEqual(['plc']);
  });
});

describe('payload values', () => {
  it.each([
    [DT.Int16, -123],
    [DT.Int8, -1],
    [DT.UInt32, 4_000_000_000],
    [DT.Int64, -5],
    [DT.Int64, -(2n ** 62n)],
    [DT.UInt64, 2n ** 63n + 7n],
    [DT.Float, 21.5],
    [DT.Double, -12.3],
    [DT.Boolean, true],
    [DT.String, 'line 2'],
    [DT.Double, null],
  ] as const)('datatype %i: %s survives encoding', (datatype, value) => {
    const m = setValue({ alias: 1, timestamp: 1, datatype }, datatype, value);
    const back = decodePayload(encodePayload({ timestamp: 1, seq: 3, metrics: [m] }));
    expect(back.seq).toBe(3);
    expect(valueOf(back.metrics[0]!, datatype)).toEqual(value);
  });
});

describe('BdSeqStore', () => {
  it('counts up per session, wraps after 255, and continues after a restart (a damaged or empty file starts over at 0)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-bdseq-'));
    try {
      const file = join(dir, 'buffer.db.bdseq');
      const a = new BdSeqStore(file);
      expect(a.next()).toBe(0);
      a.sent();
      expect(a.next()).toBe(1);
      // Attempts that never sent their CONNECT (the broker unreachable) keep the number.
      expect([a.next(), a.next()]).toEqual([1, 1]);
      a.sent();
      expect(a.next()).toBe(2);
      // After a restart the last number on disk may have gone out: the next is one more.
      expect(new BdSeqStore(file).next()).toBe(3);
      writeFileSync(file, '255\n');
      expect(new BdSeqStore(file).next()).toBe(0);
      writeFileSync(file, 'garbage');
      expect(new BdSeqStore(file).next()).toBe(0);
      writeFileSync(file, '');
      expect(new BdSeqStore(file).next()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
