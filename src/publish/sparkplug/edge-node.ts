// A Sparkplug B 3.0 edge node on the publisher's connection (mqtt-publisher.ts, PublisherSession):
// NDEATH with the session's bdSeq as the Will; subscriptions to NCMD, DCMD and the primary host's
// STATE before anything is born; NBIRTH (seq 0) and a DBIRTH per device with every metric, alias,
// datatype, current value and properties; then the buffer's rows as DDATA, seq 0–255 on every
// message of the node; DDEATH and DBIRTH as devices go down and come back; a full rebirth on
// request; with a primary host, nothing born or sent until its STATE says online, and NDEATH plus
// a new session when it goes offline. docs/sparkplug.md has the conformance table.
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { BufferedRow } from '../../buffer/types.js';
import { rowPoints, type RowPoint } from '../../buffer/rows.js';
import type { HealthSnapshot } from '../../core/device-health.js';
import type { Value } from '../../core/driver.js';
import type { Sample } from '../../core/sample.js';
import { KIND_CODE } from '../../core/sample.js';
import type { PublisherSession, SessionFlow } from '../mqtt-publisher.js';
import { BdSeqStore } from './bdseq.js';
import { MetricCatalog, type CatalogDevice, type MetricDef } from './catalog.js';
import { decodePayload, DT, encodePayload, QUALITY, setValue, valueOf, type Metric, type PropertyValue } from './payload.js';

export interface EdgeNodeConfig {
  group: string;
  node: string;
  primaryHost?: string;
  dataQos: 0 | 1;
  /** DDATA only with the metrics that changed since the last value sent in the session. */
  reportByException: boolean;
  bdSeqFile: string;
}

export interface EdgeNodeDeps {
  log: Logger;
  /** The running devices and their points (births carry every metric). */
  devices(): readonly CatalogDevice[];
  /** The latest sample of a device's point (births carry current values). */
  latest(device: string, point: string): Sample | undefined;
  /** A DCMD: write `value` to the point; resolves when done (the read back comes as DDATA). */
  command?(device: string, point: string, value: Value): Promise<void>;
  /** A buffered row delivered without a DDATA message, and why (counted: every row is either sent or accounted for). */
  unsent?(reason: Unsent): void;
}

export type Unsent = 'unchanged' | 'dead_device' | 'unknown_point' | 'not_born';

export const REBIRTH = 'Node Control/Rebirth';

export class EdgeNode implements PublisherSession {
  private readonly bdSeq: BdSeqStore;
  private readonly catalog = new MetricCatalog();
  private client: MqttClient | undefined;
  private flow: SessionFlow | undefined;
  private seq = 0;
  private born = false;
  private hostOnline = false;
  private lastStateTs = -Infinity;
  /** The connection being ended after the primary host went offline. */
  private ending: MqttClient | undefined;
  /**
   * Devices down whose buffered rows are being sent inside a device session opened for them
   * (DBIRTH, the historical DDATA, DDEATH once their run of rows ends): a host that follows the
   * specification drops DATA of a device it has seen die.
   */
  private readonly visiting = new Set<string>();
  private visitTimer: NodeJS.Timeout | undefined;
  /** Devices down as last reported, and those dead (DDEATH sent) in this session. */
  private readonly down = new Set<string>();
  private readonly dead = new Set<string>();
  private readonly topic: (verb: string, device?: string) => string;
  /**
   * Report by exception: the last value and quality sent per alias in this session — live ones
   * (births set them) and, apart, historical ones (a backlog is a series of its own, older than the births).
   */
  private readonly lastLive = new Map<number, string>();
  private readonly lastHistorical = new Map<number, string>();

  constructor(
    private readonly cfg: EdgeNodeConfig,
    private readonly deps: EdgeNodeDeps,
  ) {
    this.bdSeq = new BdSeqStore(cfg.bdSeqFile);
    this.topic = (verb, device) => `spBv1.0/${cfg.group}/${verb}/${cfg.node}${device === undefined ? '' : `/${device}`}`;
  }

