import { Socket } from 'node:net';
import modbusSerial from 'modbus-serial';
import type { DeviceConfig, Driver, DriverContext, Reading } from '../../src/core/driver.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { applyScale, decodeRegisters, EXCEPTION_NAMES } from './codec.js';
import { isBitArea, planReads, type ReadBlock } from './plan.js';
import type { ModbusPointConfig, ModbusTcpConnectionConfig } from './schema.js';

// modbus-serial is CommonJS whose typings declare an ES default export; under NodeNext the class is `.default`.
const ModbusRTU = modbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;

interface BlockResult {
  words?: number[];
  bits?: boolean[];
  exception?: { code: number; name: string };
  /** The answer did not fit the request; the points are bad, the link is kept. */
  malformed?: string;
}

/** Modbus TCP link to one unit id. Reads planned blocks; never reconnects by itself. */
export class ModbusTcpDriver implements Driver<ModbusPointConfig> {
  readonly endpoint: string;
  private client: Client | undefined;
  /** Rejects pending requests as soon as the socket closes instead of waiting for the timeout. */
  private linkLost: Promise<never> | undefined;
  private socket: Socket | undefined;
  private readonly cfg: ModbusTcpConnectionConfig;
  private readonly device: string;

  constructor(device: DeviceConfig<ModbusTcpConnectionConfig, ModbusPointConfig>, private readonly ctx: DriverContext) {
    this.cfg = device.connection;
    this.device = device.name;
    this.endpoint = `tcp://${this.cfg.host}:${this.cfg.port} unit ${this.cfg.unit_id}`;
  }

  private describe(): string {
    return `modbus_tcp device "${this.device}" (${this.endpoint})`;
  }

