// A Modbus TCP server (slave) for tests, benchmarks and the demo: a register map with value
// generators and scriptable faults. Written on node:net rather than a library server so that
// faults (silence, dropped sockets, delays, exceptions on chosen ranges) are exact.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { encodeRegisters } from '../../drivers/modbus/codec.js';
import type { Area, ByteOrder, DataType } from '../../drivers/modbus/schema.js';
import type { Value } from '../../src/core/driver.js';
import { makeGenerator, type Generator, type GeneratorSpec } from './generators.js';

export interface RegisterSpec {
  area: Area;
  address: number;
  type?: DataType;
  byte_order?: ByteOrder;
  /** Registers, for strings. */
  count?: number;
  /** For bool in a register. */
  bit?: number;
  /** A constant, or a generator. */
  value?: Value;
  generator?: GeneratorSpec;
}

export type Fault =
  | { kind: 'exception'; code: number; area?: Area; from?: number; to?: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'silent' };

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
  /** Requests answered so far. */
  readonly requests: number;
  readonly connections: number;
  stop(): Promise<void>;
}

const FC_AREA: Record<number, Area> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

export async function start(opts: SimulatorOptions = {}): Promise<ModbusSimulator> {
  const words = { holding: new Uint16Array(65536), input: new Uint16Array(65536) };
  const bits = { coil: new Uint8Array(65536), discrete: new Uint8Array(65536) };
  const t0 = performance.now();
  const generated: { spec: RegisterSpec; gen: Generator }[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;

  const store = (spec: RegisterSpec, value: Value) => {
    if (spec.area === 'coil' || spec.area === 'discrete') {
      bits[spec.area][spec.address] = value ? 1 : 0;
      return;
    }
    const arr = words[spec.area];
    if ((spec.type ?? 'uint16') === 'bool') {
      const mask = 1 << (spec.bit ?? 0);
      arr[spec.address] = value ? arr[spec.address]! | mask : arr[spec.address]! & ~mask;
      return;
    }
    encodeRegisters(value, spec.type ?? 'uint16', spec.byte_order ?? 'ABCD', spec.count).forEach((w, i) => (arr[spec.address + i] = w));
  };
  for (const spec of opts.registers ?? []) {
    if (spec.generator) generated.push({ spec, gen: makeGenerator(spec.generator) });
    else store(spec, spec.value ?? 0);
  }
  const refresh = () => {
    const t = performance.now() - t0;
    for (const { spec, gen } of generated) store(spec, gen.value(t));
  };

  const answer = (req: Buffer): Buffer | undefined => {
    const unit = req[6]!;
    const fc = req[7]!;
    const pdu = (body: Buffer) => {
      const head = Buffer.alloc(7);
      req.copy(head, 0, 0, 4); // transaction id + protocol id
      head.writeUInt16BE(body.length + 1, 4);
      head[6] = unit;
      return Buffer.concat([head, body]);
    };
    const exception = (code: number) => pdu(Buffer.from([fc | 0x80, code]));
    if (opts.units && !opts.units.includes(unit)) return exception(11);
    const addr = req.readUInt16BE(8);
    const qty = req.readUInt16BE(10);
    const area = FC_AREA[fc];
    for (const f of faults) {
      if (f.kind !== 'exception') continue;
      const from = f.from ?? 0;
      const to = f.to ?? 65535;
      if ((!f.area || f.area === area) && addr <= to && addr + qty - 1 >= from) return exception(f.code);
    }
    refresh();
    switch (fc) {
      case 1:
      case 2: {
        if (qty < 1 || qty > 2000) return exception(3);
        if (addr + qty > 65536) return exception(2);
        const src = bits[area as 'coil' | 'discrete'];
        const out = Buffer.alloc(Math.ceil(qty / 8));
        for (let i = 0; i < qty; i++) if (src[addr + i]) out[i >> 3]! |= 1 << (i & 7);
        return pdu(Buffer.concat([Buffer.from([fc, out.length]), out]));
      }
      case 3:
      case 4: {
        if (qty < 1 || qty > 125) return exception(3);
        if (addr + qty > 65536) return exception(2);
        const src = words[area as 'holding' | 'input'];
        const out = Buffer.alloc(qty * 2);
        for (let i = 0; i < qty; i++) out.writeUInt16BE(src[addr + i]!, i * 2);
        return pdu(Buffer.concat([Buffer.from([fc, out.length]), out]));
      }
      case 5:
        bits.coil[addr] = req.readUInt16BE(10) === 0xff00 ? 1 : 0;
        return pdu(req.subarray(7, 12));
      case 6:
        words.holding[addr] = req.readUInt16BE(10);
        return pdu(req.subarray(7, 12));
      case 16: {
        for (let i = 0; i < qty; i++) words.holding[addr + i] = req.readUInt16BE(13 + i * 2);
        return pdu(req.subarray(7, 12));
      }
      default:
        return exception(1);
    }
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
        if (faults.some((f) => f.kind === 'silent')) continue;
        const res = answer(req);
        requests++;
        if (!res) continue;
        const delay = faults.reduce((ms, f) => (f.kind === 'delay' ? Math.max(ms, f.ms) : ms), 0);
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
    script: (f) => faults.push(f),
    clear: () => faults.splice(0),
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    setWords: (area, address, w) => w.forEach((v, i) => (words[area][address + i] = v)),
    setBits: (area, address, b) => b.forEach((v, i) => (bits[area][address + i] = v ? 1 : 0)),
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
