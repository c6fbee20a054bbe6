// The only component that talks to the broker (DESIGN). It owns the connection and its reconnects:
// each connection gets a fresh mqtt.js client (reconnectPeriod 0), so after a drop nothing is
// replayed from mqtt.js's memory one message per round trip; instead the pump (pump.ts) restarts
// from the oldest unacknowledged row in SQLite at full speed and deletes a row only after the
// broker's PUBACK. Duplicates after a drop are possible (at-least-once); consumers dedupe by seq.
// The retained statuses are in retained.ts, topics by message kind in topics.ts, TLS material in
// client-options.ts.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { BufferView } from '../buffer/sqlite-buffer.js';
import type { Output, OutputStatus } from '../outputs/types.js';
import type { MqttConfig } from '../config/schema.js';
import type { HealthSnapshot } from '../core/device-health.js';
import { withDeadline } from '../core/deadline.js';
import type { Metrics } from '../health/metrics.js';
import { securityOptions } from './client-options.js';
import { connackRefusal, MqttProtocol } from './protocol.js';
import { BufferPump, type RowEncoder } from './pump.js';
import { RetainedStatuses } from './retained.js';
import { DataTopics, renderTopic } from './topics.js';

export { DEVICE_STATUS_EXPIRY_S } from './retained.js';

export interface PublisherIdentity {
  site: string;
  gateway: string;
}

export type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

/**
 * A session protocol on top of the connection (Sparkplug B): its own Will, what to publish before
 * data may flow and when (births, a primary host's STATE), device deaths and births, its own wire
 * format for rows, and its last words on a clean stop.
 */
export interface SessionFlow {
  start(): void;
  pause(): void;
  /** Resolves once every row written on this connection is confirmed (or the connection is gone, or after ms). */
  settle(ms: number): Promise<void>;
}

export interface PublisherSession {
  will(): IClientOptions['will'];
  /** The CONNECT packet carrying the last will() went out (the transport connected). */
  connectSent?(): void;
  /** Connected: `start` lets the buffer's rows flow, `pause` stops them (a rebirth); `settle` waits until what was written is confirmed. */
  attach(client: MqttClient, flow: SessionFlow): void;
  detach(): void;
  deviceStatus(device: string, s: HealthSnapshot): void;
  encode: RowEncoder;
  /** A clean stop, before the DISCONNECT. */
  stopping(client: MqttClient): Promise<void>;
}

export interface PublisherDeps {
  /** The buffer as the MQTT output sees it (SqliteBuffer.view('mqtt')). */
  buffer: BufferView;
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
  /** mqtt.format: sparkplug. */
  session?: PublisherSession;
  /** The MQTT version the broker accepts, shared with the command connection (protocol.ts). */
  protocol?: MqttProtocol;
}