  /** A new MQTT CONNECT: the next bdSeq, in the Will registered with it. */
  will(): IClientOptions['will'] {
    const bdSeq = this.bdSeq.next();
    return { topic: this.topic('NDEATH'), payload: this.ndeath(bdSeq), qos: 1, retain: false };
  }

  /** The CONNECT with the last will() went out: the next one takes a new bdSeq. */
  connectSent(): void {
    this.bdSeq.sent();
  }

  private ndeath(bdSeq: number): Buffer {
    return encodePayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', timestamp: Date.now(), datatype: DT.Int64, longValue: bdSeq }] });
  }

  attach(client: MqttClient, flow: SessionFlow): void {
    this.client = client;
    this.flow = flow;
    this.born = false;
    this.hostOnline = false;
    this.dead.clear();
    const filters = [this.topic('NCMD'), `${this.topic('DCMD')}/+`];
    if (this.cfg.primaryHost) filters.push(`spBv1.0/STATE/${this.cfg.primaryHost}`);
    client.on('message', (topic, payload) => this.received(client, topic, payload));
    // Subscribed before anything is born: a rebirth request or the host's STATE is never missed.
    client.subscribe(filters, { qos: 1 }, (err) => {
      if (err || this.client !== client) return void this.deps.log.error({ err }, 'sparkplug: subscription refused');
      if (!this.cfg.primaryHost) this.birth(client);
    });
  }

  detach(): void {
    clearTimeout(this.visitTimer);
    this.visiting.clear();
    this.client = undefined;
    this.flow = undefined;
    this.born = false;
  }

  /** NBIRTH (seq 0) and a DBIRTH per device (DDEATH after it for a device that is down); then data flows. */
  private birth(client: MqttClient): void {
    this.flow?.pause();
    this.catalog.update(this.deps.devices());
    this.seq = 0;
    const now = Date.now();
    const metrics: Metric[] = [
      { name: 'bdSeq', timestamp: now, datatype: DT.Int64, longValue: this.bdSeq.value },
      { name: REBIRTH, timestamp: now, datatype: DT.Boolean, booleanValue: false },
    ];
    this.publish(client, this.topic('NBIRTH'), { timestamp: now, seq: this.nextSeq(), metrics });
    this.dead.clear();
    this.visiting.clear();
    this.lastLive.clear();
    this.lastHistorical.clear();
    for (const device of this.catalog.devices()) {
      this.dbirth(client, device);
      if (this.down.has(device)) this.ddeath(client, device);
    }
    this.born = true;
    this.deps.log.info({ bdSeq: this.bdSeq.value, devices: this.catalog.devices().length }, 'sparkplug: node born');
    this.flow?.start();
  }

  private dbirth(client: MqttClient, device: string): void {
    const now = Date.now();
    const metrics = this.catalog.metrics(device).map((def) => {
      const s = this.deps.latest(device, def.name);
      const props: [string, PropertyValue][] = [['Quality', { type: DT.Int32, intValue: QUALITY[s?.quality ?? 'bad'] >>> 0 }]];
      if (def.unit) props.push(['engUnit', { type: DT.String, stringValue: def.unit }]);
      if (s) this.catalog.learn(device, def.name, s.value, s.type);
      this.lastLive.set(def.alias, said(s?.value ?? null, s?.quality ?? 'bad'));
      const m: Metric = { name: def.name, alias: def.alias, timestamp: s?.ts ?? now, datatype: def.datatype, properties: propertySet(props) };
      return setValue(m, def.datatype, s ? s.value : null);
    });
    this.publish(client, this.topic('DBIRTH', device), { timestamp: now, seq: this.nextSeq(), metrics });
    this.dead.delete(device);
  }

  private ddeath(client: MqttClient, device: string): void {
    this.publish(client, this.topic('DDEATH', device), { timestamp: Date.now(), seq: this.nextSeq(), metrics: [] });
    this.dead.add(device);
  }

