// Pure register ⇄ value conversion. No I/O; table-tested in test/unit/modbus-codec.test.ts.
import type { Value } from '../../src/core/driver.js';
import { shortestFloat32 } from '../../src/core/float32.js';
export { float32Text } from '../../src/core/float32.js';
import type { ByteOrder, DataType } from './schema.js';

/** Registers a fixed-width type occupies; undefined for string (its width comes from `count`). */
export function typeWidth(type: DataType): number | undefined {
  switch (type) {
    case 'bool':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return undefined;
  }
}

/**
 * Puts the bytes of `words` (as received, each word high byte first) into big-endian order.
 * ABCD: as sent. CDAB: word order reversed. BADC: bytes swapped in each word. DCBA: both.
 */
export function toBigEndian(words: ArrayLike<number>, order: ByteOrder): Buffer {
  const n = words.length;
  const out = Buffer.allocUnsafe(n * 2);
  const reverseWords = order === 'CDAB' || order === 'DCBA';
  const swapBytes = order === 'BADC' || order === 'DCBA';
  for (let i = 0; i < n; i++) {
    const w = words[reverseWords ? n - 1 - i : i]! & 0xffff;
    out[i * 2] = swapBytes ? w & 0xff : w >> 8;
    out[i * 2 + 1] = swapBytes ? w >> 8 : w & 0xff;
  }
  return out;
}

/** Inverse of toBigEndian: the words a device with this byte order would send. */
export function fromBigEndian(bytes: Buffer, order: ByteOrder): number[] {
  const n = bytes.length / 2;
  const words = new Array<number>(n);
  const reverseWords = order === 'CDAB' || order === 'DCBA';
  const swapBytes = order === 'BADC' || order === 'DCBA';
  for (let i = 0; i < n; i++) {
    const hi = bytes[i * 2]!;
    const lo = bytes[i * 2 + 1]!;
    words[reverseWords ? n - 1 - i : i] = swapBytes ? (lo << 8) | hi : (hi << 8) | lo;
  }
  return words;
}

/** 64-bit integers become numbers when exact, else stay bigint. */
function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Room for the widest fixed-width value (4 registers), reused by every decode: no allocation per value. */
const scratch = new DataView(new ArrayBuffer(8));

/** The raw float32 in the 2 words at `offset` (before the shortest-decimal step). */
export function readFloat32At(words: ArrayLike<number>, offset: number, order: ByteOrder): number {
  load(words, offset, 2, order);
  return scratch.getFloat32(0);
}

/** Puts `width` (≤ 4) words at `offset` into the scratch in big-endian byte order. */
function load(words: ArrayLike<number>, offset: number, width: number, order: ByteOrder): void {
  // ABCD: as sent. CDAB: word order reversed. BADC: bytes swapped in each word. DCBA: both.
  const reverseWords = order === 'CDAB' || order === 'DCBA';
  const swapBytes = order === 'BADC' || order === 'DCBA';
  for (let i = 0; i < width && i < 4; i++) {
    let w = (words[offset + (reverseWords ? width - 1 - i : i)] ?? 0) & 0xffff;
    if (swapBytes) w = ((w & 0xff) << 8) | (w >> 8);
    scratch.setUint16(i * 2, w);
  }
}

/** Decodes a value (before scale/offset) from register words. `bit` applies to bool only. */
export function decodeRegisters(words: ArrayLike<number>, type: DataType, order: ByteOrder, bit?: number): Value {
  return decodeRegistersAt(words, 0, words.length, type, order, bit);
}

/** As decodeRegisters, for the `width` words at `offset` of a block's answer (no copy of them). */
export function decodeRegistersAt(words: ArrayLike<number>, offset: number, width: number, type: DataType, order: ByteOrder, bit?: number): Value {
  if (type === 'bool') return (((words[offset] ?? 0) >> (bit ?? 0)) & 1) === 1;
  if (type === 'string') {
    // Devices pad with NUL or spaces; neither is part of the value.
    return toBigEndian(Array.prototype.slice.call(words, offset, offset + width) as number[], order)
      .toString('latin1')
      .replace(/[\0 ]+$/, '');
  }
  load(words, offset, width, order);
  switch (type) {
    case 'int16':
      return scratch.getInt16(0);
    case 'uint16':
      return scratch.getUint16(0);
    case 'int32':
      return scratch.getInt32(0);
    case 'uint32':
      return scratch.getUint32(0);
    case 'float32':
      return shortestFloat32(scratch.getFloat32(0));
    case 'int64':
      return narrow(scratch.getBigInt64(0));
    case 'uint64':
      return narrow(scratch.getBigUint64(0));
    case 'float64':
      return scratch.getFloat64(0);
  }
}

/** Encodes a value into the words a device would hold (used by the simulator and tests). */
export function encodeRegisters(value: Value, type: DataType, order: ByteOrder, count?: number): number[] {
  const width = typeWidth(type) ?? count ?? 1;
  const b = Buffer.alloc(width * 2);
  switch (type) {
    case 'bool':
      return [value ? 1 : 0];
    case 'int16':
      b.writeInt16BE(Math.trunc(Number(value)), 0);
      break;
    case 'uint16':
      b.writeUInt16BE(Math.trunc(Number(value)) & 0xffff, 0);
      break;
    case 'int32':
      b.writeInt32BE(Math.trunc(Number(value)), 0);
      break;
    case 'uint32':
      b.writeUInt32BE(Math.trunc(Number(value)) >>> 0, 0);
      break;
    case 'float32':
      b.writeFloatBE(Number(value), 0);
      break;
    case 'int64':
      b.writeBigInt64BE(BigInt(typeof value === 'number' ? Math.trunc(value) : (value as bigint)), 0);
      break;
    case 'uint64':
      b.writeBigUInt64BE(BigInt(typeof value === 'number' ? Math.trunc(value) : (value as bigint)), 0);
      break;
    case 'float64':
      b.writeDoubleBE(Number(value), 0);
      break;
    case 'string':
      b.write(String(value), 0, width * 2, 'latin1');
      break;
  }
  return fromBigEndian(b, order);
}

/** Applies scale and offset to numeric values; bool and string pass through. */
export function applyScale(value: Value, scale: number, offset: number): Value {
  if (scale === 1 && offset === 0) return value;
  // toPrecision(15) drops binary noise such as 192 × 0.1 = 19.200000000000003.
  if (typeof value === 'number') return Number((value * scale + offset).toPrecision(15));
  if (typeof value === 'bigint') return Number((Number(value) * scale + offset).toPrecision(15));
  return value;
}

/** Modbus exception code names, as the Modbus Application Protocol spec calls them. */
export const EXCEPTION_NAMES: Record<number, string> = {
  1: 'Illegal Function',
  2: 'Illegal Data Address',
  3: 'Illegal Data Value',
  4: 'Server Device Failure',
  5: 'Acknowledge',
  6: 'Server Device Busy',
  8: 'Memory Parity Error',
  10: 'Gateway Path Unavailable',
  11: 'Gateway Target Device Failed to Respond',
};
