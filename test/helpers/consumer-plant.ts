// The plant the docs' consumer recipes are tried against (Node-RED, Telegraf): mosquitto, a PLC
// with five counters, and a scratch folder; then the gateway polling it five points every 200 ms.
// What the consumer stored is judged by seq: `missing` lists the holes between its lowest and
// highest seq.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start as startModbus } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml, makeGateway, type TestGateway } from './gateway.js';

export interface ConsumerPlant {
  broker: Mosquitto;
  dir: string;
  /** The gateway, built (not started) and registered for cleanup. */
  gateway(): TestGateway;
}

/**
 * A PLC with five counters (Modbus TCP simulator, stopped by the cleanups) and the device map of
 * it as device "plc" with points p0..p4 polled every `intervalMs`; `point` may change a point's line.
 */
export async function counterPlc(
  cleanups: (() => Promise<void> | void)[],
  intervalMs: number,
  point: (line: string, i: number) => string = (line) => line,
): Promise<string> {
  const sim = await startModbus({
    registers: Array.from({ length: 5 }, (_, i) => ({
      area: 'holding' as const,
      address: i,
      type: 'uint16' as const,
      generator: { kind: 'counter' as const, step: 1, every_ms: 10, wrap: 60000 },
    })),
  });
  cleanups.push(() => sim.stop());
  const points = Array.from({ length: 5 }, (_, i) => `      - ${point(`{ name: p${i}, address: ${i} }`, i)}`).join('\n');
  return `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: ${intervalMs}\n    connection: { host: 127.0.0.1, port: ${sim.port} }\n    points:\n${points}\n`;
}

export async function consumerPlant(name: string, cleanups: (() => Promise<void> | void)[]): Promise<ConsumerPlant> {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const devices = await counterPlc(cleanups, 200);
  const dir = mkdtempSync(join(tmpdir(), `edgeferry-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return {
    broker,
    dir,
    gateway: () => {
      const tg = makeGateway(gatewayYaml(broker), devices);
      cleanups.push(() => tg.cleanup());
      return tg;
    },
  };
}

/** The seqs between the lowest and the highest stored that are not there. */
export function missing(stored: number[]): { lo: number; hi: number; count: number; missing: number[] } {
  const got = new Set(stored);
  const lo = Math.min(...got);
  const hi = Math.max(...got);
  const out: number[] = [];
  for (let q = lo; q <= hi; q++) if (!got.has(q)) out.push(q);
  return { lo, hi, count: got.size, missing: out };
}
