// Modbus TCP on a socket of our own. The protocol is small — a 7-byte MBAP header (transaction id,
// protocol 0, length, unit id) before each PDU — and at a plant's poll rates the per-request work
// of a general library (its transaction table, a timer and several promises per request, a debug
// logger) was a large part of the gateway's CPU (bench/nodered.ts). One request is in flight at a
// time (the link runner serialises them); its answer is matched by transaction id, so a late
// answer to a request that timed out is recognised and dropped instead of taken for the next one.
import { Socket } from 'node:net';
import type { Logger } from 'pino';
import { withDeadline } from '../../src/core/deadline.js';
import { BadFrameError, NotConnectedError, TimeoutError } from '../../src/errors.js';
import { EXCEPTION_NAMES } from './codec.js';
import type { BlockAnswer, ModbusLink } from './link.js';
import type { Area } from './schema.js';

export interface TcpEndpoint {
  host: string;
  port: number;
  timeout_ms: number;
  keepalive_s: number;
}

const FC: Record<Area, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };
/** MBAP header + function code + byte count: where the data of a read answer starts. */
const DATA_AT = 9;

interface Pending {
  tid: number;
  unit: number;
  fc: number;
  length: number;
  what: string;
  resolve(a: BlockAnswer): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  signal: AbortSignal;
  onAbort: () => void;
}

export class ModbusTcpLink implements ModbusLink {
  readonly endpoint: string;
  readonly kind = 'network' as const;
  private socket: Socket | undefined;
  private onLost: ((reason: string) => void) | undefined;
  private tid = 0;
  private pending: Pending | undefined;
  /** Bytes of a frame not complete yet. */
  private rx: Buffer | undefined;

  constructor(
    private readonly ep: TcpEndpoint,
    private readonly log: Logger,
  ) {
    this.endpoint = `tcp://${ep.host}:${ep.port}`;
  }

  async open(signal: AbortSignal, onLost: (reason: string) => void): Promise<void> {
    await this.close();
    const socket = new Socket();
    this.socket = socket;
    this.rx = undefined;
    socket.on('error', (err) => this.log.debug({ err: { message: err.message } }, 'socket error'));
    try {
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
          socket.connect({ host: this.ep.host, port: this.ep.port });
        }),
        this.ep.timeout_ms,
        () => new TimeoutError(`${this.endpoint}: connect: no answer after ${this.ep.timeout_ms} ms`),
        signal,
      );
    } catch (err) {
      await this.close();
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      throw new NotConnectedError(`${this.endpoint}: open: ${(err as Error).message}`, { cause: err });
    }
    socket.setNoDelay(true);
    // OS keepalive notices a dead peer on an otherwise idle socket; the heartbeat probe is faster.
    socket.setKeepAlive(true, this.ep.keepalive_s * 1000);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.once('close', () => this.lost('connection closed'));
    this.onLost = onLost;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    this.onLost = undefined;
    this.fail(new NotConnectedError(`${this.endpoint}: closed`));
    socket?.removeAllListeners('close');
    socket?.destroy();
    return Promise.resolve();
  }

  /** One read request to one unit. Exceptions come back as data; transport failures are thrown. */
  read(unit: number, area: Area, start: number, length: number, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer> {
    const socket = this.socket;
    const what = `unit ${unit} read ${area}@${start}[${length}]`;
    if (!socket) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    if (this.pending) return Promise.reject(new NotConnectedError(`${this.endpoint}: ${what}: another request is in flight`));
    if (signal.aborted) return Promise.reject(new NotConnectedError(`${this.endpoint}: ${what}: aborted`));
    this.tid = (this.tid + 1) & 0xffff;
    const fc = FC[area];
    const frame = Buffer.allocUnsafe(12);
    frame.writeUInt16BE(this.tid, 0);
    frame.writeUInt16BE(0, 2);
    frame.writeUInt16BE(6, 4);
    frame[6] = unit;
    frame[7] = fc;
    frame.writeUInt16BE(start, 8);
    frame.writeUInt16BE(length, 10);
    return new Promise<BlockAnswer>((resolve, reject) => {
      const onAbort = () => this.fail(new NotConnectedError(`${this.endpoint}: ${what}: aborted`));
      const timer = setTimeout(() => this.fail(new TimeoutError(`${this.endpoint}: ${what}: no answer after ${timeoutMs} ms`)), timeoutMs);
      this.pending = { tid: this.tid, unit, fc, length, what, resolve, reject, timer, signal, onAbort };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.write(frame);
    });
  }

  private settle(): Pending | undefined {
    const p = this.pending;
    if (!p) return undefined;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.signal.removeEventListener('abort', p.onAbort);
    return p;
  }

  private fail(err: Error): void {
    this.settle()?.reject(err);
  }

  private lost(reason: string): void {
    this.fail(new NotConnectedError(`${this.endpoint}: ${reason}`));
    const cb = this.onLost;
    this.onLost = undefined;
    cb?.(reason);
  }

  /** Bytes from the device: complete frames are taken one by one, a partial one waits for the rest. */
  private received(chunk: Buffer): void {
    let buf = this.rx ? Buffer.concat([this.rx, chunk]) : chunk;
    while (buf.length >= 7) {
      const size = 6 + buf.readUInt16BE(4);
      if (buf.readUInt16BE(2) !== 0 || size < 8 || size > 260) {
        // Not Modbus TCP framing: nothing after it can be trusted to line up either.
        this.rx = undefined;
        const p = this.settle();
        p?.reject(new BadFrameError(`${this.endpoint}: ${p.what}: not a Modbus TCP frame (protocol ${buf.readUInt16BE(2)}, length ${size - 6})`));
        return void this.socket?.destroy();
      }
      if (buf.length < size) break;
      this.frame(buf.subarray(0, size));
      buf = buf.subarray(size);
    }
    this.rx = buf.length ? Buffer.from(buf) : undefined;
  }

  private frame(f: Buffer): void {
    const p = this.pending;
    // An answer to a request that already timed out (or none was sent): not this request's.
    if (!p || f.readUInt16BE(0) !== p.tid) return;
    const fc = f[7]!;
    const bad = (why: string) => this.fail(new BadFrameError(`${this.endpoint}: ${p.what}: ${why}`));
    if (f[6] !== p.unit) return bad(`answer from unit ${f[6]}`);
    if (fc === (p.fc | 0x80)) {
      const code = f[8] ?? 0;
      return void this.settle()?.resolve({ exception: { code, name: EXCEPTION_NAMES[code] ?? 'Unknown Exception' } });
    }
    if (fc !== p.fc) return bad(`answer with function code ${fc}`);
    const bytes = f[8] ?? 0;
    const registers = p.fc === 3 || p.fc === 4;
    const want = registers ? p.length * 2 : Math.ceil(p.length / 8);
    if (bytes !== want || f.length !== DATA_AT + bytes) return bad(`data length ${bytes}, expected ${want}`);
    if (registers) {
      const words = new Array<number>(p.length);
      for (let i = 0; i < p.length; i++) words[i] = f.readUInt16BE(DATA_AT + i * 2);
      return void this.settle()?.resolve({ words });
    }
    const bits = new Array<boolean>(p.length);
    for (let i = 0; i < p.length; i++) bits[i] = ((f[DATA_AT + (i >> 3)]! >> (i & 7)) & 1) === 1;
    this.settle()?.resolve({ bits });
  }
}
