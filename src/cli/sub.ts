// `edgeferry sub`: a small TLS subscriber, so the demo's data can be seen without mosquitto_sub.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { EXIT, type CliIo } from './io.js';

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
      io.out(`${topic} ${payload.toString()}`);
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
