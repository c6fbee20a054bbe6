// What a command's value becomes on the wire: the point's type, byte order and scale applied in
// reverse, checked against the range of the device's data type before anything is sent. Pure;
// table-tested in test/unit/modbus-write.test.ts.
import { valueText, type Value, type WriteCheck } from '../../src/core/driver.js';
import { encodeRegisters, typeWidth } from './codec.js';
import type { ModbusPointConfig } from './schema.js';

/** One write on the wire: FC5 (a coil), FC6 (one register), FC16 (several), or a bit of a holding register. */
export type ModbusWrite =
  | { fc: 5; address: number; on: boolean }
  | { fc: 6; address: number; value: number }
  | { fc: 16; address: number; words: number[] }
  /** Read-modify-write of one bit: FC3 of the register, then FC6 with the bit changed. */
  | { fc: 'bit'; address: number; bit: number; on: boolean };

export type BitWrite = 'refuse' | 'read_modify_write';

const INT_RANGE: Partial<Record<ModbusPointConfig['type'], [bigint, bigint]>> = {
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  uint16: [0n, 2n ** 16n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const FLOAT32_MAX = 3.4028234663852886e38;

function asBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  return undefined;
}

/** The value checked for the point, and the request that writes it; or why it cannot be written. */
export function modbusWrite(
  point: ModbusPointConfig,
  value: unknown,
  bitWrite: BitWrite,
): (WriteCheck & { ok: false }) | { ok: true; value: Value; request: ModbusWrite } {
  const no = (reason: string) => ({ ok: false as const, reason });
  if (point.area === 'input' || point.area === 'discrete')
    return no(`${point.area === 'input' ? 'input registers' : 'discrete inputs'} are read-only in Modbus`);
  if (point.area === 'coil' || point.type === 'bool') {
    const on = asBool(value);
    if (on === undefined) return no(`expected true or false (or 1/0) for a ${point.area === 'coil' ? 'coil' : 'bit'}, got ${valueText(value)}`);
    if (point.area === 'coil') return { ok: true, value: on, request: { fc: 5, address: point.address, on } };
    if (bitWrite !== 'read_modify_write') {
      return no(
        'a bit inside a register is written by reading the register and writing it back, which this device does not allow (connection.bit_write: refuse)',
      );
    }
    return { ok: true, value: on, request: { fc: 'bit', address: point.address, bit: point.bit ?? 0, on } };
  }
  const width = point.count ?? typeWidth(point.type) ?? 1;
  const registers = (words: number[]): ModbusWrite =>
    words.length === 1 ? { fc: 6, address: point.address, value: words[0]! } : { fc: 16, address: point.address, words };
  if (point.type === 'string') {
    if (typeof value !== 'string') return no(`expected a string, got ${valueText(value)}`);
    if (!/^[\x20-\x7e\xa0-\xff]*$/.test(value)) return no('expected Latin-1 text without control characters');
    if (value.length > width * 2) return no(`expected at most ${width * 2} characters (${width} registers), got ${value.length}`);
    return { ok: true, value, request: registers(encodeRegisters(value, 'string', point.byte_order, width)) };
  }
  const range = INT_RANGE[point.type];
  // 64-bit integers may come as decimal strings, so that values beyond 2^53 stay exact.
  const wide = point.type === 'int64' || point.type === 'uint64';
  const exact = typeof value === 'bigint' || (typeof value === 'string' && /^-?\d{1,20}$/.test(value));
  if (range && wide && exact && point.scale === 1 && point.offset === 0) {
    const big = BigInt(value);
    if (big < range[0] || big > range[1]) return no(`expected ${range[0]}..${range[1]} for ${point.type}, got ${value}`);
    const v = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    return { ok: true, value: v, request: registers(encodeRegisters(big, point.type, point.byte_order)) };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return no(`expected a number for ${point.type}, got ${valueText(value)}`);
  const raw = (value - point.offset) / point.scale;
  if (range) {
    const whole = Math.round(raw);
    if (Math.abs(raw - whole) > 1e-9 * Math.max(1, Math.abs(raw))) {
      return no(
        `expected a value the register can hold: ${value} is ${raw} in the device's units (scale ${point.scale}, offset ${point.offset}), not a whole number`,
      );
    }
    if (!Number.isSafeInteger(whole) || BigInt(whole) < range[0] || BigInt(whole) > range[1]) {
      const lo = Number(range[0]) * point.scale + point.offset;
      const hi = Number(range[1]) * point.scale + point.offset;
      return no(`expected ${Math.min(lo, hi)}..${Math.max(lo, hi)} for ${point.type} (scale ${point.scale}, offset ${point.offset}), got ${value}`);
    }
    const words = encodeRegisters(point.type === 'int64' || point.type === 'uint64' ? BigInt(whole) : whole, point.type, point.byte_order);
    return { ok: true, value, request: registers(words) };
  }
  if (point.type === 'float32' && Math.abs(raw) > FLOAT32_MAX) return no(`expected a value within ±${FLOAT32_MAX} for float32, got ${value}`);
  return { ok: true, value, request: registers(encodeRegisters(raw, point.type, point.byte_order)) };
}