  deviceStatus(device: string, s: HealthSnapshot): void {
    const isDown = s.state === 'down' || s.state === 'disabled';
    if (isDown) this.down.add(device);
    else this.down.delete(device);
    this.visiting.delete(device);
    const client = this.client;
    if (!client || !this.born || !this.catalog.has(device)) return;
    if (isDown && !this.dead.has(device)) this.ddeath(client, device);
    // Back up: born again with its first data (encode), so that the DBIRTH carries values read
    // after its return, not the ones from before the outage.
  }

  /** A buffered row as DDATA (metrics by alias, with their timestamps), or as JSON when not device data. */
  encode = (row: BufferedRow, historical: boolean): { topic: string; payload: Buffer; qos: 0 | 1 } | 'json' | 'skip' => {
    if (row.kind === KIND_CODE.el) return 'json';
    const client = this.client;
    if (!client || !this.born) return this.unsent('not_born'); // never expected: the flow is paused until the births
    // The values come from what the row was rendered from while it is live, parsed from its body
    // only when read back from SQLite (body.ts); the gateway time of the poll is the row's.
    const ts = row.ts;
    const known = (rowPoints(row) as PointBody[]).filter((p) => this.catalog.get(row.device, p.point));
    if (!known.length) return this.unsent('unknown_point');
    // The visits last for the whole backlog (closing one at each change of device would cost a
    // DBIRTH and a DDEATH per row of an interleaved backlog): the first live row ends them.
    if (!historical) this.endVisits(client);
    if (this.dead.has(row.device)) {
      // A device that died in this session and is still down gets no live DATA; what it left
      // behind (the gap marker of its going down) is said by the DDEATH.
      if (!historical && this.down.has(row.device)) return this.unsent('dead_device');
      // Back up: born with the values just read. Down: its backlog travels in a device session
      // of its own, born for it and dead again after it.
      this.dbirth(client, row.device);
      if (historical && this.down.has(row.device)) this.visiting.add(row.device);
    }
    if (this.visiting.size) {
      // The run of a visiting device's rows may be the last thing in the buffer: its DDEATH then
      // goes out once nothing more has come for a second.
      clearTimeout(this.visitTimer);
      this.visitTimer = setTimeout(() => this.client === client && this.endVisits(client), 1000);
      this.visitTimer.unref();
    }
    const reported = (p: string) => this.deps.latest(row.device, p)?.type;
    if (known.some((v) => this.catalog.fit(row.device, v.point, v.value, reported(v.point))) && !this.dead.has(row.device)) this.dbirth(client, row.device);
    const last = historical ? this.lastHistorical : this.lastLive;
    const metrics: Metric[] = [];
    for (const v of known) {
      const def = this.catalog.get(row.device, v.point)!;
      const now = said(v.value, v.quality);
      if (this.cfg.reportByException && last.get(def.alias) === now) continue;
      last.set(def.alias, now);
      const m: Metric = { alias: def.alias, timestamp: ts };
      if (historical) m.isHistorical = true;
      if (v.quality !== 'good') m.properties = propertySet([['Quality', { type: DT.Int32, intValue: QUALITY[v.quality] >>> 0 }]]);
      metrics.push(setValue(m, def.datatype, v.value));
    }
    // Nothing changed: no message (the host holds these values already); the row is delivered.
    if (!metrics.length) return this.unsent('unchanged');
    const payload = encodePayload({ timestamp: Date.now(), seq: this.nextSeq(), metrics });
    return { topic: this.topic('DDATA', row.device), payload, qos: this.cfg.dataQos };
  };

  private unsent(reason: Unsent): 'skip' {
    this.deps.unsent?.(reason);
    return 'skip';
  }

  /** Closes the device sessions opened for down devices' backlog: DDEATH for each still down. */
  private endVisits(client: MqttClient): void {
    for (const device of this.visiting) {
      this.visiting.delete(device);
      if (this.down.has(device) && !this.dead.has(device)) this.ddeath(client, device);
    }
  }

  /** Clean stop: NDEATH with this session's bdSeq, before the DISCONNECT (which discards the Will). */
  async stopping(client: MqttClient): Promise<void> {
    await client.publishAsync(this.topic('NDEATH'), this.ndeath(this.bdSeq.value), { qos: 1, retain: false });
  }

