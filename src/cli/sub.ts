// `edgeferry sub`: a small TLS subscriber, so the demo's data can be seen without mosquitto_sub.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { EXIT, type CliIo } from './io.js';
import { decodePayload, DT_NAME, type Metric } from '../publish/sparkplug/payload.js';

/**
 * A Sparkplug payload as one readable JSON line, as a host would see it: seq, time, and each metric
 * by name or alias with its datatype name, value, and the historical/null flags and properties.
 */
export function sparkplugText(payload: Buffer): string {
  try {
    const p = decodePayload(payload);
    const metric = (m: Metric) => {
      const value = m.isNull ? null : (m.floatValue ?? m.doubleValue ?? m.booleanValue ?? m.stringValue ?? m.longValue ?? m.intValue ?? null);
      const out: Record<string, unknown> = m.name !== undefined ? { name: m.name } : {};
      if (m.alias !== undefined) out.alias = m.alias;
      if (m.datatype !== undefined) out.type = DT_NAME[m.datatype] ?? m.datatype;
      out.value = value;
      if (m.timestamp !== undefined) out.ts = new Date(m.timestamp).toISOString();
      if (m.isHistorical) out.historical = true;
      if (m.properties)
        out.properties = Object.fromEntries(m.properties.keys.map((k, i) => [k, m.properties!.values[i]?.intValue ?? m.properties!.values[i]?.stringValue]));
      return out;
    };
    const ts = p.timestamp === undefined ? undefined : new Date(p.timestamp).toISOString();
    return JSON.stringify({ seq: p.seq, ts, metrics: p.metrics.map(metric) });
  } catch (err) {
    return `(not a Sparkplug B payload: ${(err as Error).message})`;
  }
}

export async function runSubscribe(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      topic: { type: 'string', default: '#' },
      count: { type: 'string' },
      sparkplug: { type: 'boolean', default: false },
    },
  });
  if (!values.url) {
    io.err('edgeferry sub: expected --url mqtts://host:port, got none');
    return EXIT.USAGE;
  }
  const client = mqtt.connect(values.url, {
    ca: values.ca ? readFileSync(values.ca) : undefined,
    cert: values.cert ? readFileSync(values.cert) : undefined,
    key: values.key ? readFileSync(values.key) : undefined,
    rejectUnauthorized: true,
    reconnectPeriod: 1000,
  });
  const limit = values.count ? Number(values.count) : Infinity;
  let seen = 0;
  const done = new Promise<void>((resolve) => {
    client.on('message', (topic, payload) => {
      if (seen >= limit) return;
      io.out(
        `${topic} ${values.sparkplug && topic.startsWith('spBv1.0/') && !topic.startsWith('spBv1.0/STATE/') ? sparkplugText(payload) : payload.toString()}`,
      );
      if (++seen >= limit) resolve();
    });
    void io.stopRequested.then(resolve);
  });
  client.on('error', (err) => io.err(`edgeferry sub: ${err.message}`));
  client.on('connect', () => client.subscribe(values.topic, { qos: 1 }));
  await done;
  await client.endAsync();
  return EXIT.OK;
}
