// The only component that talks to the broker (DESIGN). It pumps the buffer in seq order, deletes
// a row only after the broker's PUBACK, and owns reconnects itself: each connection gets a fresh
// mqtt.js client (reconnectPeriod 0), so after a drop nothing is replayed from mqtt.js's memory
// one message per round trip; instead the pump restarts from the oldest unacknowledged row in
// SQLite at full speed. Duplicates after a drop are possible (at-least-once); consumers dedupe by seq.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { BufferedRow, SqliteBuffer } from '../buffer/sqlite-buffer.js';
import { withSeq } from '../buffer/body.js';
import type { MqttConfig } from '../config/schema.js';
import type { HealthSnapshot } from '../core/device-health.js';
import { withDeadline } from '../core/deadline.js';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../health/metrics.js';
import { renderTopic } from './topics.js';
import { EL_DEVICE, POLL_POINT } from '../core/sample.js';

export interface PublisherIdentity {
  site: string;
  gateway: string;
}

export type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

export interface PublisherDeps {
  buffer: SqliteBuffer;
  log: Logger;
  metrics: Metrics;
  /** Resolves relative TLS and password file paths. */
  baseDir: string;
  /** Most backlog messages per second after an outage; 0 = unlimited. */
  replayRate: number;
  replayOrder?: 'strict' | 'live_first';
  /** Rows read from the buffer per batch (buffer.batch_size). */
  batchSize?: number;
  /** Topic of EL verdicts (inference.topic_template), when the EL stage runs. */
  elTopicTemplate?: string;
  connect?: MqttConnect;
  /** An exception caught at one of the publisher's boundaries (the buffer refused a read or delete). */
  fault?: (component: string, err: unknown) => void;
}

const ACK_FLUSH_MS = 20;
const DEFAULT_EL_TOPIC = '{site}/{gateway}/el/{station}';
/** After the buffer refused a read or a delete, the next try. */
const RETRY_MS = 1000;

/** Retained device statuses (refreshed every 60 s) expire after this long without a refresh (MQTT 5). */
export const DEVICE_STATUS_EXPIRY_S = 180;

export class MqttPublisher {
  private client: MqttClient | undefined;
  private connected = false;
  /** Since when the broker has been away (from the start until the first connect), or undefined while connected. */
  private awaySince: number | undefined = Date.now();
  private stopped = false;
  /** Highest seq handed to the current connection; reset to 0 on every new connection. */
  private cursor = 0;
  /** With replay_order live_first: highest live seq handed to the current connection. */
  private liveCursor = 0;
  private inflight = 0;
  private acked: number[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private readonly deviceStatus = new Map<string, HealthSnapshot>();
  private readonly topicCache = new Map<string, string>();
  private readonly connectFn: MqttConnect;
  private readonly tlsOptions: Partial<IClientOptions>;
  private readonly statusTopic: string;
  private drainWaiters: (() => void)[] = [];
  private readonly eventsTopic: string;
  /** Event ids handed to the current connection. */
  private eventsInFlight = new Set<number>();
  /** Rows with seq <= this were buffered before the current connection: they are replayed history. */
  private replayUntil = 0;
  private tokens = 0;
  private tokensAt = 0;
  private replayTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly id: PublisherIdentity,
    private readonly deps: PublisherDeps,
  ) {
    this.connectFn = deps.connect ?? ((url, opts) => mqtt.connect(url, opts));
    this.batchSize = deps.batchSize ?? 500;
    this.tlsOptions = this.readTls();
    this.statusTopic = renderTopic(cfg.status_topic, { site: id.site, gateway: id.gateway });
    this.eventsTopic = renderTopic(cfg.events_topic, { site: id.site, gateway: id.gateway });
  }

