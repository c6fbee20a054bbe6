// The brokers plants scale out to, as Debian 12 ships them, started here on loopback with mutual
// TLS: NATS 2.9 (JetStream + MQTT) and RabbitMQ 3.10 (rabbitmq_mqtt). Both speak MQTT 3.1.1 only.
// With the defaults (no mqtt.protocol_version) the gateway offers MQTT 5, is refused — NATS answers
// "unacceptable protocol version", RabbitMQ closes before any CONNACK — falls back to 3.1.1 once,
// says so once, and delivers: data, the retained statuses, its Will, a command. Told to speak MQTT 5
// only, it reports the broker as refusing (with the broker's answer), never as unreachable.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startNats, startRabbitMq, type TestBroker } from '../../simulators/mqtt-broker/other-brokers.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { POISON_ALONE, POISON_SUSPECT } from '../../src/publish/pump.js';
import { Commander } from '../helpers/commander.js';
import { analyse, bufferFile, missing } from '../helpers/delivery.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

/** A pino logger whose lines (parsed) a test can read. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: pino({ level: 'info' }, stream) };
}

const devices = (port: number) =>
  `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${port} }\n    points:\n      - { name: v, address: 0 }\n      - { name: sp, address: 1, writable: true }\n`;

const isData = (m: Message) => /^s\/g\/plc\/[^/]+$/.test(m.topic) && typeof m.json.seq === 'number';

/**
 * Data through a broker outage (`down`: the broker killed, 30 s, started again, or one node of a
 * cluster killed) to a persistent consumer: the gateway stops, and every seq it ever assigned must
 * have arrived. Returns the figures for the log line.
 */
async function lossAcross(broker: TestBroker, consumerBroker: TestBroker, plcPort: number, down: () => Promise<void>) {
  const sub = await Subscriber.connect(consumerBroker, 's/g/plc/+', true, 4);
  const tg = makeGateway(gatewayYaml(broker), devices(plcPort).replace('poll_interval_ms: 200', 'poll_interval_ms: 100'));
  try {
    await tg.gw.start();
    await sub.waitFor(() => sub.messages.filter(isData).length >= 40, 30_000, '40 samples before the outage');
    await down();
    const seen = () => new Set(sub.messages.filter(isData).map((m) => m.json.seq as number));
    const before = bufferFile(join(tg.dir, 'buffer.db')).lastSeq;
    await sub.waitFor(() => seen().size >= before + 40, 120_000, 'the backlog and 40 more samples after the outage');
    await tg.gw.stop();
    const file = bufferFile(join(tg.dir, 'buffer.db'));
    // What the stop's drain sent may still be on its way; what it did not send stays in the buffer
    // for the next start (not lost).
    await sub.waitFor(() => missing(file.lastSeq, seen(), file.stored).length === 0, 30_000, `every seq up to ${file.lastSeq}`).catch(() => undefined);
    const d = analyse(sub.messages, isData);
    return {
      produced: file.lastSeq,
      received: seen().size,
      buffered: file.stored.size,
      missing: missing(file.lastSeq, seen(), file.stored),
      duplicates: d.duplicates,
      outOfOrder: d.outOfOrder,
    };
  } finally {
    await tg.cleanup();
    await sub.close();
  }
}

const BROKERS: [string, () => Promise<TestBroker>, string][] = [
  ['NATS 2.9', () => startNats(), 'Connection refused: Unacceptable protocol version'],
  ['RabbitMQ 3.10', () => startRabbitMq(), 'the broker closed the connection before any CONNACK'],
];

