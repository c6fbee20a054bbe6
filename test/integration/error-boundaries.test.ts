// Error boundaries (issue 15): a poll group that throws, a buffer that refuses acknowledgements
// and appends (another process holds its write lock) and an inference worker that dies. The
// daemon keeps running, the fault shows on /healthz, /metrics and the retained status, and data
// keeps flowing for the rest — and nothing is lost silently.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DRIVERS } from '../../drivers/registry.js';
import type { Driver, DriverSpec } from '../../src/core/driver.js';
import { InferenceStage } from '../../src/inference/stage.js';
import { writeCell } from '../../simulators/el-camera/index.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { analyse, missing } from '../helpers/delivery.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { elWorkdir } from '../helpers/el-workdir.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';
import pino from 'pino';

const root = join(import.meta.dirname, '../..');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plc(): Promise<ModbusSimulator> {
  const sim = await startSim({
    registers: [0, 1].map((address) => ({
      area: 'holding' as const,
      address,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  cleanups.push(() => sim.stop());
  return sim;
}

async function broker(): Promise<Mosquitto> {
  const b = await startMosquitto();
  cleanups.push(() => b.stop());
  return b;
}

async function subscriber(b: Mosquitto, topic: string): Promise<Subscriber> {
  const s = await Subscriber.connect(b, topic);
  cleanups.push(() => s.close());
  return s;
}

function gateway(yaml: string, devs: string, deps: Parameters<typeof makeGateway>[4] = {}): TestGateway {
  const tg = makeGateway(yaml, devs, undefined, undefined, deps);
  cleanups.push(() => tg.cleanup());
  return tg;
}

const device = (name: string, sim: ModbusSimulator, intervalMs: number) =>
  `  - name: ${name}\n    driver: modbus_tcp\n    poll_interval_ms: ${intervalMs}\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n      - { name: a, address: 0 }\n      - { name: b, address: 1 }\n`;

async function get(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return res.text();
}

const faults = (text: string, component: string) =>
  Number(new RegExp(`^edgeferry_faults_total\\{component="${component}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);

describe('error boundaries', () => {
  it('a poll group that throws is counted and shown as degraded; the other devices keep flowing and it recovers', async () => {
    const b = await broker();
    const sim = await plc();
    const sub = await subscriber(b, 's/g/#');
    // The Modbus driver as a buggy plugin would be for one device: its read returns no list.
    let broken = true;
    const modbus = DRIVERS.find((d) => d.type === 'modbus_tcp')!;
    const buggy: DriverSpec = {
      ...modbus,
      create: (dev, ctx) => {
        const real = modbus.create(dev, ctx);
        if (dev.name !== 'buggy') return real;
        return Object.assign(Object.create(real) as Driver, {
          read: async (...args: Parameters<Driver['read']>) => (broken ? (null as never) : real.read(...args)),
        });
      },
    };
    const drivers = DRIVERS.map((d) => (d.type === 'modbus_tcp' ? buggy : d));
    const tg = gateway(gatewayYaml(b), `version: 1\ndevices:\n${device('good', sim, 50)}${device('buggy', sim, 50)}`, { drivers });
    await tg.gw.start();
    const status = await sub.waitFor((m) => m.topic === 's/g/status' && m.json.health === 'degraded', 15_000, 'a degraded gateway status');
    expect(Object.keys(status.json.degraded as object)).toEqual(['poll buggy@50ms']);
    expect(String((status.json.degraded as Record<string, string>)['poll buggy@50ms'])).toMatch(/null/);
    // The good device goes on being polled and published while the buggy one throws on every poll.
    const before = sub.messages.filter((m) => m.topic === 's/g/good/a').length;
    await sub.waitFor(() => sub.messages.filter((m) => m.topic === 's/g/good/a').length >= before + 20, 15_000, '20 more samples of the good device');
    const healthz = JSON.parse(await get(tg.gw.healthPort!, '/healthz')) as { health: string; degraded: Record<string, string> };
    expect(healthz.health).toBe('degraded');
    expect(healthz.degraded['poll buggy@50ms']).toMatch(/null/);
    expect(faults(await get(tg.gw.healthPort!, '/metrics'), 'poll')).toBeGreaterThan(5);
    // Fixed (say, the device answered again): the status is up by itself.
    broken = false;
    await sub.waitFor((m) => m.topic === 's/g/status' && m.json.health === 'up', 15_000, 'the gateway status back to up');
    await sub.waitFor((m) => m.topic === 's/g/buggy/a', 15_000, 'data of the recovered device');
    expect(tg.gw.health).toEqual({ health: 'up', degraded: {} });
  });

  it('acknowledgements and appends the buffer refuses (its write lock held elsewhere) degrade it; nothing is lost and it recovers', async () => {
    const b = await broker();
    const sim = await plc();
    const sub = await subscriber(b, 's/g/#');
    const tg = gateway(gatewayYaml(b), `version: 1\ndevices:\n${device('plc', sim, 50)}`);
    await tg.gw.start();
    await sub.waitFor((m) => m.topic === 's/g/plc/a' && (m.json.seq as number) > 40, 15_000, 'data flowing');
    // An operator's sqlite3 shell opens a write transaction on the live buffer and leaves it open.
    const other = new Database(join(tg.dir, 'buffer.db'));
    other.exec('BEGIN IMMEDIATE');
    const degraded = await sub.waitFor((m) => m.topic === 's/g/status' && m.json.health === 'degraded', 15_000, 'a degraded status');
    expect(String((degraded.json.degraded as Record<string, string>).buffer)).toMatch(/locked|busy/i);
    await new Promise((r) => setTimeout(r, 1500));
    const metrics = await get(tg.gw.healthPort!, '/metrics');
    expect(faults(metrics, 'publisher')).toBeGreaterThan(0);
    other.exec('ROLLBACK');
    other.close();
    await sub.waitFor((m) => m.topic === 's/g/status' && m.json.health === 'up', 15_000, 'the status back to up');
    const unstored = tg.gw.bufferStats().unstored;
    expect(unstored).toBeGreaterThan(0);
    const last = tg.gw.bufferStats().lastSeq;
    await sub.waitFor((m) => m.topic.startsWith('s/g/plc/') && (m.json.seq as number) >= last + 20, 15_000, 'data after the lock');
    await tg.gw.stop();
    // Every seq is received or named in a data_lost event (the samples refused while locked).
    const isData = (m: Message) => m.topic.startsWith('s/g/plc/');
    const lost = new Set<number>();
    const losses = sub.messages.filter((m) => m.topic === 's/g/events' && m.json.event === 'data_lost');
    for (const l of losses) for (const [x, z] of l.json.ranges as [number, number][]) for (let q = x; q <= z; q++) lost.add(q);
    expect(losses.reduce((n, l) => n + (l.json.count as number), 0)).toBe(unstored);
    const d = analyse(sub.messages, isData);
    const received = new Set(d.bySeq.keys());
    expect(missing(Math.max(...received), received, lost)).toEqual([]);
  });

  it('an inference worker that dies is replaced; its images are tried again and the rest keep being classified', { timeout: 90_000 }, async () => {
    const { work, modelDir, inbox } = elWorkdir('edgeferry-worker-');
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const appended: string[] = [];
    const faultsSeen: string[] = [];
    const statuses: Record<string, unknown>[] = [];
    const stage = new InferenceStage(
      {
        enabled: true,
        model_dir: modelDir,
        inbox,
        extensions: ['png'],
        max_batch: 4,
        max_queue: 100,
        workers: 2,
        threads: 1,
        keep_processed: 100,
        priority: 'normal',
        topic_template: '{site}/{gateway}/el/{station}',
        status_topic: 's/g/el/status',
      } as never,
      {
        log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
        baseDir: work,
        append: (samples) => appended.push(...samples.map((x) => (x.extra as { image: string }).image)),
        status: (p) => statuses.push(p),
        fault: (err) => faultsSeen.push((err as Error).message),
        workerFile: join(root, 'test/fixtures/crashing-worker.mjs'),
      },
    );
    cleanups.push(() => stage.stop());
    // Waiting before the start, so the rescan batches them: the bad image shares a batch with good ones.
    for (let i = 0; i < 6; i++) await writeCell(join(inbox, `ok-${i}.png`), { defect: 'none', seed: i });
    await writeCell(join(inbox, 'crash-1.png'), { defect: 'none', seed: 99 });
    for (let i = 6; i < 12; i++) await writeCell(join(inbox, `ok-${i}.png`), { defect: 'none', seed: i });
    await stage.start();
    const until = Date.now() + 60_000;
    while (readdirSync(join(inbox, 'rejected')).filter((f) => f.endsWith('.png')).length < 1 || appended.length < 12) {
      if (Date.now() > until) throw new Error(`not settled: ${appended.length} classified, ${stage.counters.workerRestarts} restarts`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await stage.whenIdle();
    // Every good image classified exactly once the batch it shared with the bad one was retried.
    expect(new Set(appended)).toEqual(new Set(Array.from({ length: 12 }, (_, i) => `ok-${i}.png`)));
    expect(readdirSync(join(inbox, 'rejected'))).toEqual(expect.arrayContaining(['crash-1.png', 'crash-1.png.reason.txt']));
    // Tried twice (in its batch, then alone), so two workers died and were replaced.
    expect(stage.counters.workerRestarts).toBe(2);
    expect(faultsSeen.some((f) => /worker exited/.test(f))).toBe(true);
    expect(statuses.at(-1)).toMatchObject({ state: 'serving', worker_restarts: stage.counters.workerRestarts });
    // Still serving after the restarts.
    await writeCell(join(inbox, 'ok-late.png'), { defect: 'crack', seed: 42 });
    const late = Date.now() + 30_000;
    while (!appended.includes('ok-late.png')) {
      if (Date.now() > late) throw new Error('no verdict after the worker restarts');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