  private readTls(): Partial<IClientOptions> {
    const t = this.cfg.tls;
    const read = (f: string | undefined, what: string) => {
      if (!f) return undefined;
      const p = resolve(this.deps.baseDir, f);
      try {
        return readFileSync(p);
      } catch (err) {
        throw new GatewayError('GW_ERR_TLS_FILE', `mqtt.tls.${what}: cannot read "${p}": ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    };
    const opts: Partial<IClientOptions> = {
      ca: read(t.ca, 'ca'),
      cert: read(t.cert, 'cert'),
      key: read(t.key, 'key'),
      rejectUnauthorized: t.verify_server,
      minVersion: t.min_version,
    } as Partial<IClientOptions>;
    if (t.server_name) (opts as Record<string, unknown>).servername = t.server_name;
    if (this.cfg.password_file) {
      const pw = read(this.cfg.password_file, 'password_file')!;
      opts.password = pw.toString('utf8').replace(/\r?\n$/, '');
    }
    return opts;
  }

  private statusPayload(state: string, extra: Record<string, unknown> = {}): string {
    return JSON.stringify({ state, ts: new Date().toISOString(), ...extra });
  }

  private dataTopic(device: string, point: string): string {
    const key = `${device}\u0000${point}`;
    let t = this.topicCache.get(key);
    if (!t) {
      // EL verdicts (device EL_DEVICE, station in point) have a topic template of their own.
      if (device === EL_DEVICE) t = renderTopic(this.deps.elTopicTemplate ?? DEFAULT_EL_TOPIC, { ...this.id, station: point, device: 'el', point: 'verdict' });
      else if (point === POLL_POINT) t = renderTopic(this.cfg.poll_topic_template, { ...this.id, device });
      else t = renderTopic(this.cfg.topic_template, { ...this.id, device, point });
      this.topicCache.set(key, t);
    }
    return t;
  }

  /** Topic template of EL inference verdicts ({station} is the image's station). */
  private readonly batchSize: number;
  private readonly retained = new Map<string, string>();

  /** A retained message kept current across reconnects (e.g. the inference stage's status). */
  setRetained(topic: string, payload: string): void {
    this.retained.set(topic, payload);
    if (this.connected) this.client?.publish(topic, payload, { qos: 1, retain: true });
  }

  /** Called once by the gateway; connects in the background and keeps reconnecting until stop(). */
  start(): void {
    if (!this.cfg.tls.verify_server) this.deps.log.warn('mqtt.tls.verify_server is false: the broker certificate is NOT verified');
    this.openConnection();
  }

  private openConnection(): void {
    if (this.stopped) return;
    const opts: IClientOptions = {
      ...this.tlsOptions,
      // mqtt.js logs through `debug` a dozen times per message; unless DEBUG asks for it, a no-op
      // (about 4% of the gateway's CPU at saturation, bench/saturate.ts).
      ...(/mqttjs/.test(process.env.DEBUG ?? '') ? {} : { log: () => undefined }),
      protocolVersion: this.cfg.protocol_version,
      clientId: this.cfg.client_id ?? `edgeferry-${this.id.site}-${this.id.gateway}`,
      username: this.cfg.username,
      keepalive: this.cfg.keepalive_s,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // The broker sends the Will when it notices the loss, long after this payload was made: it
      // carries when the lost session began, not a time of its own.
      will: {
        topic: this.statusTopic,
        payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'connection lost', session_since: new Date().toISOString() })),
        qos: 1,
        retain: true,
      },
    };
    const client = this.connectFn(this.cfg.url, opts);
    this.client = client;
    let closed = false;
    client.on('connect', () => {
      if (this.client !== client || this.stopped) return;
      // mqtt.js leaves Nagle on; with many small QoS 1 messages it adds up to tens of ms per message.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.connected = true;
      this.awaySince = undefined;
      this.cursor = 0;
      this.liveCursor = 0;
      this.inflight = 0;
      this.eventsInFlight.clear();
      this.replayUntil = this.deps.buffer.lastSeq();
      this.protectInFlight();
      this.tokens = this.deps.replayRate;
      this.tokensAt = performance.now();
      this.deps.metrics.mqttConnected.set(1);
      this.deps.log.info({ url: this.cfg.url }, 'mqtt connected');
      client.publish(this.statusTopic, this.statusPayload('online', this.gatewayExtra), { qos: 1, retain: true });
      for (const [device, s] of this.deviceStatus) this.sendDeviceStatus(device, s);
      for (const [topic, payload] of this.retained) this.client?.publish(topic, payload, { qos: 1, retain: true });
      this.pump();
    });
    client.on('error', (err) => this.deps.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'mqtt error'));
    client.on('close', () => {
      if (closed) return;
      closed = true;
      if (this.client === client) {
        if (this.connected) this.deps.log.warn('mqtt connection lost');
        if (this.connected) this.awaySince = Date.now();
        this.connected = false;
        this.deps.metrics.mqttConnected.set(0);
        this.flushAcks();
        this.inflight = 0;
        this.cursor = 0;
        this.liveCursor = 0;
        this.protectInFlight();
        this.client = undefined;
      }
      client.end(true);
      if (!this.stopped) this.reconnectTimer = setTimeout(() => this.reconnect(), this.cfg.reconnect_ms);
    });
  }

  /** A timer's callback: whatever goes wrong, the publisher tries again later. */
  private reconnect(): void {
    try {
      this.openConnection();
    } catch (err) {
      this.deps.fault?.('publisher', err);
      if (!this.stopped) this.reconnectTimer = setTimeout(() => this.reconnect(), this.cfg.reconnect_ms);
    }
  }

  private sendDeviceStatus(device: string, s: HealthSnapshot): void {
    const topic = renderTopic(this.cfg.device_status_topic, { ...this.id, device });
    // Refreshed every minute; with MQTT 5 the retained copy expires after three missed refreshes,
    // so a gateway that went away does not leave its devices "up" on the broker for good.
    const expiry = this.cfg.protocol_version === 5 ? { properties: { messageExpiryInterval: DEVICE_STATUS_EXPIRY_S } } : {};
    this.client?.publish(topic, JSON.stringify({ ...s, since: new Date(s.since).toISOString(), ts: new Date().toISOString() }), {
      qos: 1,
      retain: true,
      ...expiry,
    });
  }

  /** Latest state of a device; published retained now if connected, else on the next connect. */
  setDeviceStatus(device: string, s: HealthSnapshot): void {
    this.deviceStatus.set(device, s);
    this.retained.delete(renderTopic(this.cfg.device_status_topic, { ...this.id, device }));
    if (this.connected) this.sendDeviceStatus(device, s);
  }

  /** A device left the configuration: its retained status is cleared (an empty retained message). */
  removeDevice(device: string): void {
    this.deviceStatus.delete(device);
    this.setRetained(renderTopic(this.cfg.device_status_topic, { ...this.id, device }), '');
  }

  private gatewayExtra: Record<string, unknown> = {};

  /** Extra fields of the retained gateway status ("online") message, e.g. the last reload's outcome. */
  setGatewayStatus(extra: Record<string, unknown>): void {
    this.gatewayExtra = extra;
    if (this.connected) this.client?.publish(this.statusTopic, this.statusPayload('online', extra), { qos: 1, retain: true });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Milliseconds since the broker was last reachable (since start if never), 0 while connected. */
  get awayMs(): number {
    return this.awaySince === undefined ? 0 : Date.now() - this.awaySince;
  }

  /** Tells the pump there is new data. Cheap; called after every append. */
  wake(): void {
    if (this.connected && !this.pumping) this.pump();
  }

  /** Seq ranges handed to the current connection (in flight or acked and about to be deleted). */
  /** Tells the buffer which rows await a PUBACK, so that eviction leaves them alone (after every cursor change). */
  private protectInFlight(): void {
    this.deps.buffer.protect(this.inFlightRanges());
  }

  private inFlightRanges(): [number, number][] {
    if (!this.connected) return [];
    const ranges: [number, number][] = [[0, this.cursor]];
    if (this.deps.replayOrder === 'live_first' && this.liveCursor > this.replayUntil) ranges.push([this.replayUntil + 1, this.liveCursor]);
    return ranges;
  }

  /** Token bucket for backlog messages: true if one may be sent now, else arms a retry. */
  private mayReplay(): boolean {
    const rate = this.deps.replayRate;
    if (rate <= 0) return true;
    const now = performance.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.replayTimer ??= setTimeout(
      () => {
        this.replayTimer = undefined;
        this.pump();
      },
      Math.ceil(1000 / rate),
    );
    return false;
  }

  private pump(): void {
    try {
      this.pumpOnce();
    } catch (err) {
      // The buffer refused a read (a locked or failing disk): what is unsent stays in it; try again.
      this.pumping = false;
      this.deps.fault?.('publisher', err);
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, RETRY_MS);
    }
  }

  private pumpOnce(): void {
    const client = this.client;
    if (!client || !this.connected || this.pumping) return;
    this.pumping = true;
    // One write (one TLS record, one syscall) for the whole batch instead of one per message.
    const stream = client.stream as { cork?(): void; uncork?(): void };
    stream.cork?.();
    try {
      if (this.deps.buffer.hasEvents) this.sendEvents(client);
      const newest = this.deps.buffer.lastSeq();
      const liveFirst = this.deps.replayOrder === 'live_first';
      pumping: while (this.connected && this.client === client && this.inflight < this.cfg.max_inflight) {
        const room = Math.min(this.cfg.max_inflight - this.inflight, this.batchSize);
        if (liveFirst) {
          // Live data first, the backlog after it at replay_rate: fresh values reach SCADA at
          // once, at the price of per-point order between backlog and live (both carry seq).
          const liveFrom = Math.max(this.liveCursor, this.replayUntil);
          const live = liveFrom < newest ? this.deps.buffer.readRange(liveFrom, Infinity, room) : [];
          for (const row of live) this.send(client, row, false);
          if (live.length) continue;
          if (this.cursor >= this.replayUntil) break;
          const old = this.deps.buffer.readRange(this.cursor, this.replayUntil, room);
          if (!old.length) break;
          for (const row of old) {
            if (!this.mayReplay()) break pumping;
            this.send(client, row, true);
          }
          continue;
        }
        // Nothing appended beyond what was sent: no query (this runs after PUBACKs too).
        if (this.cursor >= newest) break;
        const rows = this.deps.buffer.readRange(this.cursor, Infinity, room);
        if (!rows.length) break;
        for (const row of rows) {
          // Strict order (default): the backlog goes first (rate-limited), live data queues behind
          // it, so every point's samples reach the broker in the order they were taken.
          const historical = row.seq <= this.replayUntil;
          if (historical && !this.mayReplay()) break pumping;
          this.send(client, row, historical);
        }
      }
    } finally {
      this.pumping = false;
      this.protectInFlight();
      process.nextTick(() => stream.uncork?.());
    }
    this.deps.metrics.inflight.set(this.inflight);
  }

  private send(client: MqttClient, row: BufferedRow, historical: boolean): void {
    if (row.seq > this.replayUntil && this.deps.replayOrder === 'live_first') this.liveCursor = row.seq;
    else this.cursor = row.seq;
    this.inflight++;
    const seq = row.seq;
    const body = historical ? `${row.body.slice(0, -1)},"historical":true}` : row.body;
    client.publish(this.dataTopic(row.device, row.point), withSeq(seq, body), { qos: this.cfg.qos }, (err) => {
      if (this.client !== client) return; // an old connection's callbacks: its rows are resent
      this.inflight--;
      if (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number' && code >= 0x80) {
          // The broker refused this message for good (MQTT 5 reason code): resending would block
          // the queue forever. Dead-letter it with the reason; it is counted and kept.
          this.deps.log.error({ seq, reason_code: code, reason: err.message }, 'message refused by the broker; moved to dead_letter');
          try {
            this.deps.buffer.reject([seq], `${err.message} (reason code 0x${code.toString(16)})`);
          } catch (e) {
            this.deps.fault?.('publisher', e); // the row stays and is sent again on the next connection
          }
          this.pump();
        }
        return; // otherwise the connection is going away; the row is resent on the next one
      }
      if (historical) this.deps.metrics.replayed.inc();
      this.acked.push(seq);
      if (this.acked.length >= 500) this.flushAcks();
      else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_FLUSH_MS);
      // Refill at half the window, not after every ack: one query per batch instead of per message.
      if (this.inflight <= this.cfg.max_inflight / 2) this.pump();
    });
  }

  /** Loss and recovery events go out before data, each deleted from the buffer after its PUBACK. */
  private sendEvents(client: MqttClient): void {
    for (const ev of this.deps.buffer.pendingEvents(50)) {
      if (this.eventsInFlight.has(ev.id)) continue;
      this.eventsInFlight.add(ev.id);
      client.publish(this.eventsTopic, ev.body, { qos: 1 }, (err) => {
        if (this.client !== client) return;
        this.eventsInFlight.delete(ev.id);
        if (err) return;
        try {
          this.deps.buffer.ackEvent(ev.id);
        } catch (e) {
          this.deps.fault?.('publisher', e); // sent again later: a duplicate event, not a lost one
        }
      });
    }
  }

  private flushAcks(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.acked.length) return;
    const seqs = this.acked;
    this.acked = [];
    try {
      this.deps.buffer.accept(seqs);
    } catch (err) {
      // The broker has them; the rows stay until the delete goes through (if they are sent again
      // after a reconnect meanwhile, that is a duplicate, not a loss).
      this.acked = seqs.concat(this.acked);
      this.deps.fault?.('publisher', err);
      this.ackTimer = setTimeout(() => this.flushAcks(), RETRY_MS);
      return;
    }
    this.deps.metrics.published.inc(seqs.length);
    if (this.inflight === 0 && this.drainWaiters.length && this.deps.buffer.depth() === 0) {
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /** Resolves true when the buffer is empty and nothing is in flight, false after `ms`. Used on shutdown. */
  async drain(ms: number): Promise<boolean> {
    if (this.deps.buffer.depth() === 0 && this.inflight === 0) return true;
    // Not connected: a reconnect within the deadline still gets everything out (the broker may be
    // just back, as after a network blip); otherwise the samples wait in the buffer for next time.
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((r) => this.drainWaiters.push(() => r(true))),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  /** Publishes a retained "offline" (the Last Will is not sent on a clean disconnect) and closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.replayTimer);
    clearTimeout(this.retryTimer);
    const client = this.client;
    if (client && this.connected) {
      const offline = new Promise<void>((r) =>
        client.publish(this.statusTopic, this.statusPayload('offline', { reason: 'stopped' }), { qos: 1, retain: true }, () => r()),
      );
      await withDeadline(offline, 2000, () => new Error('no PUBACK for the offline status')).catch(() => undefined);
    }
    this.flushAcks();
    clearTimeout(this.ackTimer); // a delete the buffer refused is left for the next start (a resend)
    this.connected = false;
    this.protectInFlight();
    this.client = undefined;
    if (client) {
      // A graceful end sends DISCONNECT, which tells the broker to discard the Last Will; a forced
      // one would let the Will overwrite the retained "stopped" status. Force only if it hangs.
      await withDeadline(client.endAsync(false), 2000, () => new Error('DISCONNECT took too long')).catch(() => undefined);
      if (!client.disconnected) client.end(true);
    }
  }
}
