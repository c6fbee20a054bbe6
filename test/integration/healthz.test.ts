// /healthz tells the truth: 200 with ok: true while the gateway delivers (publishing, or buffering
// within bounds), 503 with ok: false and the reasons when the broker has been away longer than
// health.broker_away_s or a critical device is down — and 200 again when they are back.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { makeGateway, type TestGateway } from '../helpers/gateway.js';

let broker: Mosquitto;
let plc: ModbusSimulator;
let tg: TestGateway;

interface Healthz {
  ok: boolean;
  reasons: string[];
  mqtt: { state: string; away_s: number };
  buffer: { depth: number; bytes: number; max_bytes: number; fill: number };
  devices: Record<string, string>;
}
const healthz = async () => {
  const res = await fetch(`http://127.0.0.1:${tg.gw.healthPort}/healthz`);
  return { status: res.status, body: (await res.json()) as Healthz };
};
/** Polls /healthz until `ok` holds (events, not fixed sleeps: the gateway decides when). */
async function until(what: string, ok: (h: { status: number; body: Healthz }) => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  let last: { status: number; body: Healthz } | undefined;
  while (Date.now() < end) {
    last = await healthz();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last /healthz: ${JSON.stringify(last)}`);
}

beforeAll(async () => {
  broker = await startMosquitto();
  plc = await startSim({ registers: [{ area: 'holding', address: 0, type: 'uint16', value: 7 }] });
  tg = makeGateway(
    `version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  reconnect_ms: 200\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nhealth: { port: 0, broker_away_s: 2, critical_devices: [press] }\n`,
    `version: 1\ndevices:\n  - name: press\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${plc.port}, timeout_ms: 300 }\n    link: { probe_interval_ms: 500, failures_before_down: 1 }\n    points:\n      - { name: level, address: 0 }\n`,
  );
  await tg.gw.start();
});
afterAll(async () => {
  await tg?.cleanup();
  await plc?.stop();
  await broker?.stop();
});

describe('/healthz', () => {
  it('answers 200 ok while publishing; 503 with the reason once the broker is away past broker_away_s; 200 again when it is back', async () => {
    const up = await until('ok', (h) => h.status === 200 && h.body.mqtt.state === 'connected' && h.body.devices.press === 'up');
    expect(up.body).toMatchObject({ ok: true, reasons: [] });
    expect(up.body.buffer.max_bytes).toBe(1073741824);

    await broker.kill();
    // Away, but within the limit: still buffering within bounds, so still healthy.
    const away = await until('disconnected', (h) => h.body.mqtt.state === 'disconnected');
    expect(away.status).toBe(200);
    const failing = await until('503', (h) => h.status === 503);
    expect(failing.body.ok).toBe(false);
    expect(failing.body.mqtt.away_s).toBeGreaterThanOrEqual(2);
    expect(failing.body.reasons).toEqual([expect.stringMatching(/^broker unreachable for \d+ s \(limit 2 s\): data is only being buffered$/)]);

    await broker.restart();
    const back = await until('200 again', (h) => h.status === 200);
    expect(back.body).toMatchObject({ ok: true, reasons: [], mqtt: { state: 'connected', away_s: 0 } });
  }, 60_000);

  it('answers 503 while a critical device is down, naming it', async () => {
    plc.script({ kind: 'silent' });
    const down = await until('press down', (h) => h.status === 503);
    expect(down.body.reasons).toEqual(['critical device press is down']);
    plc.clear();
    await until('press up', (h) => h.status === 200 && h.body.devices.press === 'up');
  }, 60_000);

  it('refuses what it has no use for without reading it: a body (413), another method (405), huge headers (431), and closes those connections', async () => {
    const port = tg.gw.healthPort!;
    // A 2 MB body announced and never sent: answered at once, not waited for.
    const raw = async (head: string) => {
      const sock = connect(port, '127.0.0.1');
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString()));
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      sock.write(head);
      await closed;
      return got.split('\r\n')[0];
    };
    expect(await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n')).toBe('HTTP/1.1 413 Payload Too Large');
    expect(await raw('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect((await healthz()).status).toBe(200);
  });
});
