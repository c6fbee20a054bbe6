// Report by exception for Sparkplug DDATA on the demo plant: `edgeferry demo` (its simulated PLCs,
// OPC UA server and embedded broker) run as a Sparkplug edge node with report_by_exception off and
// on, alternating run by run. A host subscribed to the group holds every metric's value (births,
// then DDATA) and counts the DDATA values equal to the one it held already (value and quality).
// Prints per mode: DDATA messages and values per second, and the share of unchanged values.
//
//   npm run bench:sparkplug-rbe -- [--seconds 25] [--rounds 2]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { scriptArgs } from '../src/core/script-args.js';
import { stopChild } from '../simulators/stop-child.js';
import { machine, pct } from './lib.js';

const values = scriptArgs('bench:sparkplug-rbe', 'Share of unchanged values in Sparkplug DDATA on the demo plant, report by exception off and on.', {
  seconds: { type: 'string', default: '25' },
  rounds: { type: 'string', default: '2' },
});
const SECONDS = Number(values.seconds);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const main = join(root, 'dist/src/main.js');

interface Metric {
  name?: string;
  alias?: { toString(): string };
  isNull?: boolean;
  intValue?: number;
  longValue?: { toString(): string };
  floatValue?: number;
  doubleValue?: number;
  booleanValue?: boolean;
  stringValue?: string;
  isHistorical?: boolean;
  properties?: { keys: string[]; values: { intValue?: number }[] };
}
const Payload = (
  createRequire(import.meta.url)('sparkplug-payload/lib/sparkplugPayloadProto.js') as {
    org: { eclipse: { tahu: { protobuf: { Payload: { decode(b: Uint8Array): { metrics: Metric[] } } } } } };
  }
).org.eclipse.tahu.protobuf.Payload;

const said = (m: Metric) => {
  const q = m.properties?.values[m.properties.keys.indexOf('Quality')]?.intValue ?? 192;
  const v = m.isNull ? null : (m.floatValue ?? m.doubleValue ?? m.booleanValue ?? m.stringValue ?? m.intValue ?? m.longValue?.toString());
  return `${q}:${JSON.stringify(v)}`;
};

async function run(rbe: boolean): Promise<{ messages: number; values: number; unchanged: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-rbe-bench-'));
  try {
    const demo = readFileSync(join(root, 'config/demo.yaml'), 'utf8')
      .replace('  - demo-devices.yaml', `  - ${join(root, 'config/demo-devices.yaml')}`)
      .replace('model_dir: ../models/el-defect', `model_dir: ${join(root, 'models/el-defect')}`)
      .replace('mqtt:\n', `mqtt:\n  format: sparkplug\n  sparkplug: { group_id: demo, report_by_exception: ${rbe} }\n`);
    writeFileSync(join(dir, 'gateway.yaml'), demo);
    const child = spawn(process.execPath, [main, 'demo', '--config', join(dir, 'gateway.yaml'), '--seconds', String(SECONDS + 10)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const where = await new Promise<{ port: number; ca: string }>((res, rej) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = / -p (\d+) --cafile (\S+)/.exec(err);
        if (m) res({ port: Number(m[1]), ca: m[2]! });
      });
      child.once('exit', () => rej(new Error(`the demo exited:\n${err}`)));
    });
    const host = await mqtt.connectAsync(`mqtts://127.0.0.1:${where.port}`, { ca: readFileSync(where.ca), protocolVersion: 4, reconnectPeriod: 0 });
    const held = new Map<string, string>();
    const names = new Map<string, string>();
    let messages = 0;
    let count = 0;
    let unchanged = 0;
    let counting = false;
    host.on('message', (topic, payload) => {
      const [, , verb, , device] = topic.split('/');
      const p = Payload.decode(payload);
      if (verb === 'DBIRTH') {
        for (const m of p.metrics) {
          names.set(`${device}#${m.alias?.toString()}`, m.name!);
          held.set(`${device}/${m.name}`, said(m));
        }
      }
      if (verb !== 'DDATA') return;
      if (counting) messages++;
      for (const m of p.metrics) {
        if (m.isHistorical) continue;
        const key = `${device}/${names.get(`${device}#${m.alias?.toString()}`)}`;
        const now = said(m);
        if (counting) {
          count++;
          if (held.get(key) === now) unchanged++;
        }
        held.set(key, now);
      }
    });
    await host.subscribeAsync('spBv1.0/demo/#', { qos: 0 });
    // Born after the subscription: a rebirth gives this host every metric's value.
    await host.publishAsync(
      'spBv1.0/demo/NCMD/gw-demo',
      Buffer.from(
        (
          createRequire(import.meta.url)('sparkplug-payload/lib/sparkplugPayloadProto.js') as {
            org: { eclipse: { tahu: { protobuf: { Payload: { encode(p: unknown): { finish(): Uint8Array } } } } } };
          }
        ).org.eclipse.tahu.protobuf.Payload.encode({
          timestamp: Date.now(),
          metrics: [{ name: 'Node Control/Rebirth', datatype: 11, booleanValue: true }],
        }).finish(),
      ),
    );
    await new Promise((r) => setTimeout(r, 3000)); // the plant settles (first values, births)
    counting = true;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    counting = false;
    const seconds = (Date.now() - t0) / 1000;
    await host.endAsync(true);
    await stopChild(child);
    return { messages, values: count, unchanged, seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Record<'off' | 'on', { share: number[]; msgs: number[]; vals: number[] }> = {
  off: { share: [], msgs: [], vals: [] },
  on: { share: [], msgs: [], vals: [] },
};
console.log(`bench:sparkplug-rbe — the demo plant as a Sparkplug edge node, ${SECONDS} s per run, ${values.rounds} rounds, ${machine()}`);
for (let round = 0; round < Number(values.rounds); round++) {
  for (const mode of round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
    const r = await run(mode === 'on');
    const share = r.values ? r.unchanged / r.values : NaN;
    results[mode].share.push(share);
    results[mode].msgs.push(r.messages / r.seconds);
    results[mode].vals.push(r.values / r.seconds);
    console.log(
      `  round ${round + 1} rbe ${mode}: ${r.messages} DDATA (${(r.messages / r.seconds).toFixed(1)}/s), ${r.values} live values (${(r.values / r.seconds).toFixed(1)}/s), ${r.unchanged} unchanged (${(share * 100).toFixed(1)}%)`,
    );
  }
}
for (const mode of ['off', 'on'] as const) {
  const x = results[mode];
  console.log(
    `report_by_exception ${mode}: unchanged values in DDATA median ${(pct(x.share, 50) * 100).toFixed(1)}% (max ${(Math.max(...x.share) * 100).toFixed(1)}%), DDATA ${pct(x.msgs, 50).toFixed(1)}/s, values ${pct(x.vals, 50).toFixed(1)}/s`,
  );
}
console.log(
  `values per second, on/off: ×${(pct(results.on.vals, 50) / pct(results.off.vals, 50)).toFixed(2)}; DDATA per second: ×${(pct(results.on.msgs, 50) / pct(results.off.msgs, 50)).toFixed(2)}`,
);
