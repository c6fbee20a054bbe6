import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import { encodeBody, encodePollMessages, encodePollReadings, type EncodedMessage } from '../../src/buffer/body.js';
import { KIND_CODE, rowPoints, type BufferedRow } from '../../src/buffer/rows.js';
import type { CommonPoint } from '../../src/config/schema.js';
import type { Reading } from '../../src/core/driver.js';
import { POLL_POINT, type Sample } from '../../src/core/sample.js';

const BOUNDS = { maxBytes: 1 << 30, maxAgeS: 86_400 };
const sample = (point: string, value: Sample['value']): Sample => ({
  ts: Date.UTC(2026, 0, 1),
  device: 'd1',
  point,
  value,
  quality: 'good',
  channel: 'tcp://x',
});

describe('sqlite buffer', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeferry-buf-'));
    path = join(dir, 'b.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('assigns increasing seqs that never go back, even after emptying and reopening', () => {
    const b = new SqliteBuffer(path, { synchronous: 'full', ...BOUNDS });
    b.open();
    const first = b.append([sample('a', 1), sample('b', 2)]);
    expect(first).toEqual([1, 2]);
    b.accept([1, 2]);
    expect(b.depth()).toBe(0);
    b.close();
    const again = new SqliteBuffer(path, { synchronous: 'full', ...BOUNDS });
    again.open();
    expect(again.append([sample('c', 3)])[0]).toBe(3);
    again.close();
  });

  it('keeps rows until accepted and reads them in seq order', () => {
    const b = new SqliteBuffer(path, { synchronous: 'normal', ...BOUNDS });
    b.open();
    b.append([sample('a', 1), sample('b', 2), sample('c', 3)]);
    expect(b.readAfter(0, 10).map((r) => r.point)).toEqual(['a', 'b', 'c']);
    expect(b.readAfter(1, 1).map((r) => r.seq)).toEqual([2]);
    b.accept([2]);
    expect(b.readAfter(0, 10).map((r) => r.seq)).toEqual([1, 3]);
    b.close();
  });

  it('reads right behind the appends give what the table holds, never a row evicted or dead-lettered', () => {
    // The newest rows come from memory (src/buffer/recent.ts); this compares every read with the table itself.
    const b = new SqliteBuffer(path, { synchronous: 'full', maxBytes: 256 * 1024, maxAgeS: 86_400 });
    b.open();
    const table = new Database(path, { readonly: true });
    const inTable = (after: number, limit: number) =>
      table.prepare('SELECT seq, ts, device, point, prio, body, kind, pending FROM samples WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit);
    let cursor = 0;
    const big = 'x'.repeat(300);
    // A live row also carries what it was rendered from (BufferedRow.source); the table has the rest.
    const stored = (rows: BufferedRow[]) => rows.map(({ source: _, ...r }) => r);
    for (let round = 0; round < 400; round++) {
      b.append(Array.from({ length: 5 }, (_, i) => ({ ...sample(`p${i}`, big), priority: i % 2 ? ('bulk' as const) : undefined })));
      if (round % 7 === 0) b.reject([b.lastSeq() - 2], 'refused'); // a dead letter in the middle of the newest rows
      const rows = b.readAfter(cursor, 6);
      expect(stored(rows)).toEqual(inTable(cursor, 6));
      if (round % 3 === 0 && rows.length) b.accept(rows.map((r) => r.seq));
      cursor = rows.at(-1)?.seq ?? cursor;
      // A reconnect: the oldest unacknowledged rows, as the table has them.
      if (round % 50 === 0) expect(stored(b.readAfter(0, 20))).toEqual(inTable(0, 20));
    }
    // The byte cap evicted along the way: nothing read may be a row the table no longer holds.
    expect(b.stats().evicted).toBeGreaterThan(0);
    expect(stored(b.readAfter(cursor, 1000))).toEqual(inTable(cursor, 1000));
    table.close();
    b.close();
  });

  it('deletes exactly the acknowledged rows, in any order, with gaps and repeats', () => {
    const b = new SqliteBuffer(path, { synchronous: 'normal', ...BOUNDS });
    b.open();
    b.append(Array.from({ length: 10 }, (_, i) => sample(`p${i}`, i)));
    expect(b.lastSeq()).toBe(10);
    b.accept([8, 1, 2, 3, 5, 7, 3, 2]);
    expect(b.readAfter(0, 100).map((r) => r.seq)).toEqual([4, 6, 9, 10]);
    b.accept([10]);
    expect(b.readAfter(0, 100).map((r) => r.seq)).toEqual([4, 6, 9]);
    b.close();
  });

  it('is in WAL mode and moves rejected rows to dead_letter, not to nowhere', () => {
    const b = new SqliteBuffer(path, { synchronous: 'full', ...BOUNDS });
    b.open();
    b.append([sample('a', 1)]);
    b.reject([1], 'payload too large');
    expect(b.depth()).toBe(0);
    b.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT seq, reason FROM dead_letter').all()).toEqual([{ seq: 1, reason: 'payload too large' }]);
    db.close();
  });

  it('stores the payload body with exact 64-bit integers and the bad-quality reason', () => {
    const b = new SqliteBuffer(path, { synchronous: 'full', ...BOUNDS });
    b.open();
    b.append([sample('big', 12345678901234567890n), { ...sample('bad', null), quality: 'bad', reason: 'modbus exception 2 (Illegal Data Address)' }]);
    const [big, bad] = b.readAfter(0, 10);
    expect(big!.body).toContain('"value":12345678901234567890');
    expect(JSON.parse(bad!.body)).toMatchObject({ value: null, quality: 'bad', reason: 'modbus exception 2 (Illegal Data Address)' });
    b.close();
  });

  it('stores a poll as one message per priority (payload: poll), every field of every point kept', () => {
    const b = new SqliteBuffer(path, { synchronous: 'full', ...BOUNDS });
    b.open();
    const ts = Date.UTC(2026, 10, 25, 6, 0, 0);
    const poll = [
      { ...sample('big', 12345678901234567890n), ts, unit: 'Wh' },
      { ...sample('nan', Number.NaN), ts },
      { ...sample('trip', true), ts, priority: 'critical' as const },
      { ...sample('bad', null), ts, quality: 'bad' as const, reason: 'timeout after 500 ms' },
      { ...sample('src', 1.5), ts, deviceTs: ts - 40 },
    ];
    expect(b.append(encodePollMessages(poll))).toEqual([1, 2]);
    const [normal, critical] = b.readAfter(0, 10);
    expect(normal!.point).toBe(POLL_POINT);
    expect(normal!.prio).toBe(1);
    expect(critical!.prio).toBe(0);
    expect(normal!.body).toContain('"big":{"value":12345678901234567890,');
    expect(JSON.parse(normal!.body)).toEqual({
      ts: '2026-11-25T06:00:00.000Z',
      device: poll[0]!.device,
      channel: poll[0]!.channel,
      points: {
        big: { value: 12345678901234567890, quality: 'good', unit: 'Wh' },
        nan: { value: null, quality: 'good', raw: 'NaN' },
        bad: { value: null, quality: 'bad', reason: 'timeout after 500 ms' },
        src: { value: 1.5, quality: 'good', device_ts: '2026-11-25T05:59:59.960Z' },
      },
    });
    expect(JSON.parse(critical!.body).points).toEqual({ trip: { value: true, quality: 'good' } });
    b.close();
  });

  it('writes the same poll message from the readings (the lean path) as from samples, byte for byte', () => {
    const ts = Date.UTC(2026, 11, 7, 1, 2, 3, 456);
    const points = new Map<string, CommonPoint>(
      [
        { name: 'temp', unit: 'degC' },
        { name: 'trip', priority: 'critical' as const },
        { name: 'bulk1', priority: 'bulk' as const },
        { name: 'normal', priority: 'normal' as const },
      ].map((p) => [p.name, p as unknown as CommonPoint]),
    );
    const readings: Reading[] = [
      { point: 'temp', value: 21.78, quality: 'good' },
      { point: 'trip', value: true, quality: 'good' },
      { point: 'bulk1', value: -0, quality: 'good' },
      { point: 'normal', value: 7, quality: 'good' },
      { point: 'big', value: 12345678901234567890n, quality: 'good' },
      { point: 'nan', value: Number.NaN, quality: 'good' },
      { point: 'inf', value: -Infinity, quality: 'good' },
      { point: 'bad', value: null, quality: 'bad', reason: 'timeout "quoted" after 500 ms' },
      { point: 'text', value: 'OK "1"\n', quality: 'good' },
      { point: 'src', value: 1.5, quality: 'uncertain', deviceTs: ts - 40, serverTs: ts - 20 },
      { point: 'bulk2', value: 3e-7, quality: 'good' },
      { point: 'name "with" quotes', value: 1e21, quality: 'good' },
    ];
    for (const p of ['bulk2']) points.set(p, { name: p, priority: 'bulk' } as unknown as CommonPoint);
    const samples: Sample[] = readings.map((r) => ({
      ...r,
      ts,
      device: 'd "1"',
      channel: 'tcp://x:502',
      unit: points.get(r.point)?.unit,
      priority: points.get(r.point)?.priority,
    }));
    const lean = encodePollReadings('d "1"', 'tcp://x:502', ts, readings, points);
    const full = encodePollMessages(samples);
    const rendered = (ms: EncodedMessage[]) => ms.map(({ source: _, ...m }) => m);
    expect(rendered(lean)).toEqual(rendered(full));
    expect(lean.map((m) => m.priority)).toEqual([undefined, 'critical', 'bulk']);
    expect(JSON.parse(lean[2]!.body).points).toEqual({ bulk1: { value: 0, quality: 'good' }, bulk2: { value: 3e-7, quality: 'good' } });
    expect(encodePollReadings('d', 'c', ts, [], points)).toEqual([]);
    // What Sparkplug and InfluxDB read of a live row (its source, no parse) is what its body says.
    const asRow = (m: EncodedMessage, source: EncodedMessage['source']): BufferedRow => ({
      seq: 1,
      ts,
      device: m.device,
      point: m.point,
      prio: 1,
      kind: KIND_CODE[m.kind],
      body: m.body,
      pending: 1,
      source,
    });
    for (const m of [...lean, ...full]) {
      expect(m.source).toBeDefined();
      expect(rowPoints(asRow(m, m.source))).toEqual(rowPoints(asRow(m, undefined)));
    }
    expect(rowPoints(asRow(lean[0]!, lean[0]!.source)).find((p) => p.point === 'temp')).toEqual({
      point: 'temp',
      value: 21.78,
      quality: 'good',
      unit: 'degC',
      channel: 'tcp://x:502',
    });
    expect(rowPoints(asRow(lean[0]!, lean[0]!.source)).find((p) => p.point === 'big')!.value).toBe(12345678901234567000);
    // A point row's source is its sample.
    for (const s of samples) {
      const row: BufferedRow = { seq: 2, ts, device: s.device, point: s.point, prio: 1, kind: KIND_CODE.point, body: encodeBody(s), pending: 1 };
      expect(rowPoints({ ...row, source: s })).toEqual(rowPoints(row));
    }
  });

  it('keeps what a row was rendered from while it is live, and gives the same points parsed from SQLite after a reopen', () => {
    const path = join(dir, 'src.db');
    let b = new SqliteBuffer(path, { synchronous: 'normal', ...BOUNDS });
    b.open();
    const ts = Date.UTC(2026, 11, 7);
    const points = new Map<string, CommonPoint>([['t', { name: 't', unit: 'bar' } as unknown as CommonPoint]]);
    const readings: Reading[] = [
      { point: 't', value: Number.NaN, quality: 'good' },
      { point: 'u', value: 2.5, quality: 'bad', reason: 'range' },
    ];
    b.append([...encodePollReadings('d1', 'tcp://x', ts, readings, points), sample('p', -0)]);
    const live = b.view('mqtt').readRange(0, 10, 10);
    expect(live.map((r) => r.source !== undefined)).toEqual([true, true]);
    const fromLive = live.map(rowPoints);
    b.close();
    b = new SqliteBuffer(path, { synchronous: 'normal', ...BOUNDS });
    b.open();
    const stored = b.view('mqtt').readRange(0, 10, 10);
    expect(stored.map((r) => r.source)).toEqual([undefined, undefined]);
    expect(stored.map(rowPoints)).toEqual(fromLive);
    expect(fromLive[0]).toEqual([
      { point: 't', value: null, quality: 'good', unit: 'bar', channel: 'tcp://x' },
      { point: 'u', value: 2.5, quality: 'bad', reason: 'range', channel: 'tcp://x' },
    ]);
    expect(fromLive[1]).toEqual([{ point: 'p', value: 0, quality: 'good', channel: 'tcp://x' }]);
    b.close();
  });
});
