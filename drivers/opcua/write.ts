// A command's value as an OPC UA Variant of the node's own built-in data type (read from its
// DataType attribute): integers checked against the type's range, 64-bit integers exact, floats,
// booleans and strings. Pure; table-tested in test/unit/opcua-write.test.ts.
import { valueText, type Value } from '../../src/core/driver.js';
import { BUILTIN } from './types.js';

/** Built-in types this gateway writes (ids 1–12: Boolean … String). */
const WRITABLE = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
const RANGE: Record<number, [bigint, bigint]> = {
  2: [-128n, 127n],
  3: [0n, 255n],
  4: [-(2n ** 15n), 2n ** 15n - 1n],
  5: [0n, 2n ** 16n - 1n],
  6: [-(2n ** 31n), 2n ** 31n - 1n],
  7: [0n, 2n ** 32n - 1n],
  8: [-(2n ** 63n), 2n ** 63n - 1n],
  9: [0n, 2n ** 64n - 1n],
};

/** The Variant value for built-in type `id` (node-opcua's form: 64-bit integers as [high, low]), or why not. */
export function variantFor(id: number, value: Value | unknown): { ok: true; value: unknown } | { ok: false; reason: string } {
  const name = WRITABLE.has(id) ? BUILTIN[id] : undefined;
  if (!name) return { ok: false, reason: `the node's data type (ns=0;i=${id}) is not one this gateway writes (Boolean, integers, Float, Double, String)` };
  const no = (what: string) => ({ ok: false as const, reason: `expected ${what} for the node's data type ${name}, got ${valueText(value)}` });
  if (id === 1) {
    if (typeof value === 'boolean') return { ok: true, value };
    return value === 0 || value === 1 ? { ok: true, value: value === 1 } : no('true or false');
  }
  if (id === 12) return typeof value === 'string' ? { ok: true, value } : no('a string');
  if (id === 10 || id === 11) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return no('a number');
    if (id === 10 && Math.abs(value) > 3.4028234663852886e38) return no('a number within the Float range');
    return { ok: true, value };
  }
  const [lo, hi] = RANGE[id]!;
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else if ((id === 8 || id === 9) && typeof value === 'string' && /^-?\d{1,20}$/.test(value)) big = BigInt(value);
  else return no('a whole number');
  if (big < lo || big > hi) return no(`a whole number in ${lo}..${hi}`);
  if (id === 8 || id === 9) {
    const u = BigInt.asUintN(64, big);
    return { ok: true, value: [Number(u >> 32n), Number(u & 0xffffffffn)] };
  }
  return { ok: true, value: Number(big) };
}