  async connect(signal: AbortSignal): Promise<void> {
    await this.close();
    const client = new ModbusRTU();
    // modbus-serial emits 'error' on socket errors; unhandled it would crash the process.
    client.on('error', (err: unknown) => this.ctx.log.debug({ err }, 'socket error'));
    client.setTimeout(this.cfg.timeout_ms);
    client.setID(this.cfg.unit_id);
    this.client = client;
    let rejectLost!: (e: Error) => void;
    this.linkLost = new Promise<never>((_, reject) => (rejectLost = reject));
    this.linkLost.catch(() => undefined);
    // We open the socket ourselves and hand it to modbus-serial: its own socket handling swallows
    // a reset connection (no 'close' after an 'error'), which would leave a read hanging until its
    // timeout instead of reporting the link down at once.
    const socket = new Socket();
    this.socket = socket;
    socket.on('error', (err) => this.ctx.log.debug({ err: { message: err.message } }, 'socket error'));
    socket.once('close', () => rejectLost(new NotConnectedError(`${this.describe()}: connection closed`)));
    try {
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
          socket.connect({ host: this.cfg.host, port: this.cfg.port });
        }),
        this.cfg.timeout_ms,
        signal,
        () => new TimeoutError(`${this.describe()}: connect: no answer after ${this.cfg.timeout_ms} ms`),
      );
      socket.setNoDelay(true);
      await client.connectTCP(this.cfg.host, { port: this.cfg.port, socket });
    } catch (err) {
      await this.close();
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      throw new NotConnectedError(`${this.describe()}: connect: ${(err as Error).message}`, { cause: err });
    }
  }

  plan(points: ModbusPointConfig[]): ReadBlock[] {
    return planReads(points, {
      maxGap: this.cfg.max_gap,
      maxRegisters: this.cfg.max_registers_per_read,
      maxBits: this.cfg.max_bits_per_read,
    });
  }

  async read(plan: unknown, signal: AbortSignal): Promise<Reading[]> {
    const blocks = plan as ReadBlock[];
    const total = blocks.reduce((n, b) => n + b.points.length, 0);
    const readings = new Array<Reading>(total);
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i]!;
      const result = await this.readBlock(block, signal);
      if (result.exception?.code === 2 && block.points.length > 1) {
        // A merged block spanned addresses the device does not implement: split it into one
        // request per point, in place, so later polls read the good points directly.
        const singles = block.points.map((pp) => ({ area: block.area, start: pp.point.address, length: pp.width, points: [{ ...pp, offset: 0 }] }));
        blocks.splice(i, 1, ...singles);
        this.ctx.log.warn({ area: block.area, start: block.start, length: block.length }, 'merged read refused with exception 2; reading its points one by one');
        i--;
        continue;
      }
      for (const pp of block.points) readings[pp.index] = toReading(pp.point, pp.offset, pp.width, result);
    }
    return readings;
  }

  private async readBlock(block: ReadBlock, signal: AbortSignal): Promise<BlockResult> {
    const client = this.client;
    if (!client || !client.isOpen || !this.linkLost) throw new NotConnectedError(`${this.describe()}: not connected`);
    const what = `read ${block.area}@${block.start}[${block.length}]`;
    const request = (): Promise<{ data: number[] | boolean[] }> => {
      switch (block.area) {
        case 'holding':
          return client.readHoldingRegisters(block.start, block.length);
        case 'input':
          return client.readInputRegisters(block.start, block.length);
        case 'coil':
          return client.readCoils(block.start, block.length);
        case 'discrete':
          return client.readDiscreteInputs(block.start, block.length);
      }
    };
    try {
      // modbus-serial applies timeout_ms itself; the extra deadline only guards against a lost callback.
      const res = await withDeadline(
        Promise.race([request(), this.linkLost]),
        this.cfg.timeout_ms + 250,
        signal,
        () => new TimeoutError(`${this.describe()}: ${what}: timeout after ${this.cfg.timeout_ms} ms`),
      );
      if (isBitArea(block.area)) {
        const bits = res.data as boolean[];
        if (bits.length < block.length) return { malformed: `${what}: expected ${block.length} bits, got ${bits.length}` };
        return { bits };
      }
      const words = res.data as number[];
      if (words.length !== block.length) return { malformed: `${what}: expected ${block.length} registers, got ${words.length}` };
      return { words };
    } catch (err) {
      const e = err as { modbusCode?: number; errno?: string; message?: string };
      if (typeof e.modbusCode === 'number') {
        return { exception: { code: e.modbusCode, name: EXCEPTION_NAMES[e.modbusCode] ?? 'Unknown Exception' } };
      }
      if (err instanceof TimeoutError || err instanceof NotConnectedError) throw err;
      if (e.errno === 'ETIMEDOUT') throw new TimeoutError(`${this.describe()}: ${what}: timeout after ${this.cfg.timeout_ms} ms`);
      throw new NotConnectedError(`${this.describe()}: ${what}: ${e.message ?? String(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.client = undefined;
    this.socket = undefined;
    this.linkLost = undefined;
    socket?.removeAllListeners('close');
    // Destroying our socket is the whole close: modbus-serial's close() waits for a 'close' event
    // that it no longer reports once the socket is gone. Its pending request timers fail harmlessly.
    socket?.destroy();
  }
}

function toReading(point: ModbusPointConfig, offset: number, width: number, r: BlockResult): Reading {
  if (r.exception) {
    return {
      point: point.name,
      value: null,
      quality: 'bad',
      reason: `modbus exception ${r.exception.code} (${r.exception.name})`,
    };
  }
  if (r.malformed) return { point: point.name, value: null, quality: 'bad', reason: `bad response: ${r.malformed}` };
  if (r.bits) return { point: point.name, value: r.bits[offset] === true, quality: 'good' };
  const words = r.words!.slice(offset, offset + width);
  const raw = decodeRegisters(words, point.type, point.byte_order, point.bit);
  return { point: point.name, value: applyScale(raw, point.scale, point.offset), quality: 'good' };
}

/** Races a promise against a deadline and an abort signal; the timer is always cleared. */
function withDeadline<T>(p: Promise<T>, ms: number, signal: AbortSignal, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(new NotConnectedError('aborted'));
    const timer = setTimeout(() => finish(() => reject(onTimeout())), ms);
    const onAbort = () => finish(() => reject(new NotConnectedError('aborted')));
    signal.addEventListener('abort', onAbort, { once: true });
    function finish(f: () => void) {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      f();
    }
    p.then(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    );
  });
}
