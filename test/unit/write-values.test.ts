// What a command's value becomes on the wire: Modbus registers with type, byte order and scale in
// reverse (refused outside the type's range or between register steps), OPC UA Variants in the
// node's built-in type, BACnet application values.
import { describe, expect, it } from 'vitest';
import { writeValue } from '../../drivers/bacnet-mstp/objects.js';
import { modbusWrite } from '../../drivers/modbus/write.js';
import { variantFor } from '../../drivers/opcua/write.js';
import { pt } from '../fixtures/modbus-point.js';

describe('modbusWrite', () => {
  it.each([
    ['uint16 → FC6', pt('a', 5, { type: 'uint16' }), 513, { fc: 6, address: 5, value: 513 }],
    ['int16 negative', pt('a', 5, { type: 'int16' }), -2, { fc: 6, address: 5, value: 0xfffe }],
    ['int16 scaled 0.1, offset -40', pt('a', 5, { type: 'int16', scale: 0.1, offset: -40 }), 21.5, { fc: 6, address: 5, value: 615 }],
    ['float32 CDAB → FC16', pt('a', 5, { type: 'float32', byte_order: 'CDAB' }), 1, { fc: 16, address: 5, words: [0x0000, 0x3f80] }],
    ['int32 DCBA', pt('a', 5, { type: 'int32', byte_order: 'DCBA' }), 1, { fc: 16, address: 5, words: [0x0100, 0x0000] }],
    ['uint64 beyond 2^53 as text', pt('a', 5, { type: 'uint64' }), '18446744073709551615', { fc: 16, address: 5, words: [0xffff, 0xffff, 0xffff, 0xffff] }],
    ['coil → FC5', pt('a', 5, { area: 'coil', type: 'bool' }), 1, { fc: 5, address: 5, on: true }],
    ['string, padded', pt('a', 5, { type: 'string', count: 2 }), 'AB', { fc: 16, address: 5, words: [0x4142, 0] }],
  ])('%s', (_what, p, value, request) => {
    expect(modbusWrite(p, value, 'refuse')).toMatchObject({ ok: true, request });
  });

  it.each([
    ['an input register', pt('a', 5, { area: 'input' }), 1, /read-only/],
    ['a value between register steps', pt('a', 5, { type: 'int16', scale: 0.1 }), 2.25, /not a whole number/],
    ['uint16 overflow', pt('a', 5, { type: 'uint16' }), 65536, /0\.\.65535/],
    ['uint16 negative', pt('a', 5, { type: 'uint16' }), -1, /0\.\.65535/],
    ['a string for a number', pt('a', 5, { type: 'int32' }), '12', /expected a number/],
    ['NaN-like', pt('a', 5, { type: 'float32' }), null, /expected a number/],
    ['a number for a coil', pt('a', 5, { area: 'coil', type: 'bool' }), 2, /true or false/],
    ['a too long string', pt('a', 5, { type: 'string', count: 1 }), 'ABC', /at most 2 characters/],
    ['a register bit without read_modify_write', pt('a', 5, { type: 'bool', bit: 3 }), true, /bit_write: refuse/],
  ])('refuses %s', (_what, p, value, why) => {
    expect(modbusWrite(p, value, 'refuse')).toMatchObject({ ok: false, reason: expect.stringMatching(why) });
  });

  it('writes a register bit by read-modify-write where allowed', () => {
    expect(modbusWrite(pt('a', 5, { type: 'bool', bit: 3 }), false, 'read_modify_write')).toMatchObject({
      ok: true,
      request: { fc: 'bit', address: 5, bit: 3, on: false },
    });
  });
});

describe('variantFor (OPC UA built-in types)', () => {
  it('converts to the node type and checks its range', () => {
    expect(variantFor(6, -7)).toEqual({ ok: true, value: -7 });
    expect(variantFor(6, 2 ** 31)).toMatchObject({ ok: false, reason: expect.stringMatching(/Int32/) });
    expect(variantFor(3, 256)).toMatchObject({ ok: false });
    expect(variantFor(6, '12')).toMatchObject({ ok: false, reason: expect.stringMatching(/whole number/) });
    expect(variantFor(9, '18446744073709551615')).toEqual({ ok: true, value: [0xffffffff, 0xffffffff] });
    expect(variantFor(8, -1)).toEqual({ ok: true, value: [0xffffffff, 0xffffffff] });
    expect(variantFor(1, 1)).toEqual({ ok: true, value: true });
    expect(variantFor(12, 5)).toMatchObject({ ok: false, reason: expect.stringMatching(/a string/) });
    expect(variantFor(10, 1e39)).toMatchObject({ ok: false });
    expect(variantFor(13, '2026-01-01')).toMatchObject({ ok: false, reason: expect.stringMatching(/not one this gateway writes/) });
  });
});

describe('writeValue (BACnet present-value)', () => {
  it('REAL for analog, ENUMERATED for binary, UNSIGNED for multi-state, NULL relinquishes', () => {
    expect(writeValue({ type: 2, instance: 1 }, 21.5)).toEqual({ ok: true, value: { type: 4, value: 21.5 } });
    expect(writeValue({ type: 4, instance: 1 }, true)).toEqual({ ok: true, value: { type: 9, value: 1 } });
    expect(writeValue({ type: 19, instance: 1 }, 3)).toEqual({ ok: true, value: { type: 2, value: 3 } });
    expect(writeValue({ type: 19, instance: 1 }, 0)).toMatchObject({ ok: false });
    expect(writeValue({ type: 2, instance: 1 }, null)).toEqual({ ok: true, value: { type: 0, value: null } });
    expect(writeValue({ type: 2, instance: 1 }, 'warm')).toMatchObject({ ok: false });
  });
});
