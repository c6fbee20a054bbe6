// Two outputs, each with its own cursor in the buffer, through what a plant's network does to
// them: the gateway process publishes to mosquitto and writes to a real InfluxDB; InfluxDB is
// stopped for a minute while MQTT keeps flowing, later the broker is stopped for a minute while
// InfluxDB keeps getting data, and once the gateway is killed with SIGKILL. Every seq reaches each
// output (InfluxDB read back through its own HTTP API, MQTT by a persistent subscriber), none is
// lost, MQTT duplicates are only rows the gateway had sent before the broker restart or the kill
// and sent again after it, and during each outage the buffer keeps exactly the rows the absent
// output has not received.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from '../../src/buffer/sqlite.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { analyse, bufferFile, missing } from '../helpers/delivery.js';
import { gatewayYaml } from '../helpers/gateway.js';
import { startInfluxd, type InfluxServer } from '../../simulators/influxdb/index.js';
import { Subscriber } from '../helpers/subscriber.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
/** How long each output is away (the minute). */
const OUTAGE_MS = 60_000;
let broker: Mosquitto;
let sim: ModbusSimulator;
let influx: InfluxServer;
let sub: Subscriber;
let dir: string;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  broker = await startMosquitto({ persistence: true });
  influx = await startInfluxd();
  await influx.query('CREATE DATABASE plant');
  sim = await startSim({
    registers: Array.from({ length: 5 }, (_, i) => ({
      area: 'holding' as const,
      address: i,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-outputs-'));
  const points = Array.from({ length: 5 }, (_, i) => `      - { name: p${i}, address: ${i} }`).join('\n');
  writeFileSync(
    join(dir, 'devices.yaml'),
    `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n${points}\n`,
  );
  const outputs = `outputs:\n  influxdb:\n    url: ${influx.url}\n    api: v1\n    database: plant\n    flush_ms: 200\n    max_backoff_ms: 2000\n`;
  writeFileSync(
    join(dir, 'gateway.yaml'),
    gatewayYaml(broker).replace('buffer:\n', `${outputs}buffer:\n`).replace('health: { port: 0 }', 'health: { enabled: false }'),
  );
  sub = await Subscriber.connect(broker, 's/g/plc/#', true);
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await sub?.close();
  await sim?.stop();
  await broker?.stop();
  await influx?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(): { proc: ChildProcess; exited: Promise<number | null> } {
  // Its log (pino, on stdout) is kept: a failure below prints the connection events around it.
  const log = openSync(join(dir, 'gateway.log'), 'a');
  const proc = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', log, 'inherit'] });
  closeSync(log);
  procs.push(proc);
  return { proc, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}

/** The seqs the running gateway's buffer file holds now (read-only, beside the writer). */
function stored(): Set<number> {
  return readBuffer((db) => new Set(db.prepare('SELECT seq FROM samples').pluck().all() as number[]));
}

/** The highest seq the buffer has assigned so far (read-only, beside a writer if one runs). */
function assigned(): number {
  return readBuffer((db) => (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck().get() as number | undefined) ?? 0);
}

function readBuffer<T>(read: (db: InstanceType<typeof Database>) => T): T {
  const db = new Database(join(dir, 'buffer.db'), { readonly: true, timeout: 5000 });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

const isData = (m: { topic: string }) => m.topic.startsWith('s/g/plc/');
const mqttSeqs = () => new Set(sub.messages.filter(isData).map((m) => m.json.seq as number));
const influxSeqs = async () => new Set((await influx.values('plant', 'edgeferry', 'seq')) as number[]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

describe('MQTT and InfluxDB outputs through outages and a kill -9', () => {
  it('every seq reaches each output; the buffer keeps what the absent one has not received', { timeout: 420_000 }, async () => {
    let gw = run();
    await until(() => mqttSeqs().size >= 50, '50 samples on MQTT');
    await until(async () => (await influxSeqs()).size >= 50, '50 samples in InfluxDB');

    // InfluxDB away for a minute: MQTT keeps flowing, the buffer keeps InfluxDB's rows.
    await influx.kill();
    const influxDownAt = Date.now();
    const mqttAtInfluxDown = mqttSeqs().size;
    await sleep(OUTAGE_MS);
    const mqttDuring = sub.messages.filter((m) => isData(m) && m.at > influxDownAt + 5000).map((m) => m.json.seq as number);
    const heldForInflux = stored();
    const notHeld = mqttDuring.filter((s) => !heldForInflux.has(s));
    console.log(
      `InfluxDB down ${OUTAGE_MS / 1000} s: MQTT +${mqttSeqs().size - mqttAtInfluxDown} samples; buffer ${heldForInflux.size} rows; of ${mqttDuring.length} delivered to MQTT meanwhile, ${notHeld.length} not in the buffer`,
    );
    expect(mqttSeqs().size - mqttAtInfluxDown).toBeGreaterThan((OUTAGE_MS / 1000) * 25 * 0.8); // 25 samples/s offered
    expect(notHeld).toEqual([]);
    await influx.restart();
    await until(async () => (await influxSeqs()).size >= mqttSeqs().size - 100, 'InfluxDB caught up');

    // The broker away for a minute: InfluxDB keeps getting data, the buffer keeps MQTT's rows.
    const brokerDownAt = Date.now();
    await broker.kill();
    // Every row the lost connection could have carried: what is sent again on the next one.
    const beforeBrokerLoss = assigned();
    const influxAtBrokerDown = (await influxSeqs()).size;
    await sleep(OUTAGE_MS);
    const influxNow = await influxSeqs();
    const heldForMqtt = stored();
    const mqttNow = mqttSeqs();
    const notHeldMqtt = [...influxNow].filter((s) => !mqttNow.has(s) && !heldForMqtt.has(s));
    console.log(
      `broker down ${OUTAGE_MS / 1000} s: InfluxDB +${influxNow.size - influxAtBrokerDown} samples; buffer ${heldForMqtt.size} rows; written to InfluxDB but neither on MQTT nor in the buffer: ${notHeldMqtt.length}`,
    );
    expect(influxNow.size - influxAtBrokerDown).toBeGreaterThan((OUTAGE_MS / 1000) * 25 * 0.8);
    expect(notHeldMqtt).toEqual([]);
    await broker.restart();
    const brokerBackAt = Date.now();
    await until(() => mqttSeqs().size >= influxNow.size, 'MQTT caught up');

    // kill -9, then a clean run that drains both.
    const killedAt = Date.now();
    gw.proc.kill('SIGKILL');
    await gw.exited;
    const beforeKill = assigned();
    gw = run();
    await until(() => sub.messages.some((m) => isData(m) && m.at > killedAt + 3000), 'data after the restart', 60_000);
    await sleep(2000);
    gw.proc.kill('SIGTERM');
    expect(await gw.exited).toBe(0);

    const file = bufferFile(join(dir, 'buffer.db'));
    const m = mqttSeqs();
    const i = await influxSeqs();
    const d = analyse(sub.messages, isData);
    // A duplicate is a row that existed when the connection was lost (the broker restart or the
    // kill), sent again after it: its seq assigned before the loss, a copy arriving after it. By
    // seq, not by when the first copy arrived: on a busy machine, what the killed process sent
    // reaches this subscriber after killedAt (one CI run saw a poll's five rows 1.2 s apart, both
    // after it). Unexplained: every copy before the broker restart (sent twice on one connection),
    // or a row taken after the restart arriving twice before the kill, or after the kill twice.
    const arrivals = new Map<number, number[]>();
    for (const msg of sub.messages.filter(isData)) arrivals.set(msg.json.seq as number, [...(arrivals.get(msg.json.seq as number) ?? []), msg.at]);
    const dups = [...arrivals].filter(([, at]) => at.length > 1);
    const resent = (seq: number, at: number[], lastBefore: number, lossAt: number) => seq <= lastBefore && at[at.length - 1]! >= lossAt;
    const unexplained = dups.filter(([seq, at]) => !resent(seq, at, beforeBrokerLoss, brokerDownAt) && !resent(seq, at, beforeKill, killedAt));
    if (unexplained.length) {
      // What each connection did around them: the broker's log, the subscriber's reconnects, the gateway's log.
      const t0 = Math.min(...unexplained.map(([, at]) => at[0]!)) - 5000;
      const t1 = Math.max(...unexplained.map(([, at]) => at[at.length - 1]!)) + 1000;
      const near = (t: number) => t >= t0 && t <= t1;
      const gwLog = readFileSync(join(dir, 'gateway.log'), 'utf8')
        .split('\n')
        .filter((l) => /mqtt|connect|stop|start/i.test(l) && near(Date.parse(/"time":"([^"]+)"/.exec(l)?.[1] ?? '')));
      console.log(
        JSON.stringify(
          {
            brokerDownAt,
            brokerBackAt,
            beforeBrokerLoss,
            killedAt,
            beforeKill,
            unexplained: unexplained.map(([seq, at]) => ({ seq, at, dup: sub.messages.filter((x) => isData(x) && x.json.seq === seq).map((x) => x.dup) })),
            broker: broker.sessions.filter((e) => near(e.at)),
            subscriberConnects: sub.connectedAt.filter(near),
            gateway: gwLog,
          },
          null,
          1,
        ),
      );
    }
    console.log(
      `seq 1..${file.lastSeq}: MQTT ${m.size} distinct (${d.duplicates} duplicates), InfluxDB ${i.size} distinct; missing on MQTT ${missing(file.lastSeq, m).length}, in InfluxDB ${missing(file.lastSeq, i).length}; buffer left ${file.stored.size}, dead letters ${file.deadLetters.length}, evicted ${file.evicted}`,
    );
    expect(missing(file.lastSeq, m)).toEqual([]);
    expect(missing(file.lastSeq, i)).toEqual([]);
    expect(unexplained).toEqual([]);
    expect(d.outOfOrder).toEqual([]);
    expect(file.stored.size).toBe(0);
    expect(file.deadLetters).toEqual([]);
    expect(file.evicted).toBe(0);
  });
});
