// One durable cursor per output in the buffer (src/buffer/output-slots.ts): a row leaves only when
// every output has it, each output reads only its own rows, a restart or a reload that adds or
// removes an output keeps every other cursor, and losses name the outputs that had not received them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteBuffer, type BufferOptions } from '../../src/buffer/sqlite-buffer.js';
import type { Sample } from '../../src/core/sample.js';

const sample = (i: number, priority: Sample['priority'] = 'normal'): Sample => ({
  ts: Date.UTC(2026, 0, 1) + i,
  device: 'd1',
  point: `p${i}`,
  value: i,
  quality: 'good',
  channel: 'tcp://x',
  priority,
});
const seqs = (rows: { seq: number }[]) => rows.map((r) => r.seq);

describe('buffer with several outputs', () => {
  let dir: string;
  let events: Record<string, unknown>[];
  const open = (outputs: string[], extra: Partial<BufferOptions> = {}) => {
    const b = new SqliteBuffer(join(dir, 'b.db'), {
      synchronous: 'normal',
      maxBytes: 1 << 30,
      maxAgeS: 86_400,
      outputs,
      onEvent: (e) => events.push(e),
      ...extra,
    });
    b.open();
    return b;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeferry-bufout-'));
    events = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('deletes a row only once every output acknowledged it; each output reads only what it has not acknowledged', () => {
    const b = open(['mqtt', 'influxdb']);
    const mqtt = b.view('mqtt');
    const influx = b.view('influxdb');
    b.append([1, 2, 3, 4].map((i) => sample(i)));
    mqtt.accept([1, 2, 3]);
    expect(b.depth()).toBe(4); // InfluxDB has none of them yet
    expect(seqs(mqtt.readRange(0, Infinity, 10))).toEqual([4]);
    expect(seqs(influx.readRange(0, Infinity, 10))).toEqual([1, 2, 3, 4]);
    influx.accept([2, 3]);
    expect(seqs(b.readRange(0, Infinity, 10))).toEqual([1, 4]);
    expect(seqs(influx.readRange(0, Infinity, 10))).toEqual([1, 4]);
    expect(mqtt.depth()).toBe(1);
    expect(influx.depth()).toBe(2);
    expect(b.outputBacklogs()).toMatchObject({ mqtt: { backlog: 1, oldestTs: sample(4).ts }, influxdb: { backlog: 2, oldestTs: sample(1).ts } });
    b.close();
  });

  it('after a restart each output starts at its own oldest row, whatever the other acknowledged', () => {
    let b = open(['mqtt', 'influxdb']);
    b.append(Array.from({ length: 10 }, (_, i) => sample(i)));
    b.view('mqtt').accept([1, 2, 3, 4, 5, 6, 7, 8]);
    b.view('influxdb').accept([1, 2]);
    b.close();
    b = open(['mqtt', 'influxdb']);
    expect(b.view('mqtt').start()).toBe(8);
    expect(b.view('influxdb').start()).toBe(2);
    expect(seqs(b.view('mqtt').readRange(b.view('mqtt').start(), Infinity, 100))).toEqual([9, 10]);
    expect(b.depth()).toBe(8);
    b.close();
  });

  it('adding an output keeps the others where they were; removing one gives its rows up with an event that counts them', () => {
    let b = open(['mqtt']);
    b.append([1, 2, 3].map((i) => sample(i)));
    b.accept([1]); // one output: deleted at once
    b.close();
    b = open(['mqtt', 'influxdb']);
    expect(events).toContainEqual({ event: 'output_added', output: 'influxdb' });
    // Rows from before it was added were taken for MQTT alone; InfluxDB gets what comes next.
    expect(seqs(b.view('influxdb').readRange(0, Infinity, 10))).toEqual([]);
    expect(seqs(b.view('mqtt').readRange(0, Infinity, 10))).toEqual([2, 3]);
    b.append([4, 5].map((i) => sample(i)));
    b.view('mqtt').accept([2, 3, 4]);
    expect(seqs(b.view('influxdb').readRange(0, Infinity, 10))).toEqual([4, 5]);
    b.close();
    b = open(['mqtt']);
    expect(events).toContainEqual({ event: 'output_removed', output: 'influxdb', undelivered: 1 });
    expect(seqs(b.readRange(0, Infinity, 10))).toEqual([5]); // MQTT's own row stays
    b.accept([5]);
    expect(b.depth()).toBe(0);
    b.close();
  });

  it('outputs changed while open (a reload) keep the other cursors, as a restart does', () => {
    const b = open(['mqtt']);
    b.append([1, 2, 3].map((i) => sample(i)));
    b.accept([1]);
    b.setOutputs(['mqtt', 'influxdb']);
    expect(b.outputs).toEqual(['mqtt', 'influxdb']);
    b.append([4].map((i) => sample(i)));
    expect(seqs(b.view('mqtt').readRange(0, Infinity, 10))).toEqual([2, 3, 4]);
    expect(seqs(b.view('influxdb').readRange(0, Infinity, 10))).toEqual([4]);
    b.view('mqtt').accept([2, 3, 4]);
    expect(seqs(b.readRange(0, Infinity, 10))).toEqual([4]);
    b.setOutputs(['mqtt']);
    expect(b.depth()).toBe(0);
    expect(events.filter((e) => String(e.event).startsWith('output_'))).toEqual([
      { event: 'output_added', output: 'influxdb' },
      { event: 'output_removed', output: 'influxdb', undelivered: 1 },
    ]);
    b.close();
  });

  it('a row refused by one output is dead-lettered for it and still delivered to the other', () => {
    const b = open(['mqtt', 'influxdb']);
    b.append([1, 2].map((i) => sample(i)));
    b.view('influxdb').reject([1], 'HTTP 400: field type conflict');
    expect(seqs(b.view('influxdb').readRange(0, Infinity, 10))).toEqual([2]);
    expect(seqs(b.view('mqtt').readRange(0, Infinity, 10))).toEqual([1, 2]);
    expect(b.stats().deadLetters).toBe(1);
    b.view('mqtt').accept([1]);
    expect(seqs(b.readRange(0, Infinity, 10))).toEqual([2]);
    b.close();
  });

  it('eviction at the cap names the outputs that had not received the evicted rows, and spares what an output has in flight', () => {
    const b = open(['mqtt', 'influxdb'], { maxBytes: 1 << 20 });
    const big = 'x'.repeat(2000);
    let i = 0;
    const batch = () => Array.from({ length: 50 }, () => ({ ...sample(i++, 'bulk'), value: big }));
    b.append(batch());
    b.view('mqtt').accept(Array.from({ length: 50 }, (_, k) => k + 1)); // MQTT has the first 50
    b.view('influxdb').protect([[0, 10]]); // InfluxDB is writing seqs up to 10
    for (let k = 0; k < 20; k++) b.append(batch());
    const lost = events.filter((e) => e.event === 'data_lost');
    expect(lost.length).toBeGreaterThan(0);
    // The first evicted rows were MQTT's already: only InfluxDB had not received them.
    expect(lost[0]).toMatchObject({ reason: 'max_bytes', outputs: ['influxdb'] });
    const left = seqs(b.readRange(0, Infinity, 100_000));
    expect(left.slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    b.close();
  });

  it('with one output nothing changes: an acknowledgement deletes and loss events name no output', () => {
    const b = open(['mqtt'], { maxBytes: 1 << 20 });
    b.append([1, 2].map((i) => sample(i)));
    const v = b.view('mqtt');
    expect(v.start()).toBe(0);
    v.accept([1]);
    expect(seqs(b.readRange(0, Infinity, 10))).toEqual([2]);
    expect(() => b.view('influxdb')).toThrow(/no output "influxdb"/);
    b.close();
  });
});
