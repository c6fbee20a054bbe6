// Whole-pipeline benchmark: N simulated Modbus TCP PLCs → the gateway (a child process running
// `edgeferry run`, so its CPU and memory are its own) → a real mosquitto over mutual TLS → a
// subscriber here. Prints samples/s, gateway CPU and RSS, and device→broker latency p50/p99, with
// a baseline measured in the same run: the same subscriber receiving messages published straight
// to the broker, which is the floor any gateway's latency sits on.
//
//   npm run bench -- --plcs 20 --points 50 --interval 100 --seconds 20 [--sync normal]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from '../src/core/script-args.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../simulators/modbus/index.js';
import { brokerBaseline, connectClient, machine, pct, procStat, sineRegisters } from './lib.js';

const values = scriptArgs('bench', 'Gateway pipeline: simulated PLCs to a broker.', {
  plcs: { type: 'string', default: '10' },
  points: { type: 'string', default: '50' },
  interval: { type: 'string', default: '100' },
  seconds: { type: 'string', default: '15' },
  warmup: { type: 'string', default: '3' },
  sync: { type: 'string', default: 'full' },
});
const plcs = Number(values.plcs);
const points = Number(values.points);
const interval = Number(values.interval);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const cli = fileURLToPath(new URL('../src/main.js', import.meta.url));

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-bench-'));
  const broker = await startMosquitto({ unboundedQueues: true });
  const sims: ModbusSimulator[] = [];
  for (let i = 0; i < plcs; i++) {
    sims.push(
      await startSim({
        registers: sineRegisters(points),
      }),
    );
  }
  const devices = sims.map(
    (s, i) => `  - name: plc-${i}
    driver: modbus_tcp
    poll_interval_ms: ${interval}
    connection: { host: 127.0.0.1, port: ${s.port} }
    points:
${Array.from({ length: points }, (_, k) => `      - { name: p${k}, address: ${k * 2}, type: float32 }`).join('\n')}`,
  );
  writeFileSync(join(dir, 'devices.yaml'), `version: 1\ndevices:\n${devices.join('\n')}\n`);
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `version: 1
site: bench
gateway_id: gw
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }
buffer: { path: buffer.db, synchronous: ${values.sync} }
logging: { level: warn }
health: { enabled: false }
`,
  );

  const sub = await connectClient(broker);
  await sub.subscribeAsync('bench/#', { qos: 1 });
  const baseLat = await brokerBaseline(broker, sub);

  // The gateway under test.
  const lat: number[] = [];
  let received = 0;
  let measuring = false;
  sub.on('message', (topic, payload) => {
    if (!measuring || topic.includes('/status')) return;
    received++;
    const ts = /"ts":"([^"]+)"/.exec(payload.toString())?.[1];
    if (ts) lat.push(Date.now() - Date.parse(ts));
  });
  const gw = spawn(process.execPath, [cli, 'run', '--config', join(dir, 'gateway.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const s0 = procStat(gw.pid!);
  const t0 = performance.now();
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(procStat(gw.pid!).rssKb), 500);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  const s1 = procStat(gw.pid!);
  const elapsed = (performance.now() - t0) / 1000;
  measuring = false;

  const exited = new Promise((r) => gw.once('exit', r));
  gw.kill('SIGTERM');
  await exited;
  await sub.endAsync();
  await Promise.all(sims.map((s) => s.stop()));
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });

  const expected = (plcs * points * 1000) / interval;
  const cpu = (s1.cpuS - s0.cpuS) / elapsed;
  const b50 = pct(baseLat, 50);
  const b99 = pct(baseLat, 99);
  const g50 = pct(lat, 50);
  const g99 = pct(lat, 99);
  console.log(
    `edgeferry pipeline bench — ${plcs} PLCs × ${points} float32 points every ${interval} ms (offered ${expected.toFixed(0)} samples/s), ${seconds} s measured after ${warmup} s warm-up, buffer synchronous=${values.sync}`,
  );
  console.log(machine());
  console.log(
    `throughput      ${(received / elapsed).toFixed(0)} samples/s at the subscriber (${((received / elapsed / expected) * 100).toFixed(1)} % of offered)`,
  );
  console.log(`gateway CPU     ${(cpu * 100).toFixed(1)} % of one core`);
  console.log(`gateway RSS     median ${(pct(rss, 50) / 1024).toFixed(1)} MiB, max ${(Math.max(...rss) / 1024).toFixed(1)} MiB`);
  console.log(`latency         poll→subscriber p50 ${g50.toFixed(1)} ms, p99 ${g99.toFixed(1)} ms (n=${lat.length})`);
  console.log(`baseline        direct publish→subscriber p50 ${b50.toFixed(2)} ms, p99 ${b99.toFixed(2)} ms (n=${baseLat.length})`);
  console.log(`ratio           gateway/baseline p50 ×${(g50 / b50).toFixed(1)}, p99 ×${(g99 / b99).toFixed(1)}`);
}

await main();
