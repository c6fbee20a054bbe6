import type { DeviceConfig, Driver, DriverContext, Reading, Value, WriteCheck, WriteOutcome } from '../../src/core/driver.js';
import { shortestFloat32 } from '../../src/core/float32.js';
import { applyScale, decodeRegistersAt, readFloat32At } from './codec.js';
import type { BlockAnswer, ModbusLink } from './link.js';
import { planReads, type ReadBlock } from './plan.js';
import type { ModbusConnectionCommon, ModbusPointConfig } from './schema.js';
import { modbusWrite } from './write.js';

/** One Modbus device (unit id) on a shared TCP or RTU link: plans reads and decodes answers. */
export class ModbusDriver implements Driver<ModbusPointConfig, ReadBlock[], ModbusLink> {
  private readonly cfg: ModbusConnectionCommon;

  constructor(
    device: DeviceConfig<ModbusConnectionCommon, ModbusPointConfig>,
    private readonly ctx: DriverContext,
  ) {
    this.cfg = device.connection;
  }

  plan(points: ModbusPointConfig[]): ReadBlock[] {
    return planReads(points, { maxGap: this.cfg.max_gap, maxRegisters: this.cfg.max_registers_per_read, maxBits: this.cfg.max_bits_per_read });
  }

  async probe(link: ModbusLink, signal: AbortSignal): Promise<void> {
    const p = this.cfg.probe;
    // Any answer proves the device is there, an exception included.
    await link.read(this.cfg.unit_id, p.area, p.address, 1, this.cfg.timeout_ms, signal);
  }

  /**
   * Plans this driver refined after the device refused a merged block (exception 2): the plan it
   * was given stays as planned (plans are values), the refinement is the driver's own knowledge.
   */
  private readonly refined = new WeakMap<ReadBlock[], ReadBlock[]>();

  async read(plan: ReadBlock[], link: ModbusLink, signal: AbortSignal): Promise<Reading[]> {
    let blocks = this.refined.get(plan) ?? plan;
    const total = blocks.reduce((n, b) => n + b.points.length, 0);
    const readings = new Array<Reading>(total);
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i]!;
      const answer = await link.read(this.cfg.unit_id, block.area, block.start, block.length, this.cfg.timeout_ms, signal);
      if (answer.exception?.code === 2 && block.points.length > 1) {
        // A merged block spanned addresses the device does not implement: split it into one
        // request per point, so that this and later polls read the good points directly.
        const singles = block.points.map((pp) => ({ area: block.area, start: pp.point.address, length: pp.width, points: [{ ...pp, offset: 0 }] }));
        blocks = [...blocks.slice(0, i), ...singles, ...blocks.slice(i + 1)];
        this.refined.set(plan, blocks);
        this.ctx.log.warn(
          { area: block.area, start: block.start, length: block.length },
          'merged read refused with exception 2; reading its points one by one',
        );
        i--;
        continue;
      }
      for (const pp of block.points) readings[pp.index] = toReading(pp.point, pp.offset, pp.width, block, answer);
    }
    return readings;
  }

  checkWrite(point: ModbusPointConfig, value: unknown): WriteCheck {
    const w = modbusWrite(point, value, this.cfg.bit_write);
    return w.ok ? { ok: true, value: w.value } : w;
  }

  async write(point: ModbusPointConfig, value: Value, link: ModbusLink, signal: AbortSignal): Promise<WriteOutcome> {
    const w = modbusWrite(point, value, this.cfg.bit_write);
    if (!w.ok) return { ok: false, refused: true, reason: w.reason };
    const { unit_id: unit, timeout_ms: timeout } = this.cfg;
    let answer: BlockAnswer;
    if (w.request.fc === 'bit') {
      // Read-modify-write (allowed by connection.bit_write): the register as it is now, one bit changed.
      const { address, bit, on } = w.request;
      const now = await link.read(unit, 'holding', address, 1, timeout, signal);
      if (now.exception) return refusedBy(now.exception);
      const word = now.words?.[0];
      if (word === undefined) return { ok: false, reason: `bad response: read holding@${address}[1] returned no register` };
      answer = await link.write(unit, { fc: 6, address, value: on ? word | (1 << bit) : word & ~(1 << bit) }, timeout, signal);
    } else answer = await link.write(unit, w.request, timeout, signal);
    return answer.exception ? refusedBy(answer.exception) : { ok: true };
  }
}

function refusedBy(e: { code: number; name: string }): WriteOutcome {
  return { ok: false, code: e.code, reason: `modbus exception ${e.code} (${e.name})` };
}

function toReading(point: ModbusPointConfig, offset: number, width: number, block: ReadBlock, r: BlockAnswer): Reading {
  if (r.exception) return { point: point.name, value: null, quality: 'bad', reason: `modbus exception ${r.exception.code} (${r.exception.name})` };
  const got = r.bits?.length ?? r.words?.length ?? 0;
  if (got < block.length) {
    return { point: point.name, value: null, quality: 'bad', reason: `bad response: read ${block.area}@${block.start}[${block.length}]: got ${got} values` };
  }
  if (r.bits) return { point: point.name, value: r.bits[offset] === true, quality: 'good' };
  if (point.type === 'float32' && point.scale === 1 && point.offset === 0) {
    // The common case without the general decoder's switch.
    return { point: point.name, value: shortestFloat32(readFloat32At(r.words!, offset, point.byte_order)), quality: 'good' };
  }
  const raw = decodeRegistersAt(r.words!, offset, width, point.type, point.byte_order, point.bit);
  return { point: point.name, value: applyScale(raw, point.scale, point.offset), quality: 'good' };
}
