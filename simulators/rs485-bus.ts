// A virtual RS485 line for tests, the demo and benchmarks: N socat pty pairs whose far ends this
// hub joins, so octets written by any node reach every other node, as on a shared pair of wires.
// With `baudRate`, the hub paces delivery like the wire would (10 bits per octet, one talker at a
// time), so timing figures mean something; without it, octets pass as fast as the ptys go.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SerialPort as SerialPortType } from 'serialport';
import { ptyPair, type PtyPair } from './serial-line.js';

export interface Rs485Bus {
  /** Device paths to open, one per node. */
  readonly ports: string[];
  /** Octets carried (all taps), for figures. */
  readonly octets: number;
  /** Calls `fn` with every chunk as it arrives at the other nodes (a passive line monitor). */
  observe(fn: (chunk: Buffer, from: number, at: number) => void): void;
  /** Calls `fn` with every chunk as node `from` writes it, before the line's pacing (timing figures). */
  observeSent(fn: (chunk: Buffer, from: number, at: number) => void): void;
  /** Cuts tap i off the line (a cable pulled) or joins it back. */
  detach(i: number, off: boolean): void;
  stop(): Promise<void>;
}

export async function startRs485Bus(nodes: number, opts: { baudRate?: number; dir?: string } = {}): Promise<Rs485Bus> {
  const { SerialPort } = await import('serialport');
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'edgeferry-rs485-')));
  const pairs: PtyPair[] = [];
  const taps: SerialPortType[] = [];
  const cut = new Set<number>();
  const timers = new Set<NodeJS.Timeout>();
  let busyUntil = 0;
  let octets = 0;
  const octetMs = opts.baudRate ? 10_000 / opts.baudRate : 0;
  try {
    for (let i = 0; i < nodes; i++) pairs.push(await ptyPair(dir, `node${i}`));
    for (const p of pairs) {
      const tap = new SerialPort({ path: p.b, baudRate: opts.baudRate ?? 38400, autoOpen: false });
      await new Promise<void>((resolve, reject) => tap.open((e) => (e ? reject(e) : resolve())));
      tap.on('error', () => undefined);
      taps.push(tap);
    }
  } catch (err) {
    for (const t of taps) t.close(() => undefined);
    for (const p of pairs) await p.stop();
    throw err;
  }
  const observers: ((chunk: Buffer, from: number, at: number) => void)[] = [];
  const senders: ((chunk: Buffer, from: number, at: number) => void)[] = [];
  const deliver = (from: number, chunk: Buffer) => {
    const at = performance.now();
    for (const o of observers) o(chunk, from, at);
    taps.forEach((t, j) => {
      if (j !== from && !cut.has(j) && t.isOpen) t.write(chunk);
    });
  };
  taps.forEach((tap, i) => {
    tap.on('data', (chunk: Buffer) => {
      if (cut.has(i)) return;
      octets += chunk.length;
      for (const o of senders) o(chunk, i, performance.now());
      if (!octetMs) return deliver(i, chunk);
      // The wire carries one talker at a time; a chunk arrives once its last octet would have.
      const now = performance.now();
      busyUntil = Math.max(now, busyUntil) + chunk.length * octetMs;
      const t = setTimeout(() => {
        timers.delete(t);
        deliver(i, chunk);
      }, busyUntil - now);
      timers.add(t);
    });
  });
  return {
    ports: pairs.map((p) => p.a),
    get octets() {
      return octets;
    },
    observe: (fn) => void observers.push(fn),
    observeSent: (fn) => void senders.push(fn),
    detach: (i, off) => void (off ? cut.add(i) : cut.delete(i)),
    async stop() {
      for (const t of timers) clearTimeout(t);
      await Promise.all(taps.map((t) => new Promise<void>((r) => (t.isOpen ? t.close(() => r()) : r()))));
      for (const p of pairs) await p.stop();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
