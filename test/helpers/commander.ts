// A plant system that writes through the gateway: publishes commands (MQTT 5, so that expiry,
// response topic and user properties can be set) and waits for their results.
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { KeyPair } from '../../src/tls/certs.js';
import type { TestBroker } from '../../simulators/mqtt-broker/other-brokers.js';
import { Subscriber, type Message } from './subscriber.js';

export class Commander {
  private n = 0;
  private constructor(
    private readonly client: MqttClient,
    /** Everything under the gateway's topics (data, results), recorded. */
    readonly seen: Subscriber,
  ) {}

  /** protocolVersion 4 for brokers that speak only MQTT 3.1.1 (no expiry or user properties then). */
  static async connect(broker: Pick<TestBroker, 'url' | 'caPem' | 'client'>, as?: KeyPair, protocolVersion: 4 | 5 = 5): Promise<Commander> {
    const client = mqtt.connect(broker.url, {
      ca: broker.caPem,
      cert: (as ?? broker.client).cert,
      key: (as ?? broker.client).key,
      protocolVersion,
      reconnectPeriod: 0,
      clientId: `test-scada-${Math.random().toString(16).slice(2)}`,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return new Commander(client, await Subscriber.connect(broker, 's/g/#', false, protocolVersion));
  }

  /** Publishes `body` (an id is added) to device/point's command topic; resolves with the id. */
  async send(device: string, point: string, body: Record<string, unknown>, opts: IClientPublishOptions = {}): Promise<string> {
    const id = `r${++this.n}-${Math.random().toString(16).slice(2, 6)}`;
    await this.client.publishAsync(`s/g/${device}/${point}/set`, JSON.stringify({ id, ...body }), { qos: 1, ...opts });
    return id;
  }

  /** The result of request `id` on the result topic. */
  result(id: string, ms = 15_000): Promise<Message> {
    return this.seen.waitFor((m) => m.topic.endsWith('/set/result') && m.json.id === id, ms, `the result of ${id}`);
  }

  /** Sends and waits for the result. */
  async write(device: string, point: string, body: Record<string, unknown>, opts?: IClientPublishOptions): Promise<Record<string, unknown>> {
    return (await this.result(await this.send(device, point, body, opts))).json;
  }

  /** Subscribes this client to a topic (a response topic); messages arrive via onMessage. */
  async listen(topic: string, onMessage: (payload: Buffer, correlation?: Buffer) => void): Promise<void> {
    this.client.on('message', (t, payload, packet) => {
      if (t === topic) onMessage(payload, packet.properties?.correlationData);
    });
    await this.client.subscribeAsync(topic, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.seen.close();
    await this.client.endAsync(true);
  }
}