describe.each(BROKERS)('%s', (_name, startBroker, mqtt5Answer) => {
  let broker: TestBroker;
  let plc: ModbusSimulator;
  beforeAll(async () => {
    [broker, plc] = await Promise.all([startBroker(), startSim({ registers: [{ area: 'holding', address: 0, value: 7 }] })]);
  }, 120_000);
  afterAll(async () => {
    await plc?.stop();
    await broker?.stop();
  }, 60_000);

  it('with the defaults: falls back to MQTT 3.1.1 once, says so once, and delivers data, retained statuses and a command result', async () => {
    const { lines, log } = capturedLog();
    // Retained messages: RabbitMQ 3.10 sends them only to subscriptions of the exact topic.
    const status = await Subscriber.connect(broker, 's/g/status', false, 4);
    const devStatus = await Subscriber.connect(broker, 's/g/status/plc', false, 4);
    const data = await Subscriber.connect(broker, 's/g/plc/+', false, 4);
    const tg: TestGateway = makeGateway(gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }), devices(plc.port), log);
    try {
      await tg.gw.start();
      await data.waitFor((m) => m.topic === 's/g/plc/v' && m.json.value === 7, 30_000, 'a sample');
      await status.waitFor((m) => m.json.state === 'online', 15_000, 'the retained gateway status');
      expect(status.messages.find((m) => m.json.state === 'online')!.json.mqtt_protocol).toBe('MQTT 3.1.1');
      await devStatus.waitFor((m) => m.json.state === 'up', 15_000, 'the retained device status');

      // A command, over 3.1.1 (no expiry, no user properties there), once the gateway has subscribed.
      await tg.gw.commandsReady();
      const cmd = await Commander.connect(broker, undefined, 4);
      try {
        const id = await cmd.send('plc', 'sp', { value: 42 });
        expect((await cmd.result(id, 20_000)).json).toMatchObject({ id, outcome: 'ok' });
      } finally {
        await cmd.close();
      }

      const fallback = lines.filter((l) => String(l.msg).startsWith('the broker does not accept MQTT 5'));
      expect(fallback).toHaveLength(1);
      expect(fallback[0]).toMatchObject({ answer: expect.stringContaining(mqtt5Answer) });
      const health = (await (await fetch(`http://127.0.0.1:${tg.gw.healthPort}/healthz`)).json()) as { mqtt: Record<string, unknown> };
      expect(health.mqtt).toMatchObject({ state: 'connected', protocol_version: 4, protocol: 'MQTT 3.1.1', fallback: expect.stringContaining(mqtt5Answer) });
    } finally {
      await tg.cleanup();
      await Promise.all([status.close(), devStatus.close(), data.close()]);
    }
  }, 90_000);

  it("names with a '.' (points from OPC UA browse paths, a device named after its IP endpoint): delivered under the documented topics, commanded there, no stall", async () => {
    const dotted = `version: 1\ndevices:\n  - name: 10.0.0.5\n    driver: modbus_tcp\n    poll_interval_ms: 100\n    connection: { host: 127.0.0.1, port: ${plc.port} }\n    points:\n      - { name: Line1.Level, address: 0 }\n      - { name: Line1.Setpoint, address: 1, writable: true }\n`;
    // docs/brokers.md: with the default mqtt.topic_dot '_', a '.' in a name is '_' in its topics.
    const devStatus = await Subscriber.connect(broker, 's/g/status/10_0_0_5', false, 4);
    const data = await Subscriber.connect(broker, 's/g/10_0_0_5/+', false, 4);
    const tg = makeGateway(gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }), dotted);
    try {
      await tg.gw.start();
      const level = (m: Message) => m.topic === 's/g/10_0_0_5/Line1_Level' && m.json.value === 7;
      await data.waitFor(() => data.messages.filter(level).length >= 20, 30_000, '20 samples of Line1.Level');
      await devStatus.waitFor((m) => m.json.state === 'up', 15_000, 'the retained device status');
      await tg.gw.commandsReady();
      const cmd = await Commander.connect(broker, undefined, 4);
      try {
        const id = await cmd.send('10_0_0_5', 'Line1_Setpoint', { value: 42 });
        expect((await cmd.result(id, 20_000)).json).toMatchObject({ id, outcome: 'ok', device: '10.0.0.5', point: 'Line1.Setpoint' });
      } finally {
        await cmd.close();
      }
      await data.waitFor((m) => m.topic === 's/g/10_0_0_5/Line1_Setpoint' && m.json.value === 42, 15_000, 'the written value on its data topic');
      // Still flowing after the command: the connection never died on a topic.
      const n = data.messages.length;
      await data.waitFor(() => data.messages.length >= n + 10, 15_000, '10 more samples');
      expect(tg.gw.healthPort).toBeDefined();
      const health = (await (await fetch(`http://127.0.0.1:${tg.gw.healthPort}/healthz`)).json()) as { ok: boolean; mqtt: Record<string, unknown> };
      expect(health).toMatchObject({ ok: true, mqtt: { state: 'connected', connections_lost: 0 } });
    } finally {
      await tg.cleanup();
      await Promise.all([devStatus.close(), data.close()]);
    }
  }, 90_000);

  it('its Last Will: `edgeferry run` killed with -9 turns the retained gateway status offline, for live and later subscribers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-will-'));
    writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml(broker, { mqtt: '  keepalive_s: 5' }));
    writeFileSync(join(dir, 'devices.yaml'), devices(plc.port));
    const status = await Subscriber.connect(broker, 's/g/status', false, 4);
    const cli = join(import.meta.dirname, '../../dist/src/main.js');
    const p = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'ignore'] });
    try {
      await status.waitFor((m) => m.json.state === 'online', 30_000, 'online');
      const offline = status.next((m) => m.json.state === 'offline', 30_000, 'the Will');
      p.kill('SIGKILL');
      const will = await offline;
      expect(will.json).toMatchObject({ state: 'offline', reason: 'connection lost' });
      // Retained by the broker: a consumer that subscribes afterwards reads it too.
      const late = await Subscriber.connect(broker, 's/g/status', false, 4);
      try {
        const retained = await late.waitFor(() => true, 10_000, 'the retained status');
        expect(retained).toMatchObject({ retain: true, json: { state: 'offline', reason: 'connection lost' } });
      } finally {
        await late.close();
      }
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await status.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('told to speak MQTT 5 only: the broker is reported as refusing, with its answer, in the log and on /healthz', async () => {
    const { lines, log } = capturedLog();
    const tg = makeGateway(
      gatewayYaml(broker, { mqtt: '  protocol_version: 5' }).replace('health: { port: 0 }', 'health: { port: 0, broker_away_s: 1 }'),
      devices(plc.port),
      log,
    );
    try {
      await tg.gw.start();
      const url = `http://127.0.0.1:${tg.gw.healthPort}/healthz`;
      let body: { reasons: string[]; mqtt: Record<string, unknown> } | undefined;
      await expect
        .poll(
          async () => {
            const res = await fetch(url);
            body = (await res.json()) as typeof body;
            return res.status;
          },
          { timeout: 20_000, interval: 200 },
        )
        .toBe(503);
      expect(body!.mqtt).toMatchObject({ state: 'refused', refusal: expect.stringMatching(/^MQTT 5: /) });
      expect(body!.mqtt.refusal).toContain(mqtt5Answer);
      expect(body!.reasons.join('\n')).toMatch(/^broker refuses the connection for \d+ s/m);
      expect(body!.reasons.join('\n')).not.toMatch(/unreachable/);
      const refused = lines.filter((l) => String(l.msg).startsWith('the broker refuses the connection'));
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]).toMatchObject({ protocol: 'MQTT 5', connection: 'publisher' });
      expect(lines.some((l) => String(l.msg).startsWith('the broker does not accept MQTT 5'))).toBe(false);
    } finally {
      await tg.cleanup();
    }
  }, 60_000);
  it('a 30 s outage (the broker killed with SIGKILL) loses nothing at a persistent consumer', async () => {
    const r = await lossAcross(broker, broker, plc.port, async () => {
      await broker.crash();
      await sleep(30_000); // the outage itself
      await broker.restart();
    });
    console.log(
      `${_name}, 30 s outage: produced ${r.produced}, received ${r.received}, still buffered ${r.buffered}, missing ${r.missing.length}, duplicates ${r.duplicates}`,
    );
    expect(r.missing).toEqual([]);
    expect(r.outOfOrder).toEqual([]);
  }, 300_000);
});

