// The floor of a message per tag: what mqtt.js alone costs to publish the seed plant's message
// rate at QoS 1 to a local mosquitto — no driver, no buffer, no gateway — so that the gateway's
// point payload (`bench:plant --payload point`) can be read against it. One client in this
// process publishes bursts of point-sized messages every 50 ms (what the phase slots do) and
// counts PUBACKs; the figure is this process's own CPU over the measured seconds. TLS and
// plaintext alternate round by round.
//
//   npm run bench:mqtt-floor -- [--rate 6850] [--rounds 2] [--seconds 20] [--warmup 5]
import { performance } from 'node:perf_hooks';
import { scriptArgs } from '../src/core/script-args.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { connectClient, machine } from './lib.js';

const values = scriptArgs('bench:mqtt-floor', 'mqtt.js alone at the seed plant message rate: cores and µs per QoS 1 message.', {
  rate: { type: 'string', default: '6850' },
  rounds: { type: 'string', default: '2' },
  seconds: { type: 'string', default: '20' },
  warmup: { type: 'string', default: '5' },
});
const RATE = Number(values.rate);
const SLOTS = 20; // bursts a second
const BODY = '{"seq":123456,"ts":"2026-12-07T04:00:00.000Z","value":21.780000686645508,"quality":"good","channel":"tcp://127.0.0.1:40001"}';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function round(tls: boolean): Promise<{ cores: number; usPerMsg: number; acked: number }> {
  const broker = await startMosquitto(tls ? {} : { plaintext: true });
  const client = await connectClient(broker);
  let acked = 0;
  let n = 0;
  const burst = Math.round(RATE / SLOTS);
  const timer = setInterval(() => {
    for (let i = 0; i < burst; i++, n++) client.publish(`ef/gw/mb-${n % 137}/p${n % 50}`, BODY, { qos: 1 }, () => acked++);
  }, 1000 / SLOTS);
  try {
    await sleep(Number(values.warmup) * 1000);
    const cpu0 = process.cpuUsage();
    const acked0 = acked;
    const t0 = performance.now();
    await sleep(Number(values.seconds) * 1000);
    const cpu = process.cpuUsage(cpu0);
    const s = (performance.now() - t0) / 1000;
    const msgs = acked - acked0;
    return { cores: (cpu.user + cpu.system) / 1e6 / s, usPerMsg: (cpu.user + cpu.system) / msgs, acked: msgs / s };
  } finally {
    clearInterval(timer);
    await client.endAsync(true);
    await broker.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
};

console.log(`mqtt.js alone, QoS 1 to a local mosquitto, ${RATE} messages/s in ${SLOTS} bursts a second; ${machine()}`);
const figures: Record<string, number[]> = { TLS: [], plaintext: [] };
for (let r = 1; r <= Number(values.rounds); r++) {
  for (const tls of r % 2 ? [true, false] : [false, true]) {
    const f = await round(tls);
    const name = tls ? 'TLS' : 'plaintext';
    figures[name]!.push(f.cores);
    console.log(`  round ${r} ${name.padEnd(9)} ${f.acked.toFixed(0)} PUBACKs/s  ${f.cores.toFixed(3)} cores  ${f.usPerMsg.toFixed(1)} µs of CPU per message`);
  }
}
for (const [name, xs] of Object.entries(figures)) console.log(`  ${name}, median of ${xs.length}: ${median(xs).toFixed(3)} cores`);
