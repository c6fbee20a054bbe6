// A Sparkplug host's eye view for tests: every message under spBv1.0/, decoded with the Payload
// message of the specification's sparkplug_b.proto (the protobufjs build in Eclipse Tahu's
// sparkplug-payload), not with the gateway's own payload code.
import { createRequire } from 'node:module';
import mqtt, { type MqttClient } from 'mqtt';
import type { RegisterSpec } from '../../simulators/modbus/memory.js';
import type { Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';

interface ProtoPayload {
  encode(p: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
  toObject(m: unknown, o: { longs: StringConstructor }): unknown;
}
const Payload = (
  createRequire(import.meta.url)('sparkplug-payload/lib/sparkplugPayloadProto.js') as {
    org: { eclipse: { tahu: { protobuf: { Payload: ProtoPayload } } } };
  }
).org.eclipse.tahu.protobuf.Payload;

/** The Sparkplug tests' PLC: a float32, an int16, a uint64 beyond 2^53, a string and a coil. */
export const PLANT_REGISTERS: RegisterSpec[] = [
  { area: 'holding', address: 0, type: 'float32', value: 21.5 },
  { area: 'holding', address: 2, type: 'int16', value: -123 },
  { area: 'holding', address: 3, type: 'uint64', value: 2n ** 60n },
  { area: 'holding', address: 7, type: 'string', count: 2, value: 'AB' },
  { area: 'coil', address: 1, value: true },
];

/** Two devices on that PLC (press: every type; pump: unit 2), quick to go down and come back. */
export function plantDevicesYaml(port: number, pollMs: number, tempExtra = ''): string {
  const link = 'link: { probe_interval_ms: 300, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 300 }';
  return `version: 1
devices:
  - name: press
    driver: modbus_tcp
    poll_interval_ms: ${pollMs}
    connection: { host: 127.0.0.1, port: ${port}, timeout_ms: 300 }
    ${link}
    points:
      - { name: temp, address: 0, type: float32, unit: degC${tempExtra} }
      - { name: speed, address: 2, type: int16, scale: 0.1 }
      - { name: count, address: 3, type: uint64 }
      - { name: recipe, address: 7, type: string, count: 2 }
      - { name: run, area: coil, address: 1, type: bool }
  - name: pump
    driver: modbus_tcp
    poll_interval_ms: ${pollMs}
    connection: { host: 127.0.0.1, port: ${port}, unit_id: 2, timeout_ms: 300 }
    ${link}
    points:
      - { name: flow, address: 0, type: float32 }
`;
}

/** A host's command payload (NCMD, DCMD). */
export function commandPayload(metrics: Record<string, unknown>[]): Buffer {
  return Buffer.from(Payload.encode({ timestamp: Date.now(), metrics }).finish());
}

export interface SpMetric {
  name?: string;
  alias?: string;
  timestamp?: string;
  datatype?: number;
  isHistorical?: boolean;
  isNull?: boolean;
  properties?: { keys: string[]; values: { type: number; intValue?: number; stringValue?: string }[] };
  intValue?: number;
  longValue?: string;
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
}

export interface SpMessage {
  topic: string;
  verb: string;
  device?: string;
  qos: number;
  retain: boolean;
  seq?: number;
  timestamp?: number;
  metrics: SpMetric[];
  at: number;
}

export class SparkplugWatcher {
  readonly messages: SpMessage[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const [, , verb, , device] = topic.split('/');
      if (verb === undefined || topic.startsWith('spBv1.0/STATE/')) return;
      const p = Payload.toObject(Payload.decode(payload), { longs: String }) as { seq?: string; timestamp?: string; metrics?: SpMetric[] };
      this.messages.push({
        topic,
        verb,
        device,
        qos: packet.qos,
        retain: packet.retain,
        seq: p.seq === undefined ? undefined : Number(p.seq),
        timestamp: p.timestamp === undefined ? undefined : Number(p.timestamp),
        metrics: p.metrics ?? [],
        at: Date.now(),
      });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(broker: Mosquitto, group: string): Promise<SparkplugWatcher> {
    const client = mqtt.connect(broker.url, {
      ca: broker.caPem,
      cert: broker.client.cert,
      key: broker.client.key,
      reconnectPeriod: 0,
      clientId: `test-host-${Math.random().toString(16).slice(2)}`,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    // Listening before subscribing: retained messages may come in the same read as the SUBACK.
    const watcher = new SparkplugWatcher(client);
    await client.subscribeAsync(`spBv1.0/${group}/#`, { qos: 1 });
    return watcher;
  }

  /** Resolves once `pred` holds over the messages seen (checked on every new one); rejects after `ms`. */
  until(pred: (all: SpMessage[]) => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      const check = () => {
        if (pred(this.messages)) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Publishes as a host would (NCMD, DCMD, STATE). */
  async publish(topic: string, payload: Buffer | string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