/** The MQTT output: JSON or Sparkplug B to the broker, every row acknowledged by its PUBACK (src/outputs/types.ts). */
export class MqttPublisher implements Output {
  readonly name = 'mqtt';
  readonly delivery = 'acknowledged' as const;
  private client: MqttClient | undefined;
  private connected = false;
  /** Since when the broker has been away (from the start until the first connect), or undefined while connected. */
  private awaySince: number | undefined = Date.now();
  private readonly startedAt = Date.now();
  /** When recent connections were lost (the last 256): a broker that drops every connection shows here. */
  private readonly losses: number[] = [];
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly connectFn: MqttConnect;
  private readonly security: Partial<IClientOptions>;
  private readonly retained: RetainedStatuses;
  private readonly pump: BufferPump;
  readonly protocol: MqttProtocol;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly id: PublisherIdentity,
    private readonly deps: PublisherDeps,
  ) {
    this.connectFn = deps.connect ?? ((url, opts) => mqtt.connect(url, opts));
    this.protocol = deps.protocol ?? new MqttProtocol(cfg.protocol_version, deps.log);
    this.security = securityOptions(cfg, deps.baseDir);
    this.retained = new RetainedStatuses(cfg, id);
    const topics = new DataTopics({ point: cfg.topic_template, poll: cfg.poll_topic_template, el: deps.elTopicTemplate }, id, cfg.topic_dot);
    this.pump = new BufferPump(
      {
        qos: cfg.qos,
        maxInflight: cfg.max_inflight,
        batchSize: deps.batchSize ?? 500,
        replayRate: deps.replayRate,
        replayOrder: deps.replayOrder ?? 'strict',
        eventsTopic: renderTopic(cfg.events_topic, id, cfg.topic_dot),
        confirmTopic: `${renderTopic(cfg.events_topic, id, cfg.topic_dot)}/confirm`,
      },
      { buffer: deps.buffer, topics, encode: deps.session?.encode, log: deps.log, metrics: deps.metrics, fault: (err) => deps.fault?.('publisher', err) },
    );
  }

  /** Called once by the gateway; connects in the background and keeps reconnecting until stop(). */
  start(): void {
    if (!this.cfg.tls.verify_server) this.deps.log.warn('mqtt.tls.verify_server is false: the broker certificate is NOT verified');
    this.openConnection();
  }

  private openConnection(): void {
    if (this.stopped) return;
    const opts: IClientOptions = {
      ...this.security,
      // mqtt.js logs through `debug` a dozen times per message; unless DEBUG asks for it, a no-op
      // (about 4% of the gateway's CPU at saturation, bench/saturate.ts).
      ...(/mqttjs/.test(process.env.DEBUG ?? '') ? {} : { log: () => undefined }),
      protocolVersion: this.protocol.version,
      clientId: this.cfg.client_id ?? `edgeferry-${this.id.site}-${this.id.gateway}`,
      username: this.cfg.username,
      keepalive: this.cfg.keepalive_s,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      will: this.deps.session?.will() ?? this.retained.will(),
    };
    const client = this.connectFn(this.cfg.url, opts);
    this.client = client;
    // mqtt.js queues CONNECT on the stream at once; it reaches the broker only once the transport
    // is up (after the TLS handshake on mqtts). An attempt that never got there sent no CONNECT.
    const stream = client.stream as (NodeJS.EventEmitter & { encrypted?: boolean }) | undefined;
    // How an attempt without a CONNACK ended (protocol.ts): a refusal is not "unreachable".
    const attempt: { transportUp: boolean; brokerClosed: boolean; acked: boolean; refusal?: { message: string; code?: number } } = {
      transportUp: false,
      brokerClosed: false,
      acked: false,
    };
    stream?.once(stream.encrypted ? 'secureConnect' : 'connect', () => {
      attempt.transportUp = true;
      this.deps.session?.connectSent?.();
    });
    stream?.once('end', () => (attempt.brokerClosed = true));
    let closed = false;
    client.on('connect', () => {
      attempt.acked = true;
      if (this.client !== client || this.stopped) return;
      this.protocol.accepted();
      // mqtt.js leaves Nagle on; with many small QoS 1 messages it adds up to tens of ms per message.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.connected = true;
      this.awaySince = undefined;
      this.deps.metrics.mqttConnected.set(1);
      this.deps.log.info({ url: this.cfg.url }, 'mqtt connected');
      const session = this.deps.session;
      if (!session) {
        this.retained.attach(client);
        return this.pump.attach(client);
      }
      session.attach(client, {
        start: () => {
          if (this.client !== client) return;
          // Sparkplug: the node's state is its births and deaths; the retained JSON statuses
          // (for plant systems that read them beside the namespace) follow the births, never
          // precede them, once per connection.
          if (!this.retained.attachedTo(client)) this.retained.attach(client);
          this.pump.start(client);
        },
        pause: () => this.pump.pause(),
        settle: (ms) => (this.client === client ? this.pump.settle(ms) : Promise.resolve()),
      });
    });
    client.on('error', (err) => {
      // A CONNACK refusal is said once the attempt is over (protocol.ts), with what it means.
      const refusal = attempt.acked ? undefined : connackRefusal(err);
      if (refusal) return void (attempt.refusal = refusal);
      this.deps.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'mqtt error');
    });
    client.on('close', () => {
      if (closed) return;
      closed = true;
      const retryNow =
        !attempt.acked && !this.stopped && this.client === client && this.protocol.noConnack(attempt, opts.protocolVersion as 4 | 5, 'publisher', this.cfg.url);
      if (this.client === client) {
        if (this.connected) {
          this.deps.log.warn('mqtt connection lost');
          this.awaySince = Date.now();
          if (this.losses.push(this.awaySince) > 256) this.losses.shift();
        }
        this.connected = false;
        this.deps.metrics.mqttConnected.set(0);
        this.retained.detach();
        this.deps.session?.detach();
        this.pump.detach();
        this.client = undefined;
      }
      client.end(true);
      if (!this.stopped) this.reconnectTimer = setTimeout(() => this.reconnect(), retryNow ? 0 : this.cfg.reconnect_ms);
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

  /** A retained message kept current across reconnects (e.g. the inference stage's status). */
  setRetained(topic: string, payload: string): void {
    this.retained.set(topic, payload);
  }

  /** Latest state of a device; published retained now if connected, else on the next connect. */
  setDeviceStatus(device: string, s: HealthSnapshot): void {
    this.retained.setDeviceStatus(device, s);
    this.deps.session?.deviceStatus(device, s);
  }

  /** A device left the configuration: its retained status is cleared (an empty retained message). */
  removeDevice(device: string): void {
    this.retained.removeDevice(device);
  }

  /** Extra fields of the retained gateway status ("online") message, e.g. the last reload's outcome. */
  setGatewayStatus(extra: Record<string, unknown>): void {
    this.retained.setGatewayStatus(extra);
  }

  get encoding(): string {
    return this.deps.session ? 'sparkplug' : 'json';
  }

  status(): OutputStatus {
    const pump = this.pump;
    const base = { delivered: pump.delivered, lastDeliveryMs: pump.lastDeliveryMs };
    if (this.connected) return { state: 'up', ...base };
    const refusal = this.protocol.refusal;
    return { state: 'down', reason: refusal ? `the broker refuses the connection (${refusal})` : 'not connected to the broker', ...base };
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Milliseconds since the broker was last reachable (since start if never), 0 while connected. */
  get awayMs(): number {
    return this.awaySince === undefined ? 0 : Date.now() - this.awaySince;
  }

  /**
   * How long the broker has acknowledged nothing while rows were waiting for it: from the later of
   * the last acknowledged delivery (the publisher's start if none) and the oldest waiting row's
   * time, to now; 0 without a backlog. A broker that takes connections but never acknowledges, or
   * drops every connection before it does, stalls here while `awayMs` stays small (judge.ts).
   */
  stall(waiting: { backlog: number; oldestTs?: number }): { ms: number; lost: number } {
    if (waiting.backlog <= 0) return { ms: 0, lost: 0 };
    const since = Math.max(this.pump.lastDeliveryMs ?? this.startedAt, waiting.oldestTs ?? 0);
    return { ms: Math.max(0, Date.now() - since), lost: this.losses.filter((t) => t >= since).length };
  }

  /** Tells the pump there is new data. Cheap; called after every append. */
  wake(): void {
    if (this.connected) this.pump.wake();
  }

  /**
   * Resolves true when the buffer is empty and nothing is in flight, false after `ms`. Used on
   * shutdown. Not connected: a reconnect within the deadline still gets everything out (the broker
   * may be just back, as after a network blip); otherwise the samples wait in the buffer for next time.
   */
  drain(ms: number): Promise<boolean> {
    return this.pump.drain(ms);
  }

  /** Publishes a retained "offline" (the Last Will is not sent on a clean disconnect) and closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (client && this.connected) {
      if (this.deps.session) await withDeadline(this.deps.session.stopping(client), 2000, () => new Error('no PUBACK for NDEATH')).catch(() => undefined);
      await withDeadline(this.retained.stopped(client), 2000, () => new Error('no PUBACK for the offline status')).catch(() => undefined);
    }
    this.pump.close();
    this.retained.detach();
    this.connected = false;
    this.client = undefined;
    if (client) {
      // A graceful end sends DISCONNECT, which tells the broker to discard the Last Will; a forced
      // one would let the Will overwrite the retained "stopped" status. Force only if it hangs.
      // Sparkplug over MQTT 5: DISCONNECT with reason 0x04 (with Will), so the broker sends NDEATH too.
      const opts = this.deps.session && client.options.protocolVersion === 5 ? { reasonCode: 4 } : undefined;
      await withDeadline(client.endAsync(false, opts), 2000, () => new Error('DISCONNECT took too long')).catch(() => undefined);
      if (!client.disconnected) client.end(true);
    }
  }
}
