// The gateway as a Sparkplug B 3.0 edge node on a real mosquitto (mutual TLS), seen by a host that
// decodes with the specification's protobuf schema: births with every metric, alias and datatype;
// seq 0–255 over every message of the node, wrapping; bdSeq equal in NBIRTH and the NDEATH Will,
// one more per session and kept across a restart; DDEATH/DBIRTH as a device goes and comes back; a
// full rebirth on request; DCMD writes; and with a primary host, nothing until its STATE is online,
// then the backlog flagged historical, nothing missing.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startModbus } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';
import { commandPayload, PLANT_REGISTERS, plantDevicesYaml, SparkplugWatcher, type SpMessage, type SpMetric } from '../helpers/sparkplug-watcher.js';
import { Subscriber } from '../helpers/subscriber.js';
import { startSparkplugHost } from '../peers/sparkplug-host.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const DT = { Int16: 2, Int64: 4, UInt64: 8, Float: 9, Double: 10, Boolean: 11, String: 12 };

async function plant(opts: { sparkplug?: string; pollMs?: number; commands?: boolean; rbe?: boolean } = {}) {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const sim = await startModbus({
    registers: PLANT_REGISTERS,
  });
  cleanups.push(() => sim.stop());
  const host = await SparkplugWatcher.connect(broker, 'plant');
  cleanups.push(() => host.close());
  const devices = plantDevicesYaml(sim.port, opts.pollMs ?? 200, opts.commands ? ', writable: true, write_min_interval_ms: 0' : '');
  const mqtt = `  format: sparkplug\n  sparkplug: { group_id: plant, edge_node_id: gw1, report_by_exception: ${opts.rbe ?? false}${opts.sparkplug ?? ''} }${opts.commands ? '\n  commands: { enabled: true }' : ''}`;
  const gateway = (dir?: string, log?: pino.Logger): TestGateway => {
    const tg = makeGateway(gatewayYaml(broker, { mqtt }), devices, log, undefined, {}, dir);
    return tg;
  };
  return { broker, sim, host, gateway, devices, mqtt };
}

/** The plant with a primary host whose STATE is offline, and a gateway started on it (buffering). */
async function offlineHost(pollMs?: number) {
  const p = await plant({ sparkplug: ', primary_host_id: scada1', pollMs });
  const state = (online: boolean, timestamp: number) => p.host.publish('spBv1.0/STATE/scada1', JSON.stringify({ online, timestamp }), true);
  const t0 = Date.now();
  await state(false, t0);
  const tg = p.gateway();
  cleanups.push(() => tg.cleanup());
  await tg.gw.start();
  return { ...p, state, t0, tg };
}

const metric = (m: SpMessage, name: string) => m.metrics.find((x) => x.name === name);
const bdSeqOf = (m: SpMessage) => Number(metric(m, 'bdSeq')?.longValue);
const quality = (x: SpMetric) => x.properties?.values[x.properties.keys.indexOf('Quality')]?.intValue;

