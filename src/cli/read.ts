// edgeferry read --config FILE [--device NAME] [--count N] [--json]: commissioning. Reads the real
// devices of a gateway's maps (or of one device map on its own) once (or N times, a poll interval apart) with the same drivers the
// daemon uses, prints each point's decoded value, quality and reason, and exits. Nothing is
// buffered, published or written; the daemon need not be running (or may be: this is one more
// client of each device). Exit 1 when a device could not be read at all.
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DRIVERS, driverByType } from '../../drivers/registry.js';
import { ConfigLoader } from '../config/load.js';
import type { LoadedDevice } from '../config/loaded.js';
import { formatProblem } from '../config/yaml-file.js';
import { valueText } from '../core/bounded.js';
import type { Reading } from '../core/driver.js';
import type { Link } from '../core/link.js';
import { EXIT, type CliIo } from './io.js';

/** How long one device may take to connect and answer a round, whatever its own timeouts. */
const DEVICE_DEADLINE_MS = 15_000;

interface Row {
  device: string;
  point: string;
  value: unknown;
  quality: string;
  reason?: string;
  type?: string;
  ts: string;
  round: number;
}

export async function cmdRead(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      device: { type: 'string', multiple: true },
      count: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.count);
  if (!values.config || !Number.isInteger(count) || count < 1) {
    io.err('usage: edgeferry read --config GATEWAY.yaml|DEVICES.yaml [--device NAME]... [--count N] [--json]');
    return EXIT.USAGE;
  }
  const { devices: all, gateway, problems } = new ConfigLoader(DRIVERS, io.cwd).loadDevices(values.config);
  if (!all) {
    io.err(`edgeferry read: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the configuration (edgeferry check lists them):`);
    for (const p of problems.slice(0, 20)) io.err(formatProblem(p));
    return EXIT.CONFIG_INVALID;
  }
  const wanted = values.device;
  const devices = all.filter((d) => (wanted ? wanted.includes(d.name) : d.enabled));
  const unknown = (wanted ?? []).filter((n) => !all.some((d) => d.name === n));
  if (unknown.length) {
    io.err(`edgeferry read: no device ${unknown.map((n) => `"${n}"`).join(', ')} in ${values.config} (devices: ${all.map((d) => d.name).join(', ')})`);
    return EXIT.USAGE;
  }
  // Driver logs go to stderr at warn: the table (or JSON lines) on stdout stays clean.
  const log = pino({ level: 'warn' }, pino.destination(2));
  const baseDir = dirname(resolve(io.cwd, values.config));
  const ctx = (d: LoadedDevice) => ({
    log: log.child({ component: 'driver', driver: d.driver, device: d.name }),
    baseDir,
    gateway,
  });
  // Devices that share a link (one RS485 port, one gateway address) are read through one, in turn.
  const byLink = new Map<string, { link: Link; devices: LoadedDevice[] }>();
  for (const d of devices) {
    const spec = driverByType(d.driver)!;
    const key = `${d.driver}|${spec.linkKey(d)}`;
    const entry = byLink.get(key) ?? { link: spec.createLink(d, ctx(d)), devices: [] };
    entry.devices.push(d);
    byLink.set(key, entry);
  }
  const failed = new Set<string>();
  const rows: Row[] = [];
  const print = (r: Row) => {
    if (values.json) io.out(JSON.stringify({ ...r, value: typeof r.value === 'bigint' ? r.value.toString() : r.value }));
    else rows.push(r);
  };
  let stop = false;
  void io.stopRequested.then(() => (stop = true));
  await Promise.all(
    [...byLink.values()].map(async ({ link, devices: ds }) => {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), DEVICE_DEADLINE_MS * count);
      try {
        try {
          await link.open(ac.signal, () => undefined);
        } catch (err) {
          for (const d of ds) {
            failed.add(d.name);
            io.err(`${d.name}: cannot connect to ${link.endpoint}: ${(err as Error).message}`);
          }
          return;
        }
        const plans = ds.map((d) => {
          const driver = driverByType(d.driver)!.create(d, ctx(d));
          return { d, driver, plan: driver.plan(d.points) };
        });
        for (let round = 1; round <= count && !stop; round++) {
          const started = Date.now();
          for (const { d, driver, plan } of plans) {
            let readings: Reading[];
            try {
              readings = await driver.read(plan, link, ac.signal);
            } catch (err) {
              failed.add(d.name);
              io.err(`${d.name}: no reading from ${link.endpoint}: ${(err as Error).message}`);
              continue;
            }
            const ts = new Date().toISOString();
            for (const r of readings) print({ device: d.name, point: r.point, value: r.value, quality: r.quality, reason: r.reason, type: r.type, ts, round });
          }
          const interval = Math.min(...ds.map((d) => d.poll_interval_ms));
          if (round < count) await new Promise((r) => setTimeout(r, Math.max(0, interval - (Date.now() - started))));
        }
      } finally {
        clearTimeout(timer);
        await link.close().catch(() => undefined);
      }
    }),
  );
  if (!values.json) printTable(rows, io, count > 1);
  if (failed.size) {
    io.err(`edgeferry read: ${failed.size} of ${devices.length} device${devices.length === 1 ? '' : 's'} could not be read: ${[...failed].join(', ')}`);
    return EXIT.FAILURE;
  }
  return EXIT.OK;
}

function printTable(rows: Row[], io: CliIo, rounds: boolean): void {
  const cells = rows.map((r) => [
    ...(rounds ? [String(r.round)] : []),
    r.device,
    r.point,
    r.value === null || r.value === undefined ? '—' : valueText(r.value),
    r.quality,
    r.reason ?? '',
  ]);
  const head = [...(rounds ? ['round'] : []), 'device', 'point', 'value', 'quality', 'reason'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  io.out(line(head));
  for (const c of cells) io.out(line(c));
}
