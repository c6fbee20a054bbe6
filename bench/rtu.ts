// Modbus RTU bus efficiency over a socat pty pair with the simulator emulating line timing:
// registers/s achieved against the line's theoretical maximum for the same requests, at 19200
// and 115200 baud; and the heartbeat's overhead on a busy link (through the real LinkRunner).
//
//   npm run bench:rtu -- --seconds 5 --registers 10 --slaves 4
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import pino from 'pino';
import { modbusRtu } from '../drivers/modbus/index.js';
import type { ModbusLink } from '../drivers/modbus/link.js';
import type { ReadBlock } from '../drivers/modbus/plan.js';
import type { ModbusPointConfig, ModbusRtuConnectionConfig } from '../drivers/modbus/schema.js';
import type { DeviceConfig } from '../src/core/driver.js';
import { LinkRunner } from '../src/core/link-runner.js';
import { startRtu } from '../simulators/modbus/rtu.js';
import { ptyPair } from '../simulators/serial-line.js';

const values = scriptArgs('bench:rtu', 'Modbus RTU on a virtual serial line.', {
  seconds: { type: 'string', default: '5' },
  registers: { type: 'string', default: '10' },
  slaves: { type: 'string', default: '4' },
});
const SECONDS = Number(values.seconds);
const N = Number(values.registers);
const SLAVES = Number(values.slaves);
const log = pino({ level: 'silent' });

const points: ModbusPointConfig[] = Array.from({ length: N }, (_, i) => ({
  name: `r${i}`,
  address: i,
  area: 'holding',
  type: 'uint16',
  byte_order: 'ABCD',
  scale: 1,
  offset: 0,
  report: 'always',
  deadband: 0,
  priority: 'normal',
  writable: false,
  write_min_interval_ms: 1000,
}));

function device(path: string, baud: number, unit: number): DeviceConfig<ModbusRtuConnectionConfig, ModbusPointConfig> {
  return {
    name: `slave-${unit}`,
    driver: 'modbus_rtu',
    enabled: true,
    poll_interval_ms: 1000,
    link: { probe_interval_ms: 1000, failures_before_down: 2, backoff_min_ms: 100, backoff_max_ms: 1000 },
    connection: {
      port: path,
      baud_rate: baud as 19200,
      parity: 'even',
      bit_write: 'refuse',
      data_bits: 8,
      stop_bits: 1,
      unit_id: unit,
      timeout_ms: 1000,
      max_gap: 16,
      max_registers_per_read: 125,
      max_bits_per_read: 2000,
      probe: { area: 'holding', address: 0 },
    },
    points,
  };
}

async function run(baud: number) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-bench-rtu-'));
  const pty = await ptyPair(dir);
  const units = Object.fromEntries(Array.from({ length: SLAVES }, (_, i) => [i + 1, [{ area: 'holding' as const, address: 0, value: 1 }]]));
  const sim = await startRtu({ path: pty.b, units, baud });
  const devs = Array.from({ length: SLAVES }, (_, i) => device(pty.a, baud, i + 1));
  const link = modbusRtu.createLink(devs[0]!, { log, baseDir: '.' });
  const drivers = devs.map((d) => modbusRtu.create(d, { log, baseDir: '.' }));
  const plans = drivers.map((d) => d.plan(points));

  // 1. Back-to-back polls of all slaves in turn, one request on the wire at a time.
  const signal = new AbortController().signal;
  await link.open(signal, () => undefined);
  let regs = 0;
  let requests = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    const k = requests % SLAVES;
    await drivers[k]!.read(plans[k]!, link, signal);
    regs += N;
    requests++;
  }
  const secs = (performance.now() - t0) / 1000;
  await link.close();
  // On the wire per request: 8-byte request, (5 + 2N)-byte answer, 3.5 characters of silence after each; 8E1 = 11 bits.
  const charsPerRequest = 8 + 5 + 2 * N + 7;
  const theoretical = (N * baud) / (11 * charsPerRequest);
  const achieved = regs / secs;

  // 2. The same load through the LinkRunner, with a 1 s heartbeat: count the probes it adds.
  let probes = 0;
  const runner = new LinkRunner(
    modbusRtu.createLink(devs[0]!, { log, baseDir: '.' }),
    devs[0]!.link,
    { onStatus: () => undefined, onExchange: () => undefined, onReconnect: () => undefined },
    log,
  );
  drivers.forEach((d, i) => {
    const probe = d.probe.bind(d);
    // The runner holds links as Link; this one is the ModbusLink that modbusRtu.createLink made.
    runner.add(`slave-${i + 1}`, {
      plan: d.plan.bind(d),
      read: (p, l, s) => d.read(p as ReadBlock[], l as ModbusLink, s),
      probe: (l, s) => (probes++, probe(l as ModbusLink, s)),
    });
  });
  runner.start();
  await new Promise((r) => setTimeout(r, 500));
  const busyStart = performance.now();
  let polls = 0;
  const workers = drivers.map(async (d, i) => {
    while (performance.now() - busyStart < SECONDS * 1000) {
      const r = await runner.poll(`slave-${i + 1}`, (l, s) => d.read(plans[i]!, l as ModbusLink, s));
      if (r.ok) polls++;
      else await new Promise((res) => setTimeout(res, 10));
    }
  });
  const probesBefore = probes;
  await Promise.all(workers);
  const busyProbes = probes - probesBefore;
  await runner.stop();
  await sim.stop();
  await pty.stop();
  rmSync(dir, { recursive: true, force: true });
  return { achieved, theoretical, requests, secs, polls, busyProbes };
}

console.log(`edgeferry RTU bench — ${SLAVES} slaves, ${N}-register FC3 reads, 8E1, line timing emulated by the simulator; node ${process.version}`);
for (const baud of [19200, 115200]) {
  const r = await run(baud);
  console.log(
    `${String(baud).padStart(6)} baud  ${r.achieved.toFixed(0)} registers/s (${(r.requests / r.secs).toFixed(1)} requests/s); line maximum for these requests ${r.theoretical.toFixed(0)} registers/s → efficiency ${((r.achieved / r.theoretical) * 100).toFixed(1)} %`,
  );
  console.log(
    `              busy link through the pool: ${r.polls} polls, ${r.busyProbes} heartbeat probes in ${SECONDS} s (${((r.busyProbes / Math.max(1, r.polls + r.busyProbes)) * 100).toFixed(2)} % of requests)`,
  );
}
