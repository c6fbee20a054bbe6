// Security by default: the gateway refuses a broker whose certificate its CA did not sign, and
// says why in its log; nothing is published.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { createCa } from '../../src/tls/certs.js';
import { makeGateway, type TestGateway } from '../helpers/gateway.js';

let broker: Mosquitto;
let tg: TestGateway;
const lines: string[] = [];
let onLine: (() => void) | undefined;

beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await tg?.cleanup();
  await broker?.stop();
});

describe('broker certificate verification', () => {
  it('does not connect to a broker signed by another CA, and logs the certificate error', async () => {
    const stranger = createCa('some other CA');
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...chunk.toString().trim().split('\n'));
        onLine?.();
        cb();
      },
    });
    const devices =
      'version: 1\ndevices:\n  - name: d\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: 1 }\n    points:\n      - { name: p, address: 0 }\n';
    tg = makeGateway(
      `version: 1
site: s
gateway_id: g
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  reconnect_ms: 60000
  tls: { ca: wrong-ca.pem, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }
buffer: { path: buffer.db }
health: { enabled: false }
`,
      devices,
      pino({ level: 'warn' }, sink),
      (dir) => writeFileSync(join(dir, 'wrong-ca.pem'), stranger.cert),
    );
    await tg.gw.start();
    const error = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no mqtt error logged:\n${lines.join('\n')}`)), 15_000);
      onLine = () => {
        const hit = lines.find((l) => l.includes('mqtt error'));
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        }
      };
      onLine();
    });
    expect(error).toMatch(/certificate/i);
    const connected = await tg.gw.metrics.mqttConnected.get();
    expect(connected.values[0]?.value ?? 0).toBe(0);
  });
});
