import { describe, expect, it } from 'vitest';
import { applyScale, decodeRegisters, encodeRegisters } from '../../drivers/modbus/codec.js';
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
