// A BACnet REAL is a float32: published as the shortest decimal that is the same float32, the way the
// Modbus driver publishes a float32 register (issue 34: 21.780000686645508 over MS/TP, 87.206215 over Modbus).
import { describe, expect, it } from 'vitest';
import { ApplicationTag, ObjectType, PropertyIdentifier } from '../../drivers/bacnet-mstp/bacnet.js';
import { toValue } from '../../drivers/bacnet-mstp/objects.js';
import { decodeRegisters, encodeRegisters } from '../../drivers/modbus/codec.js';

const ai = { type: ObjectType.ANALOG_INPUT, instance: 1 };

describe('BACnet values', () => {
  it('a REAL reads as the same number the Modbus driver gives for that float32', () => {
    for (const x of [21.78, 87.206215, 0.1, -3.3, 1e-7, 123456.7, 3.4e38]) {
      const f = Math.fround(x);
      const bacnet = toValue([{ type: ApplicationTag.REAL, value: f }], ai, PropertyIdentifier.PRESENT_VALUE);
      const modbus = decodeRegisters(encodeRegisters(f, 'float32', 'ABCD'), 'float32', 'ABCD');
      expect(bacnet, String(x)).toBe(modbus);
      expect(Math.fround(bacnet as number)).toBe(f);
    }
    expect(toValue([{ type: ApplicationTag.REAL, value: Math.fround(21.78) }], ai, PropertyIdentifier.PRESENT_VALUE)).toBe(21.78);
  });

  it('a DOUBLE keeps all its digits', () => {
    expect(toValue([{ type: ApplicationTag.DOUBLE, value: 21.780000686645508 }], ai, PropertyIdentifier.PRESENT_VALUE)).toBe(21.780000686645508);
  });
});
