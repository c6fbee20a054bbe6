// One simulated Modbus device: its registers and bits, value generators, scripted faults, and
// the PDU-level answer to a request. Transport-independent: the TCP and RTU front-ends wrap it.
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
  | { kind: 'silent' }
  /** RTU only: answers with a corrupted CRC. */
  | { kind: 'bad_crc' };

const FC_AREA: Record<number, Area> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

export class DeviceMemory {
  readonly words = { holding: new Uint16Array(65536), input: new Uint16Array(65536) };
  readonly bits = { coil: new Uint8Array(65536), discrete: new Uint8Array(65536) };
  readonly faults: Fault[] = [];
  private readonly generated: { spec: RegisterSpec; gen: Generator }[] = [];
  private readonly t0 = performance.now();

  constructor(registers: RegisterSpec[] = []) {
    for (const spec of registers) {
      if (spec.generator) this.generated.push({ spec, gen: makeGenerator(spec.generator) });
      else this.store(spec, spec.value ?? 0);
    }
  }

  private store(spec: RegisterSpec, value: Value): void {
    if (spec.area === 'coil' || spec.area === 'discrete') {
      this.bits[spec.area][spec.address] = value ? 1 : 0;
      return;
    }
    const arr = this.words[spec.area];
    if ((spec.type ?? 'uint16') === 'bool') {
      const mask = 1 << (spec.bit ?? 0);
      arr[spec.address] = value ? arr[spec.address]! | mask : arr[spec.address]! & ~mask;
      return;
    }
    encodeRegisters(value, spec.type ?? 'uint16', spec.byte_order ?? 'ABCD', spec.count).forEach((w, i) => (arr[spec.address + i] = w));
  }

  has(kind: Fault['kind']): boolean {
    return this.faults.some((f) => f.kind === kind);
  }

  delayMs(): number {
    return this.faults.reduce((ms, f) => (f.kind === 'delay' ? Math.max(ms, f.ms) : ms), 0);
  }

  /** The response PDU (function code + data) to a request PDU, or an exception PDU. */
  answer(pdu: Buffer): Buffer {
    const fc = pdu[0]!;
    const exception = (code: number) => Buffer.from([fc | 0x80, code]);
    if (pdu.length < 5) return exception(3);
    const addr = pdu.readUInt16BE(1);
    const qty = pdu.readUInt16BE(3);
    const area = FC_AREA[fc] ?? (fc === 5 ? 'coil' : 'holding');
    // Writes: FC5 and FC6 touch one address (their second field is the value), FC16 `qty` registers.
    const span = fc === 5 || fc === 6 ? 1 : qty;
    for (const f of this.faults) {
      if (f.kind !== 'exception') continue;
      if ((!f.area || f.area === area) && addr <= (f.to ?? 65535) && addr + span - 1 >= (f.from ?? 0)) return exception(f.code);
    }
    const t = performance.now() - this.t0;
    for (const { spec, gen } of this.generated) this.store(spec, gen.value(t));
    switch (fc) {
      case 1:
      case 2: {
        if (qty < 1 || qty > 2000) return exception(3);
        if (addr + qty > 65536) return exception(2);
        const src = this.bits[area as 'coil' | 'discrete'];
        const out = Buffer.alloc(Math.ceil(qty / 8));
        for (let i = 0; i < qty; i++) if (src[addr + i]) out[i >> 3]! |= 1 << (i & 7);
        return Buffer.concat([Buffer.from([fc, out.length]), out]);
      }
      case 3:
      case 4: {
        if (qty < 1 || qty > 125) return exception(3);
        if (addr + qty > 65536) return exception(2);
        const src = this.words[area as 'holding' | 'input'];
        const out = Buffer.alloc(qty * 2);
        for (let i = 0; i < qty; i++) out.writeUInt16BE(src[addr + i]!, i * 2);
        return Buffer.concat([Buffer.from([fc, out.length]), out]);
      }
      case 5:
        this.bits.coil[addr] = qty === 0xff00 ? 1 : 0;
        return pdu.subarray(0, 5);
      case 6:
        this.words.holding[addr] = qty;
        return pdu.subarray(0, 5);
      case 16:
        for (let i = 0; i < qty; i++) this.words.holding[addr + i] = pdu.readUInt16BE(6 + i * 2);
        return pdu.subarray(0, 5);
      default:
        return exception(1);
    }
  }
}