describe('Sparkplug B edge node', () => {
  it('births: NBIRTH (seq 0, bdSeq, Node Control/Rebirth) then a DBIRTH per device with every metric, alias, datatype and properties; DDATA by alias; seq continuous', async () => {
    const { host, gateway, broker } = await plant();
    // Everything the gateway publishes, in the broker's order: nothing may precede the NBIRTH.
    const everything = await Subscriber.connect(broker, '#');
    cleanups.push(() => everything.close());
    const tg = gateway();
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await host.until((all) => all.filter((m) => m.verb === 'DDATA').length >= 6, 15_000, 'data from both devices');
    await everything.waitFor((m) => m.topic === 's/g/status', 10_000, 'the JSON gateway status');
    expect(everything.messages[0]!.topic).toBe('spBv1.0/plant/NBIRTH/gw1');
    const [nbirth, ...rest] = host.messages;
    expect(nbirth).toMatchObject({ verb: 'NBIRTH', topic: 'spBv1.0/plant/NBIRTH/gw1', seq: 0, qos: 0, retain: false });
    expect(nbirth!.timestamp).toBeGreaterThan(Date.now() - 60_000);
    expect(metric(nbirth!, 'bdSeq')).toMatchObject({ datatype: DT.Int64 });
    expect(metric(nbirth!, 'Node Control/Rebirth')).toMatchObject({ datatype: DT.Boolean, booleanValue: false });
    expect(metric(nbirth!, 'Node Control/Rebirth')!.alias).toBeUndefined();
    const dbirths = rest.filter((m) => m.verb === 'DBIRTH');
    expect(dbirths.map((m) => m.device).sort()).toEqual(['press', 'pump']);
    const press = dbirths.find((m) => m.device === 'press')!;
    // Every metric with its datatype and properties; the values are the current ones, or null
    // (is_null, quality bad) for a point not read yet when the device was born.
    const types = Object.fromEntries(press.metrics.map((m) => [m.name, m.datatype]));
    expect(types).toEqual({ temp: DT.Float, speed: DT.Double, count: DT.UInt64, recipe: DT.String, run: DT.Boolean });
    for (const m of press.metrics) {
      expect(m.timestamp, m.name).toBeDefined();
      expect(m.properties!.keys[0], m.name).toBe('Quality');
      if (m.isNull) expect(quality(m), m.name).toBe(0);
    }
    const aliases = dbirths.flatMap((m) => m.metrics.map((x) => x.alias));
    expect(new Set(aliases).size).toBe(aliases.length); // unique across the edge node
    // DATA only after the births, by alias without name or datatype.
    const firstData = host.messages.findIndex((m) => m.verb === 'DDATA');
    expect(Math.max(...host.messages.map((m, i) => (m.verb === 'DBIRTH' ? i : -1)))).toBeLessThan(firstData);
    const ddata = host.messages.find((m) => m.verb === 'DDATA' && m.device === 'press')!;
    expect(ddata.qos).toBe(0);
    expect(ddata.metrics.length).toBe(1);
    expect(ddata.metrics[0]!.name).toBeUndefined();
    expect(ddata.metrics[0]!.datatype).toBeUndefined();
    expect(aliases).toContain(ddata.metrics[0]!.alias);
    expect(ddata.metrics[0]!.timestamp).toBeDefined();
    host.messages.forEach((m, i) => expect(m.seq, `message ${i} (${m.verb})`).toBe(i % 256));

    // Born again once every point was read: the births carry the current values, exactly.
    const mark = host.messages.length;
    await host.publish('spBv1.0/plant/NCMD/gw1', commandPayload([{ name: 'Node Control/Rebirth', datatype: DT.Boolean, booleanValue: true }]));
    await host.until((all) => all.slice(mark).some((m) => m.verb === 'DBIRTH' && m.device === 'press'), 10_000, 'the rebirth');
    const again = host.messages.slice(mark).find((m) => m.verb === 'DBIRTH' && m.device === 'press')!;
    const byName = Object.fromEntries(again.metrics.map((m) => [m.name, m]));
    expect(byName.temp).toMatchObject({ datatype: DT.Float, floatValue: 21.5 });
    expect(byName.speed).toMatchObject({ datatype: DT.Double, doubleValue: -12.3 });
    expect(byName.count).toMatchObject({ datatype: DT.UInt64, longValue: String(2n ** 60n) }); // 64-bit exact
    expect(byName.recipe).toMatchObject({ datatype: DT.String, stringValue: 'AB' });
    expect(byName.run).toMatchObject({ datatype: DT.Boolean, booleanValue: true });
    expect(byName.temp!.properties!.keys).toEqual(['Quality', 'engUnit']);
    expect(byName.temp!.properties!.values[1]).toMatchObject({ stringValue: 'degC' });
    for (const m of again.metrics) expect(quality(m), m.name).toBe(192);
    // Aliases stay the same across births.
    expect(again.metrics.map((m) => m.alias)).toEqual(press.metrics.map((m) => m.alias));

    // `edgeferry sub --sparkplug` shows what the host sees, readably (a child process: this one keeps polling).
    const f = broker.files;
    const sub = spawn(process.execPath, [
      cli,
      'sub',
      '--url',
      broker.url,
      '--ca',
      f.ca,
      '--cert',
      f.clientCert,
      '--key',
      f.clientKey,
      '--topic',
      'spBv1.0/plant/DDATA/gw1/press',
      '--count',
      '2',
      '--sparkplug',
    ]);
    cleanups.push(() => void (sub.exitCode === null && sub.kill('SIGKILL')));
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    expect(await new Promise((r) => sub.once('exit', r))).toBe(0);
    const [line] = out.trim().split('\n');
    const shown = JSON.parse(line!.slice(line!.indexOf(' ') + 1)) as { seq: number; metrics: { alias: number; value: unknown; ts: string }[] };
    expect(shown.seq).toEqual(expect.any(Number));
    expect(shown.metrics[0]).toMatchObject({ alias: expect.any(Number), ts: expect.stringMatching(/^20\d\d-/) });
  });

  it('seq wraps from 255 to 0 and stays continuous over every message of the node', async () => {
    const { host, gateway } = await plant({ pollMs: 20 });
    const tg = gateway();
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await host.until((all) => all.length >= 600, 60_000, '600 messages');
    const seqs = host.messages.map((m) => m.seq!);
    expect(seqs.filter((s) => s === 0).length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i], `after ${seqs[i - 1]} (message ${i})`).toBe((seqs[i - 1]! + 1) % 256);
  });

  it('a device going down gets a DDEATH and no data; back, a DBIRTH before its data; a Rebirth NCMD gives a full rebirth with the same bdSeq', async () => {
    const { host, gateway, sim } = await plant();
    const tg = gateway();
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await host.until((all) => all.some((m) => m.verb === 'DDATA'), 15_000, 'data');
    const bdSeq = bdSeqOf(host.messages[0]!);
    sim.script({ kind: 'silent' });
    await host.until((all) => all.filter((m) => m.verb === 'DDEATH').length >= 2, 10_000, 'DDEATH of both devices');
    const deathAt = host.messages.findIndex((m) => m.verb === 'DDEATH');
    const cleared = Date.now();
    sim.clear();
    const back = (d: string) => (all: SpMessage[]) => all.some((m, i) => i > deathAt && m.verb === 'DDATA' && m.device === d);
    await host.until((all) => back('press')(all) && back('pump')(all), 15_000, 'data from both devices again');
    const after = host.messages.slice(deathAt);
    for (const d of ['press', 'pump']) {
      const death = after.findIndex((m) => m.verb === 'DDEATH' && m.device === d);
      const birth = after.findIndex((m, i) => i > death && m.verb === 'DBIRTH' && m.device === d);
      const data = after.findIndex((m, i) => i > death && m.verb === 'DDATA' && m.device === d);
      expect(death, d).toBeGreaterThanOrEqual(0);
      expect(birth, d).toBeGreaterThan(death);
      expect(data, d).toBeGreaterThan(birth);
      // The birth carries values read after the device came back (good), not those from before the outage.
      for (const x of after[birth]!.metrics) {
        expect(Number(x.timestamp), `${d}/${x.name}`).toBeGreaterThanOrEqual(cleared);
        expect(quality(x), `${d}/${x.name}`).toBe(192);
      }
    }

    const before = host.messages.length;
    await host.publish('spBv1.0/plant/NCMD/gw1', commandPayload([{ name: 'Node Control/Rebirth', datatype: DT.Boolean, booleanValue: true }]));
    await host.until((all) => all.slice(before).filter((m) => m.verb === 'DBIRTH').length >= 2, 10_000, 'the rebirth');
    const reborn = host.messages.slice(before);
    const nb = reborn.findIndex((m) => m.verb === 'NBIRTH');
    expect(reborn[nb]).toMatchObject({ seq: 0 });
    expect(bdSeqOf(reborn[nb]!)).toBe(bdSeq);
    expect(reborn.slice(nb + 1, nb + 3).map((m) => m.verb)).toEqual(['DBIRTH', 'DBIRTH']);
    expect(reborn.slice(nb).map((m) => m.seq)).toEqual(reborn.slice(nb).map((_, i) => i % 256));
  });

  it('bdSeq: the clean stop sends NDEATH with the NBIRTH bdSeq; the next start is one more, kept across the restart', async () => {
    const { host, gateway } = await plant();
    const first = gateway();
    await first.gw.start();
    await host.until((all) => all.some((m) => m.verb === 'DDATA'), 15_000, 'data');
    const bd1 = bdSeqOf(host.messages[0]!);
    await first.gw.stop();
    // The node's own NDEATH, then (MQTT 5 DISCONNECT with reason 0x04, "with Will") the broker's Will: both with the session's bdSeq.
    await host.until((all) => all.filter((m) => m.verb === 'NDEATH').length >= 2, 10_000, 'NDEATH and the Will on stop');
    for (const ndeath of host.messages.filter((m) => m.verb === 'NDEATH')) {
      expect(ndeath.seq).toBeUndefined();
      expect(ndeath.metrics.map((m) => m.name)).toEqual(['bdSeq']);
      expect(bdSeqOf(ndeath)).toBe(bd1);
    }
    const second = gateway(first.dir);
    cleanups.push(async () => {
      await second.gw.stop();
      await first.cleanup();
    });
    const mark = host.messages.length;
    await second.gw.start();
    await host.until((all) => all.slice(mark).some((m) => m.verb === 'NBIRTH'), 15_000, 'NBIRTH after the restart');
    expect(bdSeqOf(host.messages.slice(mark).find((m) => m.verb === 'NBIRTH')!)).toBe((bd1 + 1) % 256);
  });

  it('bdSeq: one more per CONNECT packet sent, not per attempt — a broker outage with several refused attempts costs one number', async () => {
    const { host, gateway, broker } = await plant();
    // The gateway's warn lines, to count its connection attempts while the broker is away.
    let refused = 0;
    const log = pino({ level: 'warn' }, { write: (line: string) => void (/ECONNREFUSED/.test(line) && refused++) });
    const tg = gateway(undefined, log);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await host.until((all) => all.some((m) => m.verb === 'DDATA'), 15_000, 'data');
    const bd1 = bdSeqOf(host.messages.find((m) => m.verb === 'NBIRTH')!);
    await host.close();
    await broker.kill();
    await expect.poll(() => refused, { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    await broker.restart();
    const again = await SparkplugWatcher.connect(broker, 'plant');
    cleanups.push(() => again.close());
    await again.until((all) => all.some((m) => m.verb === 'NBIRTH'), 15_000, 'NBIRTH after the outage');
    console.log(`bdSeq before the outage ${bd1}; ${refused} attempts refused; after it ${bdSeqOf(again.messages.find((m) => m.verb === 'NBIRTH')!)}`);
    expect(bdSeqOf(again.messages.find((m) => m.verb === 'NBIRTH')!)).toBe((bd1 + 1) % 256);
  });

  it('kill -9: the broker delivers the NDEATH Will with the bdSeq of that session’s NBIRTH', async () => {
    const { host, broker, devices, mqtt } = await plant();
    const tg = makeGateway(gatewayYaml(broker, { mqtt }), devices);
    cleanups.push(() => tg.cleanup());
    const p = spawn(process.execPath, [cli, 'run', '--config', join(tg.dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => void (p.exitCode === null && p.kill('SIGKILL')));
    await host.until((all) => all.some((m) => m.verb === 'DDATA'), 20_000, 'data from the daemon');
    const nbirth = host.messages.find((m) => m.verb === 'NBIRTH')!;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    await host.until((all) => all.some((m) => m.verb === 'NDEATH'), 15_000, 'the Will');
    const will = host.messages.find((m) => m.verb === 'NDEATH')!;
    expect(will).toMatchObject({ qos: 1, retain: false });
    expect(bdSeqOf(will)).toBe(bdSeqOf(nbirth));
  });

  it('DCMD writes a writable metric through the write checks; the device holds it and DDATA shows it', async () => {
    const { host, gateway, sim } = await plant({ commands: true });
    const tg = gateway();
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await host.until((all) => all.some((m) => m.verb === 'DDATA'), 15_000, 'data');
    const temp = host.messages.find((m) => m.verb === 'DBIRTH' && m.device === 'press')!.metrics.find((m) => m.name === 'temp')!;
    await host.publish('spBv1.0/plant/DCMD/gw1/press', commandPayload([{ alias: Number(temp.alias), datatype: DT.Float, floatValue: 42.25 }]));
    await host.until(
      (all) => all.some((m) => m.verb === 'DDATA' && m.metrics.some((x) => x.alias === temp.alias && x.floatValue === 42.25)),
      10_000,
      'the written value',
    );
    expect(sim.getWords('holding', 0, 2)).toEqual([0x4229, 0x0000]);
    // Not writable in the map: refused, never sent.
    const speed = host.messages.find((m) => m.verb === 'DBIRTH' && m.device === 'press')!.metrics.find((m) => m.name === 'speed')!;
    await host.publish('spBv1.0/plant/DCMD/gw1/press', commandPayload([{ alias: Number(speed.alias), datatype: DT.Double, doubleValue: 5 }]));
    const text = async () => tg.gw.metrics.registry.metrics();
    await expect.poll(text, { timeout: 5000 }).toMatch(/edgeferry_writes_total\{device="press",outcome="refused"\} 1/);
    expect(sim.getWords('holding', 2, 1)).toEqual([0xff85]);
  });

  it('primary host: nothing born or sent while its STATE is offline (samples buffer); online → births, then the backlog flagged historical, nothing missing; offline again → NDEATH and a new session', async () => {
    const { host, state, t0, tg } = await offlineHost();
    const buffered = async () => Number(/edgeferry_samples_buffered_total (\d+)/.exec(await tg.gw.metrics.registry.metrics())?.[1] ?? 0);
    await expect.poll(() => tg.gw.bufferStats().depth, { timeout: 15_000 }).toBeGreaterThanOrEqual(30);
    expect(host.messages).toEqual([]);

    await state(true, t0 + 1);
    await host.until((all) => all.filter((m) => m.verb === 'DDATA' && !m.metrics[0]!.isHistorical).length >= 12, 20_000, 'live data after the backlog');
    expect(host.messages.slice(0, 3).map((m) => m.verb)).toEqual(['NBIRTH', 'DBIRTH', 'DBIRTH']);
    const data = host.messages.filter((m) => m.verb === 'DDATA');
    const historical = data.filter((m) => m.metrics[0]!.isHistorical);
    expect(historical.length).toBeGreaterThanOrEqual(30);
    // The backlog first, then live values: in each metric's order of time.
    const firstLive = data.findIndex((m) => !m.metrics[0]!.isHistorical);
    expect(data.slice(firstLive).every((m) => !m.metrics[0]!.isHistorical)).toBe(true);

    // Offline again: NDEATH, then a new session that waits for the host (and keeps buffering).
    const mark = host.messages.length;
    await state(false, t0 + 2);
    await host.until((all) => all.slice(mark).some((m) => m.verb === 'NDEATH'), 10_000, 'NDEATH on the host going offline');
    await expect.poll(() => tg.gw.bufferStats().depth, { timeout: 15_000 }).toBeGreaterThanOrEqual(10);
    expect(host.messages.slice(mark).filter((m) => m.verb !== 'NDEATH')).toEqual([]);
    // A stale STATE (older timestamp) is ignored; a newer online one brings the node back with the next bdSeq.
    await state(true, t0 + 1);
    await state(true, t0 + 3);
    await host.until((all) => all.slice(mark).some((m) => m.verb === 'NBIRTH'), 15_000, 'the next session');
    const nbirths = host.messages.filter((m) => m.verb === 'NBIRTH');
    expect(bdSeqOf(nbirths[1]!)).toBe((bdSeqOf(nbirths[0]!) + 1) % 256);

    // Nothing missing: every sample taken reached the host once, per metric in time order.
    await tg.gw.stop();
    const values = host.messages.filter((m) => m.verb === 'DDATA').flatMap((m) => m.metrics.map((x) => `${x.alias}@${x.timestamp}`));
    expect(new Set(values).size).toBe(values.length);
    expect(values.length).toBe(await buffered());
    const byAlias = new Map<string, number[]>();
    for (const v of values) {
      const [alias, ts] = v.split('@');
      byAlias.set(alias!, [...(byAlias.get(alias!) ?? []), Number(ts)]);
    }
    for (const [alias, list] of byAlias) expect(list, `alias ${alias}`).toEqual([...list].sort((a, b) => a - b));
  });

  // End to end on mosquitto. Whether rows are still in flight at the moment the rebirth lands
  // depends on the socket's backpressure, which a loopback broker rarely builds up; the mechanism
  // (the pump goes on from where it paused, never resending what it handed out) is pinned by
  // test/unit/pump.test.ts, which holds the publish callbacks back.
  it('a Rebirth NCMD in the middle of a backlog replay: every sample reaches the host once, and nothing in flight is counted twice', async () => {
    const { host, state, t0, tg } = await offlineHost(50);
    const metricsText = () => tg.gw.metrics.registry.metrics();
    await expect.poll(() => tg.gw.bufferStats().depth, { timeout: 20_000 }).toBeGreaterThanOrEqual(400);
    await state(true, t0 + 1);
    // The replay is under way: the host asks for a rebirth at once.
    await host.until((all) => all.some((m) => m.verb === 'DDATA' && m.metrics[0]!.isHistorical), 20_000, 'the backlog replay');
    await host.publish('spBv1.0/plant/NCMD/gw1', commandPayload([{ name: 'Node Control/Rebirth', datatype: DT.Boolean, booleanValue: true }]));
    await host.until((all) => all.filter((m) => m.verb === 'NBIRTH').length === 2, 10_000, 'the rebirth');
    const reborn = host.messages.findLastIndex((m) => m.verb === 'NBIRTH');
    await host.until((all) => all.slice(reborn).filter((m) => m.verb === 'DDATA' && !m.metrics[0]!.isHistorical).length >= 12, 20_000, 'live data after it');
    const inflight = Number(/edgeferry_mqtt_inflight (-?\d+)/.exec(await metricsText())?.[1]);
    expect(inflight).toBeGreaterThanOrEqual(0);
    await tg.gw.stop();
    const values = host.messages.filter((m) => m.verb === 'DDATA').flatMap((m) => m.metrics.map((x) => `${x.alias}@${x.timestamp}`));
    const buffered = Number(/edgeferry_samples_buffered_total (\d+)/.exec(await metricsText())?.[1] ?? 0);
    console.log(
      `rebirth during a replay: ${values.length} metric values received, ${new Set(values).size} distinct, ${buffered} samples taken, in flight at the end ${inflight}`,
    );
    // For whoever has to find out why (a starved machine once showed one key twice): each copy with
    // its message's seq, session (bdSeq of the NBIRTH before it), historical flag and value.
    const seen = new Set<string>();
    const twice = new Set(values.filter((v) => (seen.has(v) ? true : (seen.add(v), false))));
    if (twice.size) {
      let session = NaN;
      for (const m of host.messages) {
        if (m.verb === 'NBIRTH') session = bdSeqOf(m);
        for (const x of m.verb === 'DDATA' ? m.metrics : [])
          if (twice.has(`${x.alias}@${x.timestamp}`))
            console.log(
              `twice: ${x.alias}@${x.timestamp} seq ${m.seq} session ${session} historical ${!!x.isHistorical} value ${JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
            );
      }
    }
    expect(values.length - new Set(values).size, 'values received twice').toBe(0);
    expect(values.length).toBe(buffered);
  });

  it('devices down at the birth with a backlog: their buffered data travels inside a device session (DBIRTH … DDEATH), never after a DDEATH', async () => {
    const { host, sim, state, t0, tg } = await offlineHost();
    await expect.poll(() => tg.gw.bufferStats().depth, { timeout: 15_000 }).toBeGreaterThanOrEqual(30);
    // Both devices go silent (down) before the host comes online: the birth finds them down.
    sim.script({ kind: 'silent' });
    await expect.poll(() => tg.gw.deviceStatus('press')?.state, { timeout: 10_000 }).toBe('down');
    await expect.poll(() => tg.gw.deviceStatus('pump')?.state, { timeout: 10_000 }).toBe('down');
    await state(true, t0 + 1);
    await expect.poll(() => tg.gw.bufferStats().depth, { timeout: 20_000 }).toBe(0);
    // The last visit closes a second after its last row.
    const last = (all: SpMessage[], d: string) => all.findLast((m) => m.device === d && (m.verb === 'DBIRTH' || m.verb === 'DDEATH'))?.verb;
    await host.until((all) => last(all, 'press') === 'DDEATH' && last(all, 'pump') === 'DDEATH', 10_000, 'both devices dead again after their backlog');
    const alive = new Map<string, boolean>();
    const outside: string[] = [];
    let historical = 0;
    for (const m of host.messages) {
      if (m.verb === 'NBIRTH') alive.clear();
      if (m.verb === 'DBIRTH') alive.set(m.device!, true);
      if (m.verb === 'DDEATH') alive.set(m.device!, false);
      if (m.verb !== 'DDATA') continue;
      historical += m.metrics.filter((x) => x.isHistorical).length;
      if (!alive.get(m.device!)) outside.push(`${m.device} seq ${m.seq}`);
    }
    const births = host.messages.filter((m) => m.verb === 'DBIRTH').length;
    console.log(`backlog of devices down at the birth: ${historical} historical values, ${births} DBIRTHs, ${outside.length} DDATA outside a device session`);
    // One session per device for its backlog (plus the births), not one per row.
    expect(births).toBeLessThanOrEqual(4);
    expect(historical).toBeGreaterThanOrEqual(30);
    expect(outside).toEqual([]);
    // Both end dead: the host's view matches the devices'.
    expect([alive.get('press'), alive.get('pump')]).toEqual([false, false]);
  });

  it('report by exception (the default): DDATA carries only changed values; the independent host holds every value the gateway read', async () => {
    const { broker, sim, gateway } = await plant({ rbe: true });
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-rbe-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const peer = await startSparkplugHost(broker, dir, { group: 'plant', node: 'gw1', rbe: true });
    cleanups.push(() => peer.stop());
    const tg = gateway();
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const ddata = () => peer.events.filter((e) => e.verb === 'DDATA');
    const unchanged = async () =>
      Number(/edgeferry_sparkplug_rows_unsent_total\{reason="unchanged"\} (\d+)/.exec(await tg.gw.metrics.registry.metrics())?.[1] ?? 0);
    // Values that do not move: once each metric's first value went out (the births came before
    // any read, with nulls), rows are delivered without DDATA.
    await expect.poll(unchanged, { timeout: 15_000 }).toBeGreaterThanOrEqual(60);
    const first = ddata().length;
    await expect.poll(unchanged, { timeout: 15_000 }).toBeGreaterThanOrEqual(120);
    const quiet = ddata().length - first;
    // One register moves (press/temp, and pump/flow: the simulator answers every unit id from the
    // same registers): a DDATA with that metric alone, per device.
    const changes = () => ddata().slice(first + quiet);
    sim.setWords('holding', 0, [0x4229, 0x0000]); // 42.25
    await peer.until(() => changes().length >= 2, 10_000, 'the changed value');
    // Back to the old value: that is a change too.
    sim.setWords('holding', 0, [0x41ac, 0x0000]); // 21.5
    await peer.until(() => changes().length >= 4, 10_000, 'the value back');
    expect(
      changes()
        .map((e) => `${e.device}:${e.live}`)
        .sort(),
    ).toEqual(['press:1', 'press:1', 'pump:1', 'pump:1']);
    const report = await peer.report();
    console.log(
      `report by exception: ${first} DDATA for the first values, then ${quiet} while nothing changed (${await unchanged()} rows unchanged), ${report.values} values in ${report.by_verb.DDATA} DDATA in all`,
    );
    expect(report.violations).toEqual([]); // the host's rbe rule: no live value it holds already
    expect(first).toBeLessThanOrEqual(6); // one per metric at most
    expect(quiet).toBe(0);
    expect(report.values).toBe(first + 4);
  });
});
