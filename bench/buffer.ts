// Store-and-forward benchmark: ingest rate and bytes per sample for each `synchronous` level, and
// the drain rate of a large backlog to a local mosquitto (mutual TLS) next to the raw mqtt.js
// QoS 1 publish rate measured in the same run with the same window and payload size.
//
//   npm run bench:buffer -- --backlog 1000000
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import mqtt from 'mqtt';
import pino from 'pino';
import { SqliteBuffer } from '../src/buffer/sqlite-buffer.js';
import type { Sample } from '../src/core/sample.js';
import { createMetrics } from '../src/health/metrics.js';
import { MqttPublisher } from '../src/publish/mqtt-publisher.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';

const values = scriptArgs('bench:buffer', 'SQLite buffer: append and drain throughput with a backlog.', {
  backlog: { type: 'string', default: '1000000' },
  ingest: { type: 'string', default: '200000' },
  window: { type: 'string', default: '1000' },
});
const BACKLOG = Number(values.backlog);
const INGEST = Number(values.ingest);
const WINDOW = Number(values.window);
const BIG = 2 ** 40;

const sample = (i: number): Sample => ({
  ts: Date.now(),
  device: `plc-${i % 20}`,
  point: `p${i % 50}`,
  value: 20 + (i % 1000) / 10,
  quality: 'good',
  channel: 'tcp://10.0.0.1:502 unit 1',
  priority: 'normal',
});

function ingest(dir: string, sync: 'full' | 'normal') {
  const b = new SqliteBuffer(join(dir, `ingest-${sync}.db`), { synchronous: sync, maxBytes: BIG, maxAgeS: 86_400 * 365 });
  b.open();
  const batch = 50; // one poll of a 50-point device
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < INGEST; i += batch) {
    const t = performance.now();
    b.append(Array.from({ length: batch }, (_, k) => sample(i + k)));
    times.push(performance.now() - t);
  }
  const secs = (performance.now() - t0) / 1000;
  times.sort((x, y) => x - y);
  const r = {
    rate: INGEST / secs,
    p50: times[Math.floor(times.length / 2)]!,
    p99: times[Math.floor(times.length * 0.99)]!,
    bytesPerSample: b.bytes() / b.depth(),
  };
  b.close();
  return r;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-bench-buf-'));
  const broker = await startMosquitto();
  try {
    console.log(`edgeferry buffer bench — node ${process.version}, ${(await import('node:os')).cpus().length} cores, mosquitto on loopback with mutual TLS`);
    for (const sync of ['full', 'normal'] as const) {
      const r = ingest(dir, sync);
      console.log(
        `ingest synchronous=${sync.padEnd(6)} ${r.rate.toFixed(0)} samples/s in 50-sample transactions; per transaction p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms; ${r.bytesPerSample.toFixed(0)} bytes/sample on disk`,
      );
    }

    // Backlog: fill quickly (large transactions), then let the real publisher drain it.
    const buf = new SqliteBuffer(join(dir, 'backlog.db'), { synchronous: 'normal', maxBytes: BIG, maxAgeS: 86_400 * 365 });
    buf.open();
    for (let i = 0; i < BACKLOG; i += 5000) buf.append(Array.from({ length: Math.min(5000, BACKLOG - i) }, (_, k) => sample(i + k)));
    const payloadBytes = buf.readAfter(0, 1)[0]!.body.length + 12;
    const mqttCfg = {
      url: broker.url,
      allow_plaintext: false,
      protocol_version: 5 as const,
      topic_dot: '_' as const,
      qos: 1 as const,
      keepalive_s: 30,
      topic_template: '{site}/{gateway}/{device}/{point}',
      format: 'json' as const,
      payload: 'point' as const,
      poll_topic_template: '{site}/{gateway}/{device}',
      status_topic: '{site}/{gateway}/status',
      events_topic: '{site}/{gateway}/events',
      device_status_topic: '{site}/{gateway}/status/{device}',
      max_inflight: WINDOW,
      reconnect_ms: 1000,
      commands: { enabled: false, topic_template: '', result_topic_template: '', default_expiry_ms: 10_000 },
      tls: { ca: broker.files.ca, cert: broker.files.clientCert, key: broker.files.clientKey, min_version: 'TLSv1.2' as const, verify_server: true },
    };
    const metrics = createMetrics();
    const pub = new MqttPublisher(
      mqttCfg,
      { site: 'bench', gateway: 'gw' },
      { buffer: buf.view('mqtt'), log: pino({ level: 'silent' }), metrics, baseDir: dir, replayRate: 0 },
    );
    const t0 = performance.now();
    pub.start();
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (buf.depth() === 0) {
          clearInterval(check);
          resolve();
        }
      }, 100);
    });
    const drainSecs = (performance.now() - t0) / 1000;
    await pub.stop();
    buf.close();

    // Raw mqtt.js: the same number of QoS 1 messages (capped at 300k to bound the run), same window.
    const rawCount = Math.min(BACKLOG, 300_000);
    const client = mqtt.connect(broker.url, { ca: broker.caPem, cert: broker.client.cert, key: broker.client.key, protocolVersion: 5, reconnectPeriod: 0 });
    await new Promise<void>((r) => client.once('connect', () => r()));
    const payload = Buffer.alloc(payloadBytes, 0x61);
    const r0 = performance.now();
    await new Promise<void>((resolve) => {
      let sent = 0;
      let acked = 0;
      const pump = () => {
        while (sent < rawCount && sent - acked < WINDOW) {
          sent++;
          client.publish(`bench/gw/plc-${sent % 20}/p${sent % 50}`, payload, { qos: 1 }, () => {
            if (++acked === rawCount) resolve();
            else pump();
          });
        }
      };
      pump();
    });
    const rawSecs = (performance.now() - r0) / 1000;
    await client.endAsync();
    const drainRate = BACKLOG / drainSecs;
    const rawRate = rawCount / rawSecs;
    console.log(
      `drain           ${BACKLOG} buffered samples → broker in ${drainSecs.toFixed(1)} s: ${drainRate.toFixed(0)} msg/s (PUBACK before delete, window ${WINDOW}, ${payloadBytes} B payloads)`,
    );
    console.log(`raw mqtt.js     ${rawCount} QoS 1 publishes in ${rawSecs.toFixed(1)} s: ${rawRate.toFixed(0)} msg/s (same window and payload size)`);
    console.log(`ratio           drain / raw = ${((drainRate / rawRate) * 100).toFixed(0)} %`);
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
