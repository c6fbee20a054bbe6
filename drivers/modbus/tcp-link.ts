// Modbus TCP on a socket of our own. The protocol is small — a 7-byte MBAP header (transaction id,
// protocol 0, length, unit id) before each PDU — and at a plant's poll rates the per-request work
// of a general library (its transaction table, a timer and several promises per request, a debug
// logger) was a large part of the gateway's CPU (bench/nodered.ts). One request is in flight at a
// time (the link runner serialises them); its answer is matched by transaction id, so a late
// answer to a request that timed out is recognised and dropped instead of taken for the next one.
import { Socket } from 'node:net';
import type { Logger } from 'pino';
import { timeoutAfterIo, withDeadline } from '../../src/core/deadline.js';
import { BadFrameError, NotConnectedError, TimeoutError } from '../../src/errors.js';
import { EXCEPTION_NAMES } from './codec.js';
import type { BlockAnswer, ModbusLink, RegisterWrite } from './link.js';
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
  what: string;
  /** The answer's PDU after the function code → the answer, or why it is not one. */
  parse(f: Buffer): BlockAnswer | string;
  resolve(a: BlockAnswer): void;
  reject(e: Error): void;
  /** Its timeout (timeoutAfterIo: an answer that arrived while the loop was starved is still taken). */
  cancelTimeout(): void;
  /** The signal it was sent under: only its abort fails it. */
  signal: AbortSignal;
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
  /**
   * The abort signal this link listens to: the link runner's, the same for every request until it
   * reconnects — one listener per signal, not one added and removed per request.
   */
  private readonly watched = new WeakSet<AbortSignal>();

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
    const fc = FC[area];
    const pdu = Buffer.allocUnsafe(5);
    pdu[0] = fc;
    pdu.writeUInt16BE(start, 1);
    pdu.writeUInt16BE(length, 3);
    const registers = fc === 3 || fc === 4;
    const want = registers ? length * 2 : Math.ceil(length / 8);
    return this.request(unit, pdu, `unit ${unit} read ${area}@${start}[${length}]`, timeoutMs, signal, (f) => {
      const bytes = f[8] ?? 0;
      if (bytes !== want || f.length !== DATA_AT + bytes) return `data length ${bytes}, expected ${want}`;
      if (registers) {
        const words = new Array<number>(length);
        for (let i = 0; i < length; i++) words[i] = f.readUInt16BE(DATA_AT + i * 2);
        return { words };
      }
      const bits = new Array<boolean>(length);
      for (let i = 0; i < length; i++) bits[i] = ((f[DATA_AT + (i >> 3)]! >> (i & 7)) & 1) === 1;
      return { bits };
    });
  }

  /** One write (FC5, FC6, FC16): the device's echo of address and value (or quantity) is checked. */
  write(unit: number, w: RegisterWrite, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer> {
    const pdu = Buffer.allocUnsafe(w.fc === 16 ? 6 + w.words.length * 2 : 5);
    pdu[0] = w.fc;
    pdu.writeUInt16BE(w.address, 1);
    if (w.fc === 5) pdu.writeUInt16BE(w.on ? 0xff00 : 0, 3);
    else if (w.fc === 6) pdu.writeUInt16BE(w.value & 0xffff, 3);
    else {
      pdu.writeUInt16BE(w.words.length, 3);
      pdu[5] = w.words.length * 2;
      w.words.forEach((x, i) => pdu.writeUInt16BE(x & 0xffff, 6 + i * 2));
    }
    const echo = pdu.subarray(1, 5);
    return this.request(unit, pdu, `unit ${unit} write FC${w.fc}@${w.address}`, timeoutMs, signal, (f) =>
      f.length === 12 && f.subarray(8, 12).equals(echo) ? {} : `answer does not echo the request (${f.subarray(8).toString('hex')})`,
    );
  }

  private request(unit: number, pdu: Buffer, what: string, timeoutMs: number, signal: AbortSignal, parse: Pending['parse']): Promise<BlockAnswer> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    if (this.pending) return Promise.reject(new NotConnectedError(`${this.endpoint}: ${what}: another request is in flight`));
    if (signal.aborted) return Promise.reject(new NotConnectedError(`${this.endpoint}: ${what}: aborted`));
    this.tid = (this.tid + 1) & 0xffff;
    const frame = Buffer.allocUnsafe(7 + pdu.length);
    frame.writeUInt16BE(this.tid, 0);
    frame.writeUInt16BE(0, 2);
    frame.writeUInt16BE(pdu.length + 1, 4);
    frame[6] = unit;
    pdu.copy(frame, 7);
    if (!this.watched.has(signal)) {
      this.watched.add(signal);
      // Whatever request is in flight when it aborts (the signal outlives any one request).
      signal.addEventListener(
        'abort',
        () => this.pending?.signal === signal && this.fail(new NotConnectedError(`${this.endpoint}: ${this.pending.what}: aborted`)),
        {
          once: true,
        },
      );
    }
    return new Promise<BlockAnswer>((resolve, reject) => {
      const cancelTimeout = timeoutAfterIo(timeoutMs, () => this.fail(new TimeoutError(`${this.endpoint}: ${what}: no answer after ${timeoutMs} ms`)));
      this.pending = { tid: this.tid, unit, fc: pdu[0]!, what, parse, resolve, reject, cancelTimeout, signal };
      socket.write(frame);
    });
  }

  private settle(): Pending | undefined {
    const p = this.pending;
    if (!p) return undefined;
    this.pending = undefined;
    p.cancelTimeout();
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
    const answer = p.parse(f);
    if (typeof answer === 'string') return bad(answer);
    this.settle()?.resolve(answer);
  }
}
