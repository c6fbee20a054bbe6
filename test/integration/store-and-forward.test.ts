// Store-and-forward against a real mosquitto: outages, the byte cap with priorities, poison
// messages and a damaged buffer file. Each test checks every sequence number.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { analyse, bufferFile, missing } from '../helpers/delivery.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plc(points: number): Promise<ModbusSimulator> {
  const sim = await startSim({
    registers: Array.from({ length: points }, (_, i) => ({
      area: 'holding' as const,
      address: i,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  cleanups.push(() => sim.stop());
  return sim;
}

function devices(sim: ModbusSimulator, points: { name: string; priority?: string }[], intervalMs: number): string {
  const list = points.map((p, i) => `      - { name: ${p.name}, address: ${i}${p.priority ? `, priority: ${p.priority}` : ''} }`).join('\n');
  return `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: ${intervalMs}\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n${list}\n`;
}

async function broker(opts: Parameters<typeof startMosquitto>[0] = {}): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  cleanups.push(() => b.stop());
  return b;
}

async function subscriber(b: Mosquitto, topic: string, persistent = false): Promise<Subscriber> {
  const s = await Subscriber.connect(b, topic, persistent);
  cleanups.push(() => s.close());
  return s;
}

function gateway(yaml: string, devs: string): TestGateway {
  const tg = makeGateway(yaml, devs);
  cleanups.push(() => tg.cleanup());
  return tg;
}

const isData = (m: Message) => m.topic.startsWith('s/g/plc/');
const stoppedTg = async (tg: TestGateway) => {
  await tg.gw.stop();
  return bufferFile(join(tg.dir, 'buffer.db'));
};

describe('store-and-forward', () => {
  it('delivers every sample across a broker outage, in order per point, duplicates only from the in-flight window', async () => {
    const b = await broker({ persistence: true });
    const sim = await plc(5);
    const sub = await subscriber(b, 's/g/plc/#', true);
    const tg = gateway(
      gatewayYaml(b, { mqtt: '  max_inflight: 50' }),
      devices(
        sim,
        [0, 1, 2, 3, 4].map((i) => ({ name: `p${i}` })),
        50,
      ),
    );
    await tg.gw.start();
    await sub.waitFor((m) => isData(m) && (m.json.seq as number) > 200, 15_000, '200 samples before the outage');

    await b.kill();
    // Keep it down while samples pile up in the buffer.
    const depthDuringOutage = await waitFor(
      () => tg.gw.bufferStats().depth,
      (d) => d >= 300,
      15_000,
    );
    await b.restart();
    const lastDuringOutage = tg.gw.bufferStats().lastSeq;
    await sub.waitFor((m) => isData(m) && (m.json.seq as number) >= lastDuringOutage + 100, 30_000, 'live data after the backlog');

    const file = await stoppedTg(tg);
    const d = analyse(sub.messages, isData);
    expect(missing(file.lastSeq, new Set(d.bySeq.keys()), file.stored)).toEqual([]);
    expect(d.outOfOrder).toEqual([]);
    expect(d.duplicates).toBeLessThanOrEqual(50); // at most one in-flight window resent
    expect([...d.bySeq.values()].some((m) => m.json.historical === true)).toBe(true);
    expect(depthDuringOutage).toBeGreaterThanOrEqual(300);
  });

  it('with payload: poll, sends one message per poll (split by priority) on the device topic, and loses none across an outage', async () => {
    const b = await broker({ persistence: true });
    const sim = await plc(5);
    const sub = await subscriber(b, 's/g/#', true);
    const pts = [{ name: 'p0', priority: 'critical' }, ...[1, 2, 3, 4].map((i) => ({ name: `p${i}` }))];
    const tg = gateway(gatewayYaml(b, { mqtt: '  payload: poll\n  max_inflight: 20' }), devices(sim, pts, 50));
    await tg.gw.start();
    const isPoll = (m: Message) => m.topic === 's/g/plc';
    await sub.waitFor((m) => isPoll(m) && (m.json.seq as number) > 60, 15_000, '60 poll messages before the outage');

    await b.kill();
    await waitFor(
      () => tg.gw.bufferStats().depth,
      (d) => d >= 60,
      15_000,
    );
    await b.restart();
    const lastDuringOutage = tg.gw.bufferStats().lastSeq;
    await sub.waitFor((m) => isPoll(m) && (m.json.seq as number) >= lastDuringOutage + 20, 30_000, 'live poll messages after the backlog');

    const file = await stoppedTg(tg);
    const d = analyse(sub.messages, isPoll);
    expect(missing(file.lastSeq, new Set(d.bySeq.keys()), file.stored)).toEqual([]);
    expect(d.outOfOrder).toEqual([]);
    // No per-point messages in this mode.
    expect(sub.messages.filter((m) => m.topic.startsWith('s/g/plc/'))).toEqual([]);
    const polls = [...d.bySeq.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(
        ([, m]) => m.json as { ts: string; device: string; channel: string; points: Record<string, { value: number; quality: string }>; historical?: boolean },
      );
    // The critical point travels in a message of its own (evicted last at the cap), the rest together.
    for (const p of polls) {
      expect(p.device).toBe('plc');
      expect(p.channel).toBe(`tcp://127.0.0.1:${sim.port}`);
      expect(Number.isFinite(Date.parse(p.ts))).toBe(true);
      expect([['p0'], ['p1', 'p2', 'p3', 'p4']]).toContainEqual(Object.keys(p.points));
      for (const v of Object.values(p.points)) expect(v.quality).toBe('good');
    }
    // Every point's values in seq order never go back (the simulator counts up, wrapping at 60000).
    for (const name of ['p0', 'p3']) {
      const values = polls.filter((p) => p.points[name]).map((p) => p.points[name]!.value);
      expect(values.length).toBeGreaterThan(50);
      expect(values.every((v, i) => i === 0 || v >= values[i - 1]! || values[i - 1]! > 59000)).toBe(true);
    }
    expect(polls.some((p) => p.historical === true)).toBe(true);
  });

  it('with replay_order live_first, sends live data at once and the flagged backlog behind it at replay_rate', async () => {
    const b = await broker({ persistence: true });
    const sim = await plc(5);
    const sub = await subscriber(b, 's/g/plc/#', true);
    const tg = gateway(
      gatewayYaml(b, { buffer: '  replay_order: live_first\n  replay_rate: 100' }),
      devices(
        sim,
        [0, 1, 2, 3, 4].map((i) => ({ name: `p${i}` })),
        50,
      ),
    );
    await tg.gw.start();
    await sub.waitFor((m) => isData(m), 15_000, 'first data');
    await b.kill();
    await waitFor(
      () => tg.gw.bufferStats().depth,
      (d) => d >= 300,
      15_000,
    );
    const backlogEnd = tg.gw.bufferStats().lastSeq;
    await b.restart();
    // 300 backlog samples at 100/s take about 3 s; live samples must not wait for them.
    const live = await sub.waitFor((m) => isData(m) && (m.json.seq as number) > backlogEnd + 20, 15_000, 'live data');
    const lastHistorical = await sub.waitFor((m) => isData(m) && m.json.seq === backlogEnd, 15_000, 'end of the backlog');
    expect(lastHistorical.json.historical).toBe(true);
    expect(live.json.historical).toBeUndefined();
    expect(live.at).toBeLessThan(lastHistorical.at);
    const file = await stoppedTg(tg);
    expect(missing(file.lastSeq, new Set(analyse(sub.messages, isData).bySeq.keys()), file.stored)).toEqual([]);
  });

  it('evicts the oldest bulk samples first at the byte cap, publishes exact loss counts, and keeps critical points complete', async () => {
    const b = await broker({ persistence: true });
    const sim = await plc(20);
    const sub = await subscriber(b, 's/g/#', true);
    await b.kill();
    const points = [{ name: 'alarm', priority: 'critical' }, ...Array.from({ length: 19 }, (_, i) => ({ name: `bulk${i}`, priority: 'bulk' }))];
    const tg = gateway(gatewayYaml(b, { buffer: '  max_bytes: 1048576' }), devices(sim, points, 20));
    await tg.gw.start();
    await waitFor(
      () => tg.gw.bufferStats().evicted,
      (n) => n >= 2000,
      60_000,
    );
    await b.restart();
    const lastSeq = tg.gw.bufferStats().lastSeq;
    await sub.waitFor((m) => isData(m) && (m.json.seq as number) >= lastSeq, 60_000, 'the backlog to drain');

    const file = await stoppedTg(tg);
    // Evictions can happen until the very end (samples keep coming while the backlog drains), and
    // their events go out during the stop: wait until every event not left in the file has arrived.
    const lossCount = (ms: Message[]) =>
      ms.filter((m) => m.topic === 's/g/events' && m.json.event === 'data_lost').reduce((n, m) => n + (m.json.count as number), 0);
    const stillPending = file.pendingEvents.filter((e) => e.event === 'data_lost').reduce((n, e) => n + (e.count as number), 0);
    await sub.waitFor(() => lossCount(sub.messages) + stillPending >= file.evicted, 15_000, 'all loss events');
    const evictedInFile = file.evicted - stillPending;
    const losses = sub.messages.filter((m) => m.topic === 's/g/events' && m.json.event === 'data_lost');
    const lostSeqs = new Set<number>();
    for (const l of losses) for (const [a, z] of l.json.ranges as [number, number][]) for (let s = a; s <= z; s++) lostSeqs.add(s);
    const counted = losses.reduce((n, l) => n + (l.json.count as number), 0);
    expect(counted).toBe(evictedInFile);
    expect(lostSeqs.size).toBe(counted);
    expect(losses.every((l) => (l.json.by_priority as Record<string, number>).critical === undefined)).toBe(true);

    const d = analyse(sub.messages, isData);
    const received = new Set(d.bySeq.keys());
    expect([...lostSeqs].filter((s) => received.has(s))).toEqual([]);
    const pendingSeqs = new Set<number>();
    for (const e of file.pendingEvents) for (const [a, z] of (e.ranges as [number, number][]) ?? []) for (let q = a; q <= z; q++) pendingSeqs.add(q);
    expect(missing(file.lastSeq, received, lostSeqs, pendingSeqs, file.stored)).toEqual([]);
    // Every alarm sample made it: their poll times have no hole longer than a few intervals.
    const alarms = [...d.bySeq.values()]
      .filter((m) => m.topic === 's/g/plc/alarm')
      .map((m) => Date.parse(m.json.ts as string))
      .sort((x, y) => x - y);
    const gaps = alarms.slice(1).map((t, i) => t - alarms[i]!);
    expect(Math.max(...gaps)).toBeLessThan(1000);
  });

  it('dead-letters a message the broker refuses for good and moves on', async () => {
    const b = await broker({
      acl: `user edgeferry-test-gateway\ntopic read s/g/#\ntopic write s/g/status\ntopic write s/g/status/#\ntopic write s/g/events\ntopic write s/g/plc/ok\n`,
    });
    const sim = await plc(2);
    const sub = await subscriber(b, 's/g/#');
    const tg = gateway(gatewayYaml(b), devices(sim, [{ name: 'ok' }, { name: 'forbidden' }], 100));
    await tg.gw.start();
    await waitFor(
      () => tg.gw.bufferStats().deadLetters,
      (n) => n >= 3,
      15_000,
    );
    const after = tg.gw.bufferStats().lastSeq;
    await sub.waitFor((m) => m.topic === 's/g/plc/ok' && (m.json.seq as number) > after, 10_000, 'data after the refused messages');
    const file = await stoppedTg(tg);
    expect(file.deadLetters.length).toBeGreaterThanOrEqual(3);
    expect(file.deadLetters[0]!.reason).toMatch(/Not authorized.*0x87/);
    expect(sub.messages.some((m) => m.topic === 's/g/plc/forbidden')).toBe(false);
  });

  it('moves a damaged buffer file aside, starts fresh with higher seqs, and says so on the events topic', async () => {
    const b = await broker();
    const sim = await plc(1);
    const sub = await subscriber(b, 's/g/#');
    const tg = gateway(gatewayYaml(b), devices(sim, [{ name: 'p0' }], 100));
    // Garbage where the database should be: a torn write, a bad SD card.
    writeFileSync(join(tg.dir, 'buffer.db'), Buffer.alloc(64 * 1024, 0x5a));
    await tg.gw.start();
    const ev = await sub.waitFor((m) => m.topic === 's/g/events' && m.json.event === 'buffer_recovered', 15_000, 'recovery event');
    expect(String(ev.json.moved_to)).toMatch(/buffer\.db\.corrupt-/);
    const data = await sub.waitFor((m) => m.topic === 's/g/plc/p0', 10_000, 'data after recovery');
    expect(data.json.seq as number).toBeGreaterThan(1e12);
  });
});

/** Polls a cheap in-process reading until it satisfies `ok`; for states that have no event. */
async function waitFor<T>(read: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms (last value ${String(v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