  private received(client: MqttClient, topic: string, payload: Buffer): void {
    // A connection being ended (the host went offline) takes nothing more; the next one reads the retained STATE.
    if (this.client !== client || this.ending === client) return;
    try {
      if (topic.startsWith('spBv1.0/STATE/')) return this.hostState(client, payload);
      const p = decodePayload(payload);
      if (topic === this.topic('NCMD')) {
        const rebirth = p.metrics.find((m) => m.name === REBIRTH);
        if (rebirth?.booleanValue === true && this.born) {
          this.deps.log.info('sparkplug: rebirth requested');
          this.birth(client);
        }
        return;
      }
      const device = topic.slice(this.topic('DCMD').length + 1);
      for (const m of p.metrics) this.dcmd(device, m);
    } catch (err) {
      this.deps.log.warn({ topic, err: { message: (err as Error).message } }, 'sparkplug: undecodable command');
    }
  }

  private dcmd(device: string, m: Metric): void {
    // An alias is unique across the node: it must also be one of this device's metrics.
    const byAlias = m.alias !== undefined ? this.catalog.byAlias(m.alias) : undefined;
    const def: MetricDef | undefined = m.name !== undefined ? this.catalog.get(device, m.name) : byAlias?.device === device ? byAlias.def : undefined;
    if (!def || !this.deps.command) return void this.deps.log.warn({ device, metric: m.name ?? m.alias }, 'sparkplug: DCMD for an unknown metric');
    // By the metric's datatype (the command's, else its birth's): signed integers from two's complement.
    this.deps
      .command(device, def.name, valueOf(m, m.datatype ?? def.datatype))
      .catch((err: unknown) => this.deps.log.warn({ err, device }, 'sparkplug: DCMD failed'));
  }

  /** The primary host's STATE (3.0 JSON): born when online; NDEATH and a new session when it goes offline. */
  private hostState(client: MqttClient, payload: Buffer): void {
    const s = JSON.parse(payload.toString('utf8')) as { online?: unknown; timestamp?: unknown };
    const ts = typeof s.timestamp === 'number' ? s.timestamp : NaN;
    if (typeof s.online !== 'boolean' || !Number.isFinite(ts) || ts < this.lastStateTs) return;
    this.lastStateTs = ts;
    this.hostOnline = s.online;
    if (s.online && !this.born) return this.birth(client);
    if (!s.online && this.born) {
      this.deps.log.warn({ host: this.cfg.primaryHost }, 'sparkplug: primary host offline; NDEATH, new session, data stays buffered');
      const flow = this.flow;
      flow?.pause();
      this.born = false;
      this.ending = client;
      // MQTT 5: DISCONNECT "with Will Message" (0x04); 3.1.1: the NDEATH published first is the notice.
      const opts = client.options.protocolVersion === 5 ? { reasonCode: 4 } : {};
      // What was written is confirmed first: the next session does not send it again.
      void (flow?.settle(2000) ?? Promise.resolve())
        .then(() => client.publishAsync(this.topic('NDEATH'), this.ndeath(this.bdSeq.value), { qos: 1 }))
        .finally(() => client.end(false, opts));
    }
  }

  /** The devices changed (a reload): born again with the new set of metrics. */
  rebirth(): void {
    if (this.client && this.born) this.birth(this.client);
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % 256;
    return s;
  }

  private publish(client: MqttClient, topic: string, p: { timestamp: number; seq: number; metrics: Metric[] }): void {
    // Births and deaths at QoS 0, as Sparkplug 3.0 requires (whatever data_qos says).
    client.publish(topic, encodePayload(p), { qos: 0, retain: false });
  }
}

/** A row's point (RowPoint) with its value as a driver value. */
interface PointBody extends RowPoint {
  value: Value;
}

/** A value and its quality as one comparable key (report by exception). */
const said = (v: Value, q: string): string => `${q}:${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)}`;

function propertySet(entries: [string, PropertyValue][]): { keys: string[]; values: PropertyValue[] } {
  return { keys: entries.map((e) => e[0]), values: entries.map((e) => e[1]) };
}
