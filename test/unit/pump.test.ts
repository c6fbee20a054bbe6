// The pump on one connection, paused and started again (a Sparkplug birth in the middle of a
// backlog replay): nothing it already handed out is sent again, and its in-flight count never goes
// below zero when the held-back publish callbacks land. QoS 0 rows written are deleted only after
// a round trip (UNSUBSCRIBE → UNSUBACK) proved the broker read them; a connection cut before that
// sends them again. The buffer is the real SQLite one; the
// MQTT client is a stand-in that holds every publish callback until the test lets it go — a real
// broker answers QoS 0 at once, so rows in flight across a pause cannot be made on demand.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import type { Sample } from '../../src/core/sample.js';
import { createMetrics } from '../../src/health/metrics.js';
import { BufferPump } from '../../src/publish/pump.js';
import { DataTopics } from '../../src/publish/topics.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(rows: number, maxInflight: number) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-pump-'));
  dirs.push(dir);
  const buffer = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 30, maxAgeS: 86_400 });
  buffer.open();
  const samples: Sample[] = Array.from({ length: rows }, (_, i) => ({ ts: Date.now() + i, device: 'd', point: 'p', value: i, quality: 'good', channel: 'x' }));
  buffer.append(samples);
  const metrics = createMetrics();
  const pump = new BufferPump(
    { qos: 0, maxInflight, batchSize: 100, replayRate: 1_000_000, replayOrder: 'strict', eventsTopic: 's/g/events', confirmTopic: 's/g/events/confirm' },
    {
      buffer: buffer.view('mqtt'),
      topics: new DataTopics(
        { point: '{site}/{gateway}/{device}/{point}', poll: '{site}/{gateway}/{device}', el: '{site}/{gateway}/el/{device}' },
        { site: 's', gateway: 'g' },
      ),
      log: pino({ level: 'silent' }),
      metrics,
      fault: (err) => {
        throw err;
      },
    },
  );
  const sent: number[] = [];
  const held: ((err?: Error) => void)[] = [];
  /** Round trips asked for (UNSUBSCRIBE of the confirm topic); answered at once unless `holdRoundTrips`. */
  const roundTrips: (() => void)[] = [];
  const opts = { holdRoundTrips: false };
  const client = {
    stream: {},
    publish: (_topic: string, payload: string, _opts: unknown, cb: (err?: Error) => void) => {
      sent.push(Number(JSON.parse(payload).seq));
      held.push(cb);
    },
    unsubscribe: (topic: string, cb: () => void) => {
      expect(topic).toBe('s/g/events/confirm');
      if (opts.holdRoundTrips) roundTrips.push(cb);
      else cb();
    },
  } as unknown as MqttClient;
  const release = () => {
    let lowest = Infinity;
    while (held.length) {
      held.shift()!();
      lowest = Math.min(lowest, pump.inFlight);
    }
    return lowest;
  };
  return { buffer, pump, client, sent, release, roundTrips, opts, close: () => (pump.close(), buffer.close()) };
}

describe('buffer pump', () => {
  it('paused and started again on the same connection, goes on where it was: nothing sent twice, in flight never below 0', async () => {
    const { pump, client, sent, release, buffer, close } = setup(300, 100);
    pump.start(client);
    expect(sent).toHaveLength(100);
    expect(pump.inFlight).toBe(100);
    // A birth: pause, the birth messages, start again — with 100 rows still in flight.
    pump.pause();
    pump.start(client);
    expect(sent).toHaveLength(100);
    let lowest = Infinity;
    while (sent.length < 300 || pump.inFlight > 0) lowest = Math.min(lowest, release());
    expect(lowest).toBeGreaterThanOrEqual(0);
    expect(new Set(sent).size).toBe(sent.length);
    expect(sent).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    // Every row acknowledged: the buffer is empty.
    expect(await pump.drain(1000)).toBe(true);
    expect(buffer.depth()).toBe(0);
    close();
  });

  it('a new connection starts over from the oldest unacknowledged row (at-least-once across connections)', () => {
    const { pump, client, sent, close } = setup(50, 100);
    pump.start(client);
    expect(sent).toHaveLength(50);
    pump.detach();
    const other = { ...client } as MqttClient;
    pump.start(other);
    expect(sent.slice(50)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    close();
  });

  it('QoS 0: rows written stay in the buffer until a round trip confirms them; a connection cut before it sends them again', async () => {
    const { pump, client, sent, release, roundTrips, opts, buffer, close } = setup(40, 100);
    opts.holdRoundTrips = true;
    pump.start(client);
    release(); // every row written to the connection (QoS 0: no PUBACK)
    expect(sent).toHaveLength(40);
    await expect.poll(() => roundTrips.length).toBe(1); // one round trip for the lot
    expect(buffer.depth()).toBe(40);
    // The connection is cut before the broker answered: nothing is deleted, all is sent again.
    pump.detach();
    roundTrips.shift()!(); // a late answer on the old connection changes nothing
    expect(buffer.depth()).toBe(40);
    const other = { ...client } as MqttClient;
    pump.start(other);
    release();
    expect(sent.slice(40)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    await expect.poll(() => roundTrips.length).toBe(1);
    roundTrips.shift()!();
    expect(buffer.depth()).toBe(0);
    close();
  });
});
