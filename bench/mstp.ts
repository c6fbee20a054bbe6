// BACnet MS/TP timing on a virtual RS485 line paced like the wire (10 bits per octet at the
// chosen baud rate, one talker at a time): the token loop and its jitter against the wire-time
// minimum of the same frames, the node's timer lateness, and ReadProperty /
// ReadPropertyMultiple round trips, with 2 and 3 masters on the line.
//
//   npm run bench:mstp -- --baud 38400 --requests 300 --seconds 5
import { scriptArgs } from '../src/core/script-args.js';
import pino from 'pino';
import { quantile } from '../src/core/quantile.js';
import { encodeReadProperty, encodeReadPropertyMultiple } from '../drivers/bacnet-mstp/bacnet.js';
import { MstpLink } from '../drivers/bacnet-mstp/link.js';
import { startMstpDevice, type MstpDevice } from '../simulators/bacnet-mstp/index.js';
import { MstpMonitor } from '../simulators/bacnet-mstp/monitor.js';
import { startRs485Bus } from '../simulators/rs485-bus.js';

const values = scriptArgs('bench:mstp', 'BACnet MS/TP on a paced virtual RS485 line.', {
  baud: { type: 'string', default: '38400' },
  requests: { type: 'string', default: '300' },
  seconds: { type: 'string', default: '5' },
});
const BAUD = Number(values.baud);
const REQUESTS = Number(values.requests);
const SECONDS = Number(values.seconds);

const q = quantile;
const f = (x: number) => x.toFixed(2);

async function run(masters: number) {
  const bus = await startRs485Bus(masters, { baudRate: BAUD });
  const monitor = new MstpMonitor({ usageTimeoutMs: 30, slackMs: 10 });
  bus.observe((chunk, _from, at) => monitor.feed(chunk, at));
  const sims: MstpDevice[] = [];
  for (let i = 1; i < masters; i++)
    sims.push(await startMstpDevice({ path: bus.ports[i]!, mac: 4 * i + 1, deviceInstance: 1000 + i, maxMaster: 15, baudRate: BAUD }));
  const link = new MstpLink(
    {
      port: bus.ports[0]!,
      baud_rate: BAUD as 38400,
      station: 0,
      max_master: 15,
      max_info_frames: 1,
      usage_timeout_ms: 30,
      mac: 5,
      timeout_ms: 3000,
      read_multiple: true,
      max_properties_per_request: 16,
    },
    pino({ level: 'silent' }),
  );
  const ac = new AbortController();
  await link.open(ac.signal, () => undefined);
  // Let the ring form (lost token, Poll-For-Master up to max_master), then watch it idle.
  await new Promise((r) => setTimeout(r, 1500));
  const idleFrom = monitor.frames.length;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const idle = monitor.frames.slice(idleFrom);
  const tokenIdx = idle.map((x, i) => (x.type === 0 && x.dest === 0 ? i : -1)).filter((i) => i >= 0);
  const loops: number[] = [];
  const plain: number[] = [];
  for (let k = 1; k < tokenIdx.length; k++) {
    const loop = idle[tokenIdx[k]!]!.at - idle[tokenIdx[k - 1]!]!.at;
    loops.push(loop);
    // Loops without a maintenance Poll-For-Master or a token retry in them.
    const between = idle.slice(tokenIdx[k - 1]! + 1, tokenIdx[k]);
    if (between.every((x) => x.type === 0) && between.length === masters - 1) plain.push(loop);
  }
  const gwStats = (await link.stats())!;
  const retries = [gwStats.counters, ...sims.map((x) => x.node.counters)].reduce((n, c) => n + c.tokenRetries, 0);
  // Wire minimum of one loop: one 8-octet token per master, plus Tturnaround before each.
  const octetMs = 10_000 / BAUD;
  const wireLoop = masters * (8 * octetMs + 40 * (1000 / BAUD));
  const lateness = gwStats.timerLateness;

  const rp: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const a = await link.request(5, (id) => encodeReadProperty(id, { type: 0, instance: 1 }, { id: 85 }), 3000, ac.signal);
    if (a.kind !== 'rp-ack') throw new Error(`unexpected ${a.kind}`);
    rp.push(performance.now() - t0);
  }
  const rpm: number[] = [];
  const props = [{ id: 85 }, { id: 111 }, { id: 77 }];
  for (let i = 0; i < REQUESTS / 3; i++) {
    const t0 = performance.now();
    const a = await link.request(
      5,
      (id) =>
        encodeReadPropertyMultiple(
          id,
          [1, 2].map((inst) => ({ object: { type: 0, instance: inst }, props })),
        ),
      3000,
      ac.signal,
    );
    if (a.kind !== 'rpm-ack') throw new Error(`unexpected ${a.kind}`);
    rpm.push(performance.now() - t0);
  }
  ac.abort();
  await link.close();
  for (const s of sims) await s.stop();
  await bus.stop();
  console.log(`\n${masters} masters on the line, ${BAUD} baud (paced virtual RS485):`);
  console.log(
    `  token loop idle   p50 ${f(q(loops, 0.5))} ms  p99 ${f(q(loops, 0.99))} ms  (wire minimum ${f(wireLoop)} ms; p50 ${f(q(loops, 0.5) / wireLoop)}×)  loops ${loops.length}`,
  );
  console.log(
    `  plain token loops p50 ${f(q(plain, 0.5))} ms  p99 ${f(q(plain, 0.99))} ms  (${plain.length} loops with no Poll-For-Master in them; jitter p99 − p50 ${f(q(plain, 0.99) - q(plain, 0.5))} ms)`,
  );
  console.log(`  token retries (a successor slower than Tusage_timeout): ${retries}`);
  console.log(`  timer lateness    p50 ${f(q(lateness, 0.5))} ms  p99 ${f(q(lateness, 0.99))} ms  max ${f(Math.max(...lateness))} ms  (n ${lateness.length})`);
  console.log(`  ReadProperty      p50 ${f(q(rp, 0.5))} ms  p99 ${f(q(rp, 0.99))} ms  (${REQUESTS} requests; includes waiting for the token)`);
  console.log(`  RPM 2 obj × 3 prop p50 ${f(q(rpm, 0.5))} ms  p99 ${f(q(rpm, 0.99))} ms  (${rpm.length} requests)`);
  console.log(`  rule violations seen on the wire: ${monitor.violations.length}, invalid frames: ${monitor.invalid}`);
}

console.log(`edgeferry MS/TP bench — node ${process.version}, ${process.arch}`);
await run(2);
await run(3);
