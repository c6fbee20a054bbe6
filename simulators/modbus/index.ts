// A Modbus TCP server (slave) for tests, benchmarks and the demo: a register map with value
// generators and scriptable faults. Written on node:net rather than a library server so that
// faults (silence, dropped sockets, delays, exceptions on chosen ranges) are exact.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DeviceMemory, type Fault, type RegisterSpec } from './memory.js';

export type { Fault, RegisterSpec } from './memory.js';

export interface SimulatorOptions {
  port?: number;
  host?: string;
  registers?: RegisterSpec[];
  /** Unit ids answered; others get exception 11 (gateway target failed). Default: all. */
  units?: number[];
}

export interface ModbusSimulator {
  readonly port: number;
  /** Adds a fault until clear() (STYLE rule 10: tests script the device's misbehaviour). */
  script(fault: Fault): void;
  clear(): void;
  /** Closes all client connections now, as a PLC reboot or firewall would. */
  dropConnections(): void;
  /** Sets raw words (registers) or bits directly. */
  setWords(area: 'holding' | 'input', address: number, words: number[]): void;
  setBits(area: 'coil' | 'discrete', address: number, bits: boolean[]): void;
  /** What a device holds now (tests check what a write left there). */
  getWords(area: 'holding' | 'input', address: number, count: number): number[];
  getBit(area: 'coil' | 'discrete', address: number): boolean;
  /** Requests answered so far. */
  readonly requests: number;
  readonly connections: number;
  stop(): Promise<void>;
}

export async function start(opts: SimulatorOptions = {}): Promise<ModbusSimulator> {
  const mem = new DeviceMemory(opts.registers);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;

  /** MBAP frame in, MBAP frame out. */
  const answer = (req: Buffer): Buffer => {
    const unit = req[6]!;
    const body = opts.units && !opts.units.includes(unit) ? Buffer.from([req[7]! | 0x80, 11]) : mem.answer(req.subarray(7));
    const head = Buffer.alloc(7);
    req.copy(head, 0, 0, 4); // transaction id + protocol id
    head.writeUInt16BE(body.length + 1, 4);
    head[6] = unit;
    return Buffer.concat([head, body]);
  };

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 7) {
        const len = pending.readUInt16BE(4);
        if (pending.length < 6 + len) break;
        const req = pending.subarray(0, 6 + len);
        pending = pending.subarray(6 + len);
        if (mem.has('silent')) continue;
        const res = answer(req);
        requests++;
        const delay = mem.delayMs();
        if (delay > 0) {
          const t = setTimeout(() => {
            timers.delete(t);
            if (!socket.destroyed) socket.write(res);
          }, delay);
          timers.add(t);
        } else socket.write(res);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    script: (f) => mem.faults.push(f),
    clear: () => mem.faults.splice(0),
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    setWords: (area, address, w) => w.forEach((v, i) => (mem.words[area][address + i] = v)),
    getWords: (area, address, count) => Array.from(mem.words[area].subarray(address, address + count)),
    getBit: (area, address) => mem.bits[area][address] === 1,
    setBits: (area, address, b) => b.forEach((v, i) => (mem.bits[area][address + i] = v ? 1 : 0)),
    get requests() {
      return requests;
    },
    get connections() {
      return sockets.size;
    },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
