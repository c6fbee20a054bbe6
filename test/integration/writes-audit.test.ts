// Every write attempt is an audit line (issue 33): the log's de-duplication of repeated warnings
// must not swallow refused commands, and what a sender put in a command is repeated bounded — a
// 2 MB value sent to a uint16 point is refused with its first characters and its size, in the
// result and in the log line. The gateway's log goes through the daemon's own sink (src/log.ts).
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_CHARS, REASON_CHARS } from '../../src/core/bounded.js';
import { LogSink } from '../../src/log.js';
import { start as startModbus, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { Commander } from '../helpers/commander.js';
import { gatewayYaml, makeGateway, type TestGateway } from '../helpers/gateway.js';

let broker: Mosquitto;
let sim: ModbusSimulator;
let tg: TestGateway;
let scada: Commander;
const lines: Record<string, unknown>[] = [];
const raw: string[] = [];

beforeAll(async () => {
  broker = await startMosquitto();
  sim = await startModbus({ registers: [{ area: 'holding', address: 0, value: 1 }] });
  const sink = new LogSink({
    format: 'json',
    journald: false,
    write: (s) => {
      raw.push(s);
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  const log = pino({ level: 'info', formatters: { level: (label) => ({ level: label }) } }, sink);
  tg = makeGateway(
    gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }),
    `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n      - { name: ro, address: 0, type: uint16 }\n      - { name: sp, address: 1, type: uint16, writable: true, write_min_interval_ms: 0 }\n`,
    log,
  );
  await tg.gw.start();
  await tg.gw.commandsReady();
  scada = await Commander.connect(broker);
  await scada.seen.waitFor((m) => m.topic === 's/g/plc/ro', 15_000, 'a first sample');
}, 60_000);

afterAll(async () => {
  await scada?.close();
  await tg?.cleanup();
  await sim?.stop();
  await broker?.stop();
});

const audits = () => lines.filter((l) => l.audit === 'write');

describe('the write audit', () => {
  it('500 refused commands in a burst: 500 results and 500 audit lines, one per request id', async () => {
    const before = audits().length;
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) ids.push(await scada.send('plc', 'ro', { value: 1 }));
    const results = await Promise.all(ids.map((id) => scada.result(id, 30_000)));
    expect(results.every((r) => r.json.outcome === 'refused')).toBe(true);
    const got = audits().slice(before);
    expect(got.length).toBe(500);
    expect(new Set(got.map((l) => l.request_id))).toEqual(new Set(ids));
    expect(got.every((l) => l.level === 'warn' && l.outcome === 'refused' && l.repeated === undefined)).toBe(true);
  }, 60_000);

  it('a 2 MB value: refused, and the result and the audit line carry its first characters and its size, not the value', async () => {
    const huge = 'x'.repeat(2 << 20);
    const id = await scada.send('plc', 'sp', { value: huge });
    const r = (await scada.result(id)).json;
    expect(r.outcome).toBe('refused');
    const echoed = r.value as string;
    expect(echoed.startsWith(`"${'x'.repeat(ECHO_CHARS - 1)}`)).toBe(true);
    expect(echoed).toMatch(/… \(2097154 characters\)$/);
    expect((r.reason as string).length).toBeLessThanOrEqual(REASON_CHARS + 40);
    expect(JSON.stringify(r).length).toBeLessThan(2 * (ECHO_CHARS + REASON_CHARS) + 1000);
    const line = raw.find((s) => s.includes(id))!;
    expect(line).toBeDefined();
    expect(line.length).toBeLessThan(2 * (ECHO_CHARS + REASON_CHARS) + 1000);
    console.log(`2 MB command: result ${JSON.stringify(r).length} bytes, audit line ${line.length} bytes`);
  });
});