describe('a three-node NATS JetStream cluster', () => {
  it('one node killed under load (SIGKILL): nothing lost at a persistent consumer on another node', async () => {
    const [cluster, plc] = await Promise.all([startNats({ nodes: 3 }), startSim({ registers: [{ area: 'holding', address: 0, value: 7 }] })]);
    try {
      // The gateway on node 0, the consumer on node 1; node 2 (and with it whatever stream leaders
      // and replicas it held) is killed under load and comes back 10 s later.
      const onNode = (i: number) => ({ ...cluster, url: cluster.urls[i]! });
      const r = await lossAcross(onNode(0), onNode(1), plc.port, async () => {
        await cluster.crashNode(2);
        await sleep(10_000); // the node's absence
        await cluster.restartNode(2);
      });
      console.log(
        `NATS cluster, node killed: produced ${r.produced}, received ${r.received}, still buffered ${r.buffered}, missing ${r.missing.length}, duplicates ${r.duplicates}`,
      );
      expect(r.missing).toEqual([]);
    } finally {
      await plc.stop();
      await cluster.stop();
    }
  }, 300_000);
});

describe("NATS 2.9 and a '.' kept in a topic (mqtt.topic_dot '.')", () => {
  it('the message it drops the connection on is set aside within the documented tries, with an event and an error line naming the topic; the rest flows', async () => {
    const [broker, plc] = await Promise.all([
      startNats(),
      startSim({
        registers: [
          { area: 'holding', address: 0, value: 7 },
          { area: 'holding', address: 1, value: 8 },
        ],
      }),
    ]);
    const { lines, log } = capturedLog();
    const data = await Subscriber.connect(broker, 's/g/plc/v', false, 4);
    const events = await Subscriber.connect(broker, 's/g/events', false, 4);
    // One message on a topic with a '.': the point reports on change and its value never moves.
    const devs = devices(plc.port).replace(
      '      - { name: sp, address: 1, writable: true }',
      '      - { name: Line1.Setpoint, address: 1, report: on_change }',
    );
    const tg = makeGateway(gatewayYaml(broker, { mqtt: "  topic_dot: '.'" }), devs, log);
    try {
      await tg.gw.start();
      const ev = await events.waitFor((m) => m.json.event === 'dead_letter', 60_000, 'the dead_letter event');
      expect(ev.json).toMatchObject({ topic: 's/g/plc/Line1.Setpoint', tries: POISON_SUSPECT + POISON_ALONE + 1 });
      const seq = ev.json.seq as number;
      expect(lines.find((l) => l.msg === 'message set aside in dead_letter: the broker drops the connection on it')).toMatchObject({
        level: 50,
        seq,
        topic: 's/g/plc/Line1.Setpoint',
      });
      await data.waitFor(() => data.messages.filter((m) => (m.json.seq as number) > seq).length >= 10, 30_000, '10 samples after it');
      await tg.gw.stop();
      const file = bufferFile(join(tg.dir, 'buffer.db'));
      expect(file.deadLetters).toEqual([{ seq, reason: expect.stringContaining('topic "s/g/plc/Line1.Setpoint"') }]);
      const seen = new Set(data.messages.map((m) => m.json.seq as number));
      expect(missing(file.lastSeq, seen, file.stored, new Set([seq]))).toEqual([]);
    } finally {
      await tg.cleanup();
      await Promise.all([data.close(), events.close()]);
      await plc.stop();
      await broker.stop();
    }
  }, 120_000);
});

describe("docs/brokers.md's broker configurations, as written (paths and ports put in)", () => {
  const cases: [string, () => Promise<TestBroker>][] = [
    ['NATS', () => startNats({ conf: recipe('brokers.md', 'conf nats-server') })],
    ['RabbitMQ', () => startRabbitMq({ conf: recipe('brokers.md', 'conf rabbitmq') })],
  ];
  it.each(cases)(
    '%s: the gateway with its defaults delivers',
    async (_name, startBroker) => {
      const [broker, plc] = await Promise.all([startBroker(), startSim({ registers: [{ area: 'holding', address: 0, value: 7 }] })]);
      const data = await Subscriber.connect(broker, 's/g/plc/v', false, 4);
      const tg = makeGateway(gatewayYaml(broker), devices(plc.port));
      try {
        await tg.gw.start();
        await data.waitFor((m) => m.json.value === 7, 30_000, 'a sample');
      } finally {
        await tg.cleanup();
        await data.close();
        await plc.stop();
        await broker.stop();
      }
    },
    120_000,
  );
});
