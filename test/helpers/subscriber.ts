// A test subscriber that records every message and lets tests wait for events, not sleeps.
import mqtt, { type MqttClient } from 'mqtt';
import type { TestBroker } from '../../simulators/mqtt-broker/other-brokers.js';

export interface Message {
  topic: string;
  text: string;
  json: Record<string, unknown>;
  retain: boolean;
  /** The broker's DUP flag: it sent this message before on an earlier connection of this session. */
  dup: boolean;
  at: number;
}

export class Subscriber {
  readonly messages: Message[] = [];
  /** When each connection of this subscriber was accepted (CONNACK), the first one included. */
  readonly connectedAt: number[] = [];
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private constructor(private readonly client: MqttClient) {
    this.connectedAt.push(Date.now());
    client.on('connect', () => this.connectedAt.push(Date.now()));
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        /* not JSON */
      }
      const m = { topic, text, json, retain: packet.retain, dup: packet.dup, at: Date.now() };
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    });
  }

  /**
   * `persistent`: a session that survives disconnects and broker restarts (clean: false, fixed
   * client id, reconnecting), so nothing published while this subscriber is away is missed.
   */
  static async connect(
    broker: Pick<TestBroker, 'url' | 'caPem' | 'client'>,
    topic: string,
    persistent = false,
    /** mqtt.js's default, 3.1.1; with 5 a persistent session is given an expiry (MQTT 5 ends it at disconnect otherwise). */
    protocolVersion: 4 | 5 = 4,
  ): Promise<Subscriber> {
    const client = mqtt.connect(broker.url, {
      ca: broker.caPem,
      cert: broker.client.cert,
      key: broker.client.key,
      reconnectPeriod: persistent ? 100 : 0,
      clean: !persistent,
      clientId: `test-sub-${Math.random().toString(16).slice(2)}`,
      protocolVersion,
      ...(persistent && protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0xffffffff } } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    // Listening before subscribing: a broker may send the retained messages in the same read as the
    // SUBACK (NATS does), and they would be emitted before subscribeAsync's continuation runs.
    const sub = new Subscriber(client);
    await client.subscribeAsync(topic, { qos: 1 });
    return sub;
  }

  /** The first message (already received or future) that matches; rejects after `ms`. */
  waitFor(pred: (m: Message) => boolean, ms = 15_000, what = 'a matching message'): Promise<Message> {
    const hit = this.messages.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = (m: Message) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Waits for a message that arrives after now. */
  next(pred: (m: Message) => boolean, ms?: number, what?: string): Promise<Message> {
    const since = this.messages.length;
    return this.waitFor((m) => this.messages.indexOf(m) >= since && pred(m), ms, what);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
