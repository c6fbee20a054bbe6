import { describe, expect, it } from 'vitest';
import { applyScale, decodeRegisters, encodeRegisters, float32Text } from '../../drivers/modbus/codec.js';
import { VECTORS, wordsOf } from '../fixtures/modbus-vectors.js';

const asJson = (v: unknown) => (typeof v === 'bigint' ? v.toString() : JSON.stringify(v));

describe('modbus codec', () => {
  it.each(VECTORS)('decodes $type $order ($words)', ({ type, order, words, json }) => {
    expect(asJson(decodeRegisters(wordsOf(words), type, order))).toBe(json);
  });

  it.each(VECTORS)('encodes $type $order back to the same words', ({ type, order, words, json }) => {
    const value = type.includes('64') && !type.startsWith('float') ? BigInt(json) : Number(json);
    expect(encodeRegisters(value, type, order)).toEqual(wordsOf(words));
  });

  it('reads a bit of a register, counting from the least significant bit', () => {
    expect(decodeRegisters([0b1000], 'bool', 'ABCD', 3)).toBe(true);
    expect(decodeRegisters([0b1000], 'bool', 'ABCD', 2)).toBe(false);
    expect(decodeRegisters([0x8000], 'bool', 'ABCD', 15)).toBe(true);
  });

  it('reads strings high byte first (ABCD) or low byte first (BADC), dropping NUL/space padding', () => {
    expect(decodeRegisters(wordsOf('4142 4344 0000'), 'string', 'ABCD')).toBe('ABCD');
    expect(decodeRegisters(wordsOf('4241 4443 2020'), 'string', 'BADC')).toBe('ABCD');
  });

  it('gives the shortest float32 decimal, not binary noise', () => {
    expect(decodeRegisters(wordsOf('41AC CCCD'), 'float32', 'ABCD')).toBe(21.6);
  });

  it('writes a float32 as the text JSON gives its shortest decimal, for every kind of float32', () => {
    // The reference: the shortest of 6–9 significant digits that reads back, then JSON's own text of it.
    const reference = (v: number) => {
      for (let p = 6; p < 9; p++) if (Math.fround(Number(v.toPrecision(p))) === v) return JSON.stringify(Number(v.toPrecision(p)));
      return JSON.stringify(Number(v.toPrecision(9)));
    };
    const view = new DataView(new ArrayBuffer(4));
    const specials = [
      0, 0x80000000, 1, 0x00800000, 0x7f7fffff, 0x3dcccccd, 0x41accccd, 0x33d6bf95, 0x358637bd, 0x4e6e6b28, 0x5a0e1bca, 0xc2f6e979, 0x49800004, 0xc9800004,
      0x4b7fffff, 0x0000_0001, 0x7149f2ca,
    ];
    let seed = 12345;
    const random = Array.from({ length: 20_000 }, () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0));
    let checked = 0;
    for (const bits of [...specials, ...random]) {
      view.setUint32(0, bits);
      const v = view.getFloat32(0);
      if (!Number.isFinite(v)) {
        expect(float32Text(v)).toBeUndefined();
        continue;
      }
      expect(float32Text(v), `bits 0x${bits.toString(16)}`).toBe(reference(v));
      checked++;
    }
    expect(checked).toBeGreaterThan(19_000);
  });

  it('keeps 64-bit integers that fit a double as plain numbers', () => {
    expect(decodeRegisters(wordsOf('0000 0000 0000 002A'), 'int64', 'ABCD')).toBe(42);
  });

  it('applies scale then offset, without float noise, and leaves bool/string alone', () => {
    expect(applyScale(192, 0.1, 0)).toBe(19.2);
    expect(applyScale(1000, 0.1, -40)).toBe(60);
    expect(applyScale(true, 2, 1)).toBe(true);
    expect(applyScale(123n, 0.5, 0)).toBe(61.5);
  });
});
