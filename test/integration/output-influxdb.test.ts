// The InfluxDB output against a real InfluxDB server (Debian's influxdb 1.6, started here): every
// sample reaches both MQTT and InfluxDB (queried through InfluxDB's own HTTP API), a row the
// server refuses because of its data is dead-lettered for InfluxDB alone while MQTT and the rest
// flow, and TLS is verified: the wrong CA leaves InfluxDB's rows buffered and says so on /healthz.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { createCa } from '../../src/tls/certs.js';
import { freePort } from '../../simulators/free-port.js';
import { stopChild } from '../../simulators/stop-child.js';
import { installTelegraf, telegrafMetrics } from '../helpers/telegraf.js';
import { join } from 'node:path';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { startInfluxd, type InfluxServer } from '../../simulators/influxdb/index.js';
import { Subscriber } from '../helpers/subscriber.js';
import { counterPlc, missing } from '../helpers/consumer-plant.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/yaml-file.js';
import Database from '../../src/buffer/sqlite.js';
import type { OutputReport } from '../../src/health/judge.js';

/** Rows left in a stopped gateway's buffer file. */
function bufferRows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM samples').pluck().get() as number;
  } finally {
    db.close();
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plant(point?: (line: string, i: number) => string): Promise<{ broker: Mosquitto; devices: string }> {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  return { broker, devices: await counterPlc(cleanups, 100, point) };
}

async function influx(tls = false): Promise<InfluxServer> {
  const server = await startInfluxd({ tls });
  cleanups.push(() => server.stop());
  await server.query('CREATE DATABASE plant');
  return server;
}

const outputYaml = (server: InfluxServer, extra = '') =>
  `outputs:\n  influxdb:\n    url: ${server.url}\n    api: v1\n    database: plant\n    flush_ms: 100\n    max_backoff_ms: 1000\n${extra}`;

/** Polls `check` until it returns true (each try after the last answered), failing with `what` after ms. */
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('InfluxDB output (real influxd)', () => {
  it("docs/outputs.md's config block and query as written (only the port and device this test's): every sample reaches MQTT and InfluxDB, and the buffer empties once both have them", async () => {
    const server = await influx();
    const { broker, devices } = await plant();
    const sub = await Subscriber.connect(broker, 's/g/plc/#');
    cleanups.push(() => sub.close());
    const block = recipe('outputs.md', 'yaml influxdb-config').replace('http://127.0.0.1:8086', server.url);
    expect(block).toContain(server.url);
    const tg = makeGateway(gatewayYaml(broker).replace('buffer:\n', `${block}buffer:\n`), devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await until(() => sub.messages.length >= 100, '100 samples on MQTT');
    await tg.gw.stop();
    const mqttSeqs = sub.messages.map((m) => m.json.seq as number);
    const influxSeqs = (await server.values('plant', 'edgeferry', 'seq')) as number[];
    const m = missing(mqttSeqs);
    const left = bufferRows(join(tg.dir, 'buffer.db'));
    console.log(`MQTT ${m.count} samples (seq ${m.lo}..${m.hi}), InfluxDB ${new Set(influxSeqs).size}; buffer left ${left}`);
    expect(m.missing).toEqual([]);
    expect(m.lo).toBe(1);
    expect(missing(influxSeqs)).toMatchObject({ lo: 1, hi: m.hi, missing: [] });
    // Tags and fields as docs/outputs.md shows them.
    const one = await server.query(`SELECT * FROM edgeferry WHERE point = 'p3' LIMIT 1`, 'plant');
    const series = one.results?.[0]?.series?.[0];
    expect(series?.columns).toEqual(expect.arrayContaining(['time', 'site', 'gateway', 'device', 'point', 'value', 'quality', 'seq']));
    const row = Object.fromEntries(series!.columns.map((c, i) => [c, series!.values[0]![i]]));
    expect(row).toMatchObject({ site: 's', gateway: 'g', device: 'plc', point: 'p3', quality: 'good' });
    expect(typeof row.value).toBe('number');
    expect(left).toBe(0);
    // The doc's query, run by the influx CLI as written (only the port and the device this test's).
    const query = recipe('outputs.md', 'sh influx-query').replace('influx ', `influx -port ${server.port} `).replace("device = 'boiler'", "device = 'plc'");
    const answer = execFileSync('sh', ['-c', query], { encoding: 'utf8' });
    expect(answer).toMatch(/time\s+value\s+quality\s+seq/);
    expect(answer.split('\n').filter((l) => /\sgood\s+\d+$/.test(l)).length).toBeGreaterThan(0);
  });

  it('dead-letters for InfluxDB alone the rows it refuses (a field of another type), while MQTT gets them and the rest flows', async () => {
    const server = await influx();
    // "unit" was once written as a number: InfluxDB now refuses the string unit of p0's samples.
    await server.query('CREATE DATABASE plant');
    // (Field types are fixed per shard: the same week as the samples.)
    const pre = await fetch(`${server.url}/write?db=plant&precision=ms`, { method: 'POST', body: `edgeferry,device=old unit=1 ${Date.now() - 60_000}` });
    expect(pre.status).toBe(204);
    const { broker, devices } = await plant((line, i) => (i === 0 ? '{ name: p0, address: 0, unit: rpm }' : line));
    const sub = await Subscriber.connect(broker, 's/g/plc/#');
    cleanups.push(() => sub.close());
    const tg = makeGateway(gatewayYaml(broker).replace('buffer:\n', `${outputYaml(server)}buffer:\n`), devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await until(async () => (await server.values('plant', 'edgeferry', 'seq')).length >= 80, '80 samples in InfluxDB');
    await until(() => tg.gw.bufferStats().deadLetters >= 5, '5 dead letters');
    await tg.gw.stop();
    const mqtt = sub.messages;
    const influxSeqs = new Set((await server.values('plant', 'edgeferry', 'seq')) as number[]);
    const p0 = mqtt.filter((x) => x.topic === 's/g/plc/p0').map((x) => x.json.seq as number);
    const others = mqtt.filter((x) => x.topic !== 's/g/plc/p0').map((x) => x.json.seq as number);
    const file = new Database(join(tg.dir, 'buffer.db'), { readonly: true });
    const deadLetters = file.prepare('SELECT seq, reason FROM dead_letter ORDER BY seq').all() as { seq: number; reason: string }[];
    const left = file.prepare('SELECT count(*) FROM samples').pluck().get() as number;
    file.close();
    console.log(
      `MQTT: ${p0.length} p0 samples, ${others.length} others; InfluxDB ${influxSeqs.size}; dead letters ${deadLetters.length}: ${deadLetters[0]?.reason}`,
    );
    expect(missing(mqtt.map((x) => x.json.seq as number)).missing).toEqual([]);
    expect(p0.filter((s) => influxSeqs.has(s))).toEqual([]); // refused, each one
    expect(others.filter((s) => !influxSeqs.has(s))).toEqual([]); // the rest all there
    expect(deadLetters.map((d) => d.seq)).toEqual(p0);
    expect(deadLetters[0]!.reason).toMatch(/^influxdb: HTTP 400: .*field type conflict/);
    expect(left).toBe(0);
  });

  it('a reload adds InfluxDB (it gets what comes next) and removes it again, while MQTT goes on without a gap or a duplicate', async () => {
    const server = await influx();
    const { broker, devices } = await plant();
    const sub = await Subscriber.connect(broker, 's/g/#');
    cleanups.push(() => sub.close());
    const plain = gatewayYaml(broker);
    const tg = makeGateway(plain, devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const data = () => sub.messages.filter((m) => m.topic.startsWith('s/g/plc/')).map((m) => m.json.seq as number);
    await until(() => data().length >= 30, '30 samples on MQTT');
    const load = (yaml: string) => {
      writeFileSync(join(tg.dir, 'gateway.yaml'), yaml);
      const { config, problems } = new ConfigLoader(DRIVERS, tg.dir).loadGatewayConfig('gateway.yaml');
      if (!config) throw new Error(problems.map(formatProblem).join('\n'));
      return config;
    };
    const beforeAdd = tg.gw.bufferStats().lastSeq;
    const added = await tg.gw.reload(load(plain.replace('buffer:\n', `${outputYaml(server)}buffer:\n`)));
    expect(added.restartNeeded).toEqual([]);
    await until(async () => (await server.values('plant', 'edgeferry', 'seq')).length >= 30, '30 samples in InfluxDB after the reload');
    const influxSeqs = (await server.values('plant', 'edgeferry', 'seq')) as number[];
    expect(Math.min(...influxSeqs)).toBeGreaterThan(beforeAdd); // what came after it was added
    await sub.waitFor((m) => m.topic === 's/g/events' && m.json.event === 'output_added' && m.json.output === 'influxdb', 15_000, 'output_added event');

    await server.kill(); // InfluxDB away: its rows wait under its name…
    await until(() => tg.gw.bufferStats().depth >= 60, '60 rows held for InfluxDB');
    const removed = await tg.gw.reload(load(plain)); // …until it is removed: they are given up, counted
    expect(removed.restartNeeded).toEqual([]);
    const ev = await sub.waitFor((m) => m.topic === 's/g/events' && m.json.event === 'output_removed', 15_000, 'output_removed event');
    expect(ev.json.undelivered).toBeGreaterThanOrEqual(20);
    await until(() => tg.gw.bufferStats().depth < 20, 'the buffer let go of what only InfluxDB needed');
    const last = tg.gw.bufferStats().lastSeq;
    await until(() => Math.max(...data()) >= last + 20, 'MQTT going on after the reloads');
    await tg.gw.stop();
    const seqs = data();
    const m = missing(seqs);
    console.log(
      `reloads: MQTT seq ${m.lo}..${m.hi}, ${seqs.length} messages, ${m.count} distinct, missing ${m.missing.length}; InfluxDB got ${influxSeqs.length} from seq ${Math.min(...influxSeqs)} (added after seq ${beforeAdd}); removed with ${String(ev.json.undelivered)} undelivered`,
    );
    expect(m.missing).toEqual([]);
    expect(seqs.length).toBe(m.count);
    await server.restart(); // for the cleanup's stop
  });

  it('verifies the server certificate: the right CA delivers over TLS; the wrong one keeps the rows and /healthz says why', async () => {
    const server = await influx(true);
    const { broker, devices } = await plant();
    // The wrong CA: the broker's. InfluxDB's certificate is not signed by it.
    const wrong = makeGateway(
      gatewayYaml(broker)
        .replace('buffer:\n', `${outputYaml(server, `    tls: { ca: ${broker.files.ca} }\n`)}buffer:\n`)
        .replace('health: { port: 0 }', 'health: { port: 0, broker_away_s: 1 }'),
      devices,
    );
    cleanups.push(() => wrong.cleanup());
    await wrong.gw.start();
    type Healthz = { ok: boolean; reasons: string[]; outputs: Record<string, OutputReport> };
    const healthz = async () => (await (await fetch(`http://127.0.0.1:${wrong.gw.healthPort}/healthz`)).json()) as Healthz;
    await until(async () => {
      const h = await healthz();
      return h.outputs.influxdb?.state === 'down' && h.outputs.influxdb.lag_s >= 1;
    }, 'InfluxDB reported down for 1 s');
    const h = await healthz();
    console.log(`wrong CA: /healthz ${JSON.stringify(h.outputs.influxdb)}; reasons ${JSON.stringify(h.reasons)}`);
    expect(h.ok).toBe(false);
    expect(h.outputs.influxdb!.reason).toMatch(/certificate|self.signed|issuer/i);
    expect(h.outputs.influxdb!.backlog).toBeGreaterThan(0);
    expect(h.outputs.mqtt!.state).toBe('up');
    expect((await server.values('plant', 'edgeferry', 'seq')).length).toBe(0);
    await wrong.gw.stop();

    // Its CA: the same buffer folder's rows are written over TLS after a restart with the right file.
    const dir = wrong.dir;
    const right = makeGateway(
      gatewayYaml(broker).replace('buffer:\n', `${outputYaml(server, `    tls: { ca: ${server.caFile} }\n`)}buffer:\n`),
      devices,
      undefined,
      undefined,
      {},
      dir,
    );
    cleanups.push(() => right.cleanup());
    await right.gw.start();
    await until(async () => (await server.values('plant', 'edgeferry', 'seq')).length >= 50, '50 samples in InfluxDB over TLS');
    const seqs = (await server.values('plant', 'edgeferry', 'seq')) as number[];
    expect(Math.min(...seqs)).toBe(1); // the rows the wrong CA kept buffered came too
  });
});

// api v2 against an implementation of InfluxDB's v2 write API nobody here wrote: Telegraf's
// influxdb_v2_listener (token, gzip, TLS), with Telegraf's file output as the record of what arrived.
describe('InfluxDB output, api v2 (Telegraf influxdb_v2_listener)', () => {
  it('writes every sample with the token over verified TLS; a wrong token keeps the rows buffered and says HTTP 401', { timeout: 900_000 }, async () => {
    const telegraf = installTelegraf();
    const { broker, devices } = await plant();
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-influx-v2-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ca = createCa('edgeferry test listener CA');
    const server = ca.issue('localhost', 'server');
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'server.pem'), server.cert);
    writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
    const port = await freePort();
    const out = join(dir, 'metrics.json');
    writeFileSync(
      join(dir, 'telegraf.conf'),
      [
        '[agent]\n  interval = "1s"\n  flush_interval = "200ms"\n  omit_hostname = true',
        `[[inputs.influxdb_v2_listener]]\n  service_address = "127.0.0.1:${port}"\n  token = "the-right-token"\n  tls_cert = "${dir}/server.pem"\n  tls_key = "${dir}/server.key"`,
        `[[outputs.file]]\n  files = ["${out}"]\n  data_format = "json"\n  json_timestamp_units = "1ms"`,
        '',
      ].join('\n'),
    );
    let log = '';
    const tg = spawn(telegraf, ['--config', join(dir, 'telegraf.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    tg.stdout.on('data', (d: Buffer) => (log += d.toString()));
    tg.stderr.on('data', (d: Buffer) => (log += d.toString()));
    cleanups.push(() => stopChild(tg));
    const metrics = () => telegrafMetrics(out);
    const yaml = (token: string) => {
      writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
      return `outputs:\n  influxdb:\n    url: https://127.0.0.1:${port}\n    api: v2\n    org: plant\n    bucket: edgeferry\n    token_file: ${dir}/token\n    flush_ms: 100\n    max_backoff_ms: 1000\n    tls: { ca: ${dir}/ca.pem, server_name: localhost }\n`;
    };

    // The wrong token: Telegraf answers 401; the rows wait, MQTT is not held back.
    const wrong = makeGateway(gatewayYaml(broker).replace('buffer:\n', `${yaml('a-wrong-token')}buffer:\n`), devices);
    cleanups.push(() => wrong.cleanup());
    await wrong.gw.start();
    const healthz = async () => (await (await fetch(`http://127.0.0.1:${wrong.gw.healthPort}/healthz`)).json()) as { outputs: Record<string, OutputReport> };
    await until(async () => (await healthz()).outputs.influxdb?.reason?.startsWith('HTTP 401') === true, 'HTTP 401 on /healthz', 60_000);
    const h = (await healthz()).outputs;
    console.log(`wrong token: ${JSON.stringify(h.influxdb)}; mqtt ${JSON.stringify(h.mqtt)}`);
    expect(h.influxdb!.backlog).toBeGreaterThan(0);
    expect(h.mqtt!.delivered).toBeGreaterThan(0);
    expect(metrics()).toEqual([]);
    await wrong.gw.stop();

    // The right token, same buffer: what the wrong one kept comes first.
    const right = makeGateway(gatewayYaml(broker).replace('buffer:\n', `${yaml('the-right-token')}buffer:\n`), devices, undefined, undefined, {}, wrong.dir);
    cleanups.push(() => right.cleanup());
    await right.gw.start();
    await until(() => metrics().length >= 100, `100 metrics in Telegraf (it said: ${log.slice(-1000)})`, 60_000);
    await right.gw.stop();
    await until(
      () => {
        const s = new Set(metrics().map((m) => m.fields.seq!));
        return missing([...s]).missing.length === 0 && s.has(1);
      },
      'every seq in Telegraf',
      10_000,
    );
    const seqs = metrics().map((m) => m.fields.seq!);
    const m = missing(seqs);
    const left = bufferRows(join(wrong.dir, 'buffer.db'));
    console.log(`Telegraf v2 listener: ${m.count} distinct seqs (${m.lo}..${m.hi}), missing ${m.missing.length}; buffer left ${left}`);
    expect(m).toMatchObject({ lo: 1, missing: [] });
    expect(left).toBe(0);
    const one = metrics()[0]!;
    expect(one.name).toBe('edgeferry');
    expect(one.tags).toMatchObject({ site: 's', gateway: 'g', device: 'plc' });
    expect(one.fields.quality).toBe('good');
    expect(typeof one.fields.value).toBe('number');
  });
});
