// The Sparkplug pieces without a broker: datatypes from device maps, aliases, a metric born again
// when its values change kind, values through the protobuf payload and back, and bdSeq on disk.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommonPoint } from '../../src/config/schema.js';
import { BdSeqStore } from '../../src/publish/sparkplug/bdseq.js';
import { MetricCatalog } from '../../src/publish/sparkplug/catalog.js';
import { decodePayload, DT, encodePayload, setValue, valueOf } from '../../src/publish/sparkplug/payload.js';

const pt = (name: string, extra: Record<string, unknown> = {}) =>
  ({ name, report: 'always', deadband: 0, priority: 'normal', writable: false, write_min_interval_ms: 0, ...extra }) as CommonPoint;

describe('MetricCatalog', () => {
  it('takes datatypes from the map, aliases unique and stable, and learns undeclared ones from values', () => {
    const c = new MetricCatalog();
    const devices = [
      {
        name: 'plc',
        points: [pt('a', { type: 'int16' }), pt('b', { type: 'int16', scale: 0.1 }), pt('c', { type: 'uint64' }), pt('d', { type: 'bool', bit: 1 })],
      },
      {
        name: 'ahu',
        points: [pt('t', { object: 'analog-input:1', property: 'present-value' }), pt('f', { object: 'binary-output:1', property: 'present-value' })],
      },
      { name: 'ua', points: [pt('n', { node_id: 'ns=1;s=x' })] },
    ];
    c.update(devices);
    expect(c.metrics('plc').map((m) => m.datatype)).toEqual([DT.Int16, DT.Double, DT.UInt64, DT.Boolean]);
    expect(c.metrics('ahu').map((m) => m.datatype)).toEqual([DT.Float, DT.Boolean]);
    expect(c.get('ua', 'n')).toMatchObject({ datatype: DT.Double, declared: false });
    const aliases = c.devices().flatMap((d) => c.metrics(d).map((m) => m.alias));
    expect(new Set(aliases).size).toBe(aliases.length);
    // A string appears where numbers were: the type changes (the device is born again); declared ones never do.
    expect(c.fit('ua', 'n', 'text')).toBe(true);
    expect(c.get('ua', 'n')!.datatype).toBe(DT.String);
    expect(c.fit('ua', 'n', 'more text')).toBe(false);
    expect(c.fit('plc', 'a', 'text')).toBe(false);
    // Rebuilt (a reload): the same points keep their aliases, new ones get new aliases.
    const before = c.get('plc', 'a')!.alias;
    c.update([{ name: 'plc', points: [pt('a', { type: 'int16' }), pt('z', { type: 'int16' })] }]);
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
