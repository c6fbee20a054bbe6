// Modbus links: a transport to one endpoint, shared by every unit id behind it. The link runner
// opens and closes it and serialises requests; a link only moves frames and turns transport
// failures into typed errors. Modbus TCP has its own framing (tcp-link.ts); Modbus RTU on a serial
// port uses modbus-serial (this file).
import modbusSerial from 'modbus-serial';
import type { Logger } from 'pino';
import { raceSignal, withDeadline } from '../../src/core/deadline.js';
import type { Link } from '../../src/core/link.js';
import { BadFrameError, NotConnectedError, TimeoutError } from '../../src/errors.js';
import { EXCEPTION_NAMES } from './codec.js';
import type { Area } from './schema.js';

// modbus-serial is CommonJS whose typings declare an ES default export; under NodeNext the class is `.default`.
const ModbusRTU = modbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;

export interface BlockAnswer {
  words?: number[];
  bits?: boolean[];
  exception?: { code: number; name: string };
}

/** A write on the wire: FC5 (one coil), FC6 (one register), FC16 (several registers). */
export type RegisterWrite = { fc: 5; address: number; on: boolean } | { fc: 6; address: number; value: number } | { fc: 16; address: number; words: number[] };

/** What the Modbus driver needs of a link: one request to one unit at a time. */
export interface ModbusLink extends Link {
  /** Exceptions come back as data; transport failures are thrown (TimeoutError, NotConnectedError, BadFrameError). */
  read(unit: number, area: Area, start: number, length: number, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer>;
  /** As read(); an answer without exception means the device took the value. */
  write(unit: number, w: RegisterWrite, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer>;
}

/** A link driven by a modbus-serial client (Modbus RTU). */
abstract class ModbusSerialLink implements ModbusLink {
  abstract readonly endpoint: string;
  abstract readonly kind: 'network' | 'bus';
  protected client: Client | undefined;
  /** Aborted when the transport closes: pending requests fail at once instead of at the timeout. */
  protected linkLost: AbortController | undefined;
  private onLost: ((reason: string) => void) | undefined;
  /** Quiet time the line needs between frames (RTU: 3.5 character times). */
  protected interFrameMs = 0;
  private lastFrameAt = 0;

  constructor(protected readonly log: Logger) {}

  protected abstract connect(client: Client, signal: AbortSignal): Promise<void>;

  async open(signal: AbortSignal, onLost: (reason: string) => void): Promise<void> {
    await this.close();
    const client = new ModbusRTU();
    // modbus-serial emits 'error' on transport errors; unhandled it would crash the process.
    client.on('error', (err: unknown) => this.log.debug({ err }, 'transport error'));
    this.client = client;
    this.onLost = onLost;
    this.linkLost = new AbortController();
    try {
      await this.connect(client, signal);
    } catch (err) {
      await this.close();
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      throw new NotConnectedError(`${this.endpoint}: open: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Called by subclasses when the transport closed underneath. */
  protected lost(reason: string): void {
    this.linkLost?.abort(new NotConnectedError(`${this.endpoint}: ${reason}`));
    const cb = this.onLost;
    this.onLost = undefined;
    cb?.(reason);
  }

  /** One read request to one unit. Exceptions come back as data; transport failures are thrown. */
  async read(unit: number, area: Area, start: number, length: number, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer> {
    const res = await this.exchange<{ data: number[] | boolean[] }>(unit, `unit ${unit} read ${area}@${start}[${length}]`, timeoutMs, signal, (client) => {
      switch (area) {
        case 'holding':
          return client.readHoldingRegisters(start, length);
        case 'input':
          return client.readInputRegisters(start, length);
        case 'coil':
          return client.readCoils(start, length);
        case 'discrete':
          return client.readDiscreteInputs(start, length);
      }
    });
    if ('exception' in res) return res;
    return area === 'coil' || area === 'discrete' ? { bits: res.data as boolean[] } : { words: res.data as number[] };
  }

  async write(unit: number, w: RegisterWrite, timeoutMs: number, signal: AbortSignal): Promise<BlockAnswer> {
    const res = await this.exchange<unknown>(unit, `unit ${unit} write FC${w.fc}@${w.address}`, timeoutMs, signal, (client) => {
      if (w.fc === 5) return client.writeCoil(w.address, w.on);
      if (w.fc === 6) return client.writeRegister(w.address, w.value);
      return client.writeRegisters(w.address, w.words);
    });
    return typeof res === 'object' && res !== null && 'exception' in res ? (res as BlockAnswer) : {};
  }

  private async exchange<T>(
    unit: number,
    what: string,
    timeoutMs: number,
    signal: AbortSignal,
    request: (client: Client) => Promise<T>,
  ): Promise<T | { exception: { code: number; name: string } }> {
    const client = this.client;
    const lost = this.linkLost;
    if (!client || !lost) throw new NotConnectedError(`${this.endpoint}: not open`);
    const quiet = this.lastFrameAt + this.interFrameMs - performance.now();
    if (quiet > 0) await new Promise((r) => setTimeout(r, quiet));
    client.setID(unit);
    client.setTimeout(timeoutMs);
    try {
      // modbus-serial applies timeoutMs itself; the extra deadline only guards against a lost callback.
      return await withDeadline(
        raceSignal(request(client), lost.signal),
        timeoutMs + 250,
        () => new TimeoutError(`${this.endpoint}: ${what}: no answer after ${timeoutMs} ms`),
        signal,
      );
    } catch (err) {
      const e = err as { modbusCode?: number; errno?: string; message?: string };
      if (typeof e.modbusCode === 'number') return { exception: { code: e.modbusCode, name: EXCEPTION_NAMES[e.modbusCode] ?? 'Unknown Exception' } };
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      if (e.errno === 'ETIMEDOUT') throw new TimeoutError(`${this.endpoint}: ${what}: no answer after ${timeoutMs} ms`);
      if (/CRC|data length|Unexpected data|slave address/i.test(e.message ?? '')) throw new BadFrameError(`${this.endpoint}: ${what}: ${e.message}`);
      throw new NotConnectedError(`${this.endpoint}: ${what}: ${e.message ?? String(err)}`, { cause: err });
    } finally {
      this.lastFrameAt = performance.now();
    }
  }

  protected abstract release(client: Client | undefined): Promise<void>;

  async close(): Promise<void> {
    const client = this.client;
    this.onLost = undefined;
    this.linkLost?.abort(new NotConnectedError(`${this.endpoint}: closed`));
    this.linkLost = undefined;
    this.client = undefined;
    await this.release(client);
  }
}

export interface SerialEndpoint {
  port: string;
  baud_rate: number;
  parity: 'none' | 'even' | 'odd';
  data_bits: 7 | 8;
  stop_bits: 1 | 2;
  inter_frame_ms?: number;
}

/** Bits on the wire per character: start + data + parity + stop. */
export const charBits = (ep: SerialEndpoint) => 1 + ep.data_bits + (ep.parity === 'none' ? 0 : 1) + ep.stop_bits;

export class ModbusRtuLink extends ModbusSerialLink {
  readonly endpoint: string;
  readonly kind = 'bus' as const;

  constructor(
    private readonly ep: SerialEndpoint,
    log: Logger,
  ) {
    super(log);
    this.endpoint = `serial:${ep.port}@${ep.baud_rate}`;
    // Modbus RTU: 3.5 character times of silence between frames; the spec fixes 1.75 ms above 19200 baud.
    this.interFrameMs = ep.inter_frame_ms ?? (ep.baud_rate > 19200 ? 1.75 : (3.5 * charBits(ep) * 1000) / ep.baud_rate);
  }

  protected async connect(client: Client, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new NotConnectedError(`${this.endpoint}: aborted`);
    await client.connectRTUBuffered(this.ep.port, {
      baudRate: this.ep.baud_rate,
      parity: this.ep.parity,
      dataBits: this.ep.data_bits,
      stopBits: this.ep.stop_bits,
    });
    // The port closing underneath (USB adapter unplugged) is the link being lost.
    client.on('close', () => this.lost('serial port closed'));
  }

  protected async release(client: Client | undefined): Promise<void> {
    if (!client) return;
    (client as unknown as NodeJS.EventEmitter).removeAllListeners('close');
    await new Promise<void>((resolve) => {
      try {
        client.close(() => resolve());
      } catch {
        resolve();
      }
      // A port that vanished never calls back.
      setTimeout(resolve, 500).unref();
    });
  }
}
