// Modbus RTU slaves on a serial port (in tests: one end of a socat pty pair). Several unit ids
// share the port like slaves on one RS485 line. With `baud` set, answers are held back for the
// time the request and the answer would take on a real wire, so bus efficiency can be measured.
import { SerialPort } from 'serialport';
import { DeviceMemory, type Fault, type RegisterSpec } from './memory.js';

export interface RtuSimulatorOptions {
  path: string;
  /** unit id → its registers. */
  units: Record<number, RegisterSpec[]>;
  /** Emulate line timing at this baud rate (8E1: 11 bits per character). */
  baud?: number;
}

export interface RtuSimulator {
  unit(id: number): DeviceMemory;
  script(unit: number, fault: Fault): void;
  clear(unit: number): void;
  /** Frames answered so far. */
  readonly answered: number;
  stop(): Promise<void>;
}

export function crc16(buf: Buffer): number {
  let crc = 0xffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >> 1) ^ 0xa001 : crc >> 1;
  }
  return crc;
}

/** Length of a request frame (with CRC) from its first bytes, or undefined if not known yet. */
function requestLength(buf: Buffer): number | undefined {
  if (buf.length < 2) return undefined;
  const fc = buf[1]!;
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) return buf.length >= 7 ? 9 + buf[6]! : undefined;
  return -1;
}

export async function startRtu(opts: RtuSimulatorOptions): Promise<RtuSimulator> {
  const units = new Map<number, DeviceMemory>(Object.entries(opts.units).map(([id, regs]) => [Number(id), new DeviceMemory(regs)]));
  const port = new SerialPort({ path: opts.path, baudRate: opts.baud ?? 19200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on('error', () => undefined);
  const timers = new Set<NodeJS.Timeout>();
  const charMs = opts.baud ? (11 * 1000) / opts.baud : 0;
  let pending = Buffer.alloc(0);
  let answered = 0;

  port.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const len = requestLength(pending);
      if (len === undefined || pending.length < Math.max(len, 0)) return;
      if (len < 0) {
        pending = Buffer.alloc(0); // garbage: wait for the line to go quiet
        return;
      }
      const frame = pending.subarray(0, len);
      pending = pending.subarray(len);
      if (crc16(frame.subarray(0, -2)) !== frame.readUInt16LE(len - 2)) continue; // slaves ignore bad frames
      const mem = units.get(frame[0]!);
      if (!mem || mem.has('silent')) continue; // not ours, or scripted silence
      const body = mem.answer(frame.subarray(1, -2));
      const out = Buffer.alloc(body.length + 3);
      out[0] = frame[0]!;
      body.copy(out, 1);
      out.writeUInt16LE(crc16(out.subarray(0, -2)) ^ (mem.has('bad_crc') ? 0xffff : 0), out.length - 2);
      answered++;
      const wire = charMs * (frame.length + out.length + 3.5);
      // Timers truncate fractions of a millisecond; round up so the emulated wire is never faster than a real one.
      const delay = Math.ceil(Math.max(wire, mem.delayMs()));
      if (delay > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          if (port.isOpen) port.write(out);
        }, delay);
        timers.add(t);
      } else port.write(out);
    }
  });

  return {
    unit: (id) => units.get(id)!,
    script: (id, f) => units.get(id)!.faults.push(f),
    clear: (id) => units.get(id)!.faults.splice(0),
    get answered() {
      return answered;
    },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}
