// Shared by the whole-gateway benchmarks: the gateway's CPU and RSS from /proc (its own process,
// worker threads included), a latency baseline through the same broker, and the figures' format.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import type { RegisterSpec } from '../simulators/modbus/index.js';
import type { Mosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { quantile } from '../src/core/quantile.js';

const TICKS_PER_SEC = 100; // Linux USER_HZ

export function procStat(pid: number): { cpuS: number; userS: number; sysS: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userS = Number(fields[11]) / TICKS_PER_SEC; // utime
  const sysS = Number(fields[12]) / TICKS_PER_SEC; // stime
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuS: userS + sysS, userS, sysS, rssKb };
}

/** CPU seconds per thread of a process, summed by thread name (main thread, V8 workers, libuv pool, …). */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

export const pct = (xs: number[], p: number) => (xs.length ? quantile(xs, p / 100) : NaN);

export async function connectClient(broker: Mosquitto): Promise<MqttClient> {
  // mqtt.js turns mqtt:// into TLS when it is given a key and certificate: a plaintext broker gets none.
  const tls = broker.url.startsWith('mqtts:') ? { ca: broker.caPem, cert: broker.client.cert, key: broker.client.key } : {};
  const c = mqtt.connect(broker.url, { ...tls, reconnectPeriod: 0 });
  await new Promise<void>((r, j) => (c.once('connect', () => r()), c.once('error', j)));
  return c;
}

/**
 * The floor any gateway's latency sits on: messages published straight to the broker from this
 * process (QoS 1, one every 2 ms for 3 s) as the same subscriber receives them.
 */
export async function brokerBaseline(broker: Mosquitto, sub: MqttClient): Promise<number[]> {
  const lat: number[] = [];
  const direct = await connectClient(broker);
  const on = (topic: string, payload: Buffer) => {
    if (topic === 'bench-baseline') lat.push(performance.timeOrigin + performance.now() - Number(payload.toString()));
  };
  sub.on('message', on);
  await sub.subscribeAsync('bench-baseline', { qos: 1 });
  for (let i = 0; i < 1500; i++) {
    direct.publish('bench-baseline', String(performance.timeOrigin + performance.now()), { qos: 1 });
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 500));
  await direct.endAsync();
  sub.off('message', on);
  await sub.unsubscribeAsync('bench-baseline');
  return lat;
}

export const machine = () => `node ${process.version} on ${process.arch}, ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'})`;

/** Least-squares slope of ys over xs. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den ? num / den : 0;
}

/** `n` holding registers 0…n-1 counting up every 100 ms: a PLC whose every poll brings new values. */
export const counterRegisters = (n: number): RegisterSpec[] =>
  Array.from({ length: n }, (_, k) => ({ area: 'holding', address: k, type: 'uint16', generator: { kind: 'counter', step: 1, every_ms: 100, wrap: 65536 } }));

/** `n` float32 points at holding registers 0, 2, 4, …: sine waves of periods 10 s, 11 s, …, new values every poll. */
export const sineRegisters = (n: number): RegisterSpec[] =>
  Array.from({ length: n }, (_, k) => ({ area: 'holding', address: k * 2, type: 'float32', generator: { kind: 'sine', min: 0, max: 100, period_s: 10 + k } }));
