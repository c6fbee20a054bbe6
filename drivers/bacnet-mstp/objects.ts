// Names of BACnet object types and properties as automation engineers write them in device maps
// (kebab-case, as in the standard's text: analog-input, present-value) ⇄ their numbers, and
// decoded application values → published values.
import { ApplicationTag, ObjectType, PropertyIdentifier, type AppValue, type ObjectId } from './bacnet.js';
import { valueText, type Value, type ValueType } from '../../src/core/driver.js';
import { shortestFloat32 } from '../../src/core/float32.js';

const kebab = (s: string) => s.toLowerCase().replace(/_/g, '-');
const enumNames = (e: Record<string, string | number>) =>
  new Map(
    Object.entries(e)
      .filter(([, v]) => typeof v === 'number')
      .map(([k, v]) => [kebab(k), v as number]),
  );

const OBJECT_TYPES = enumNames(ObjectType);
const PROPERTIES = enumNames(PropertyIdentifier);
export const PROPERTY_NAMES = [...PROPERTIES.keys()];

export function parseObject(text: string): ObjectId {
  const [name, inst] = text.split(':');
  const type = OBJECT_TYPES.get(name!);
  if (type === undefined) throw new Error(`unknown object type ${name}`);
  return { type, instance: Number(inst) };
}

export function objectText(o: ObjectId): string {
  const name = [...OBJECT_TYPES].find(([, v]) => v === o.type)?.[0] ?? String(o.type);
  return `${name}:${o.instance}`;
}

/** Property number from a name (present-value) or a number ("85"); undefined when unknown. */
export function propertyId(text: string): number | undefined {
  return /^[0-9]+$/.test(text) ? Number(text) : PROPERTIES.get(text);
}

const BINARY = new Set([ObjectType.BINARY_INPUT, ObjectType.BINARY_OUTPUT, ObjectType.BINARY_VALUE] as number[]);
const ACTIVE_INACTIVE = new Set([
  PropertyIdentifier.PRESENT_VALUE,
  PropertyIdentifier.RELINQUISH_DEFAULT,
  PropertyIdentifier.ALARM_VALUE,
  PropertyIdentifier.FEEDBACK_VALUE,
] as number[]);

function one(v: AppValue, object: ObjectId, prop: number): Value {
  switch (v.type) {
    case ApplicationTag.NULL:
      return null;
    case ApplicationTag.BOOLEAN:
      return Boolean(v.value);
    case ApplicationTag.ENUMERATED:
      // binary present-value is inactive (0) / active (1): published as false / true.
      if (BINARY.has(object.type) && ACTIVE_INACTIVE.has(prop)) return v.value === 1;
      return v.value as number;
    case ApplicationTag.REAL:
      // A float32: the shortest decimal that is the same float32, as the Modbus driver gives it.
      return shortestFloat32(v.value as number);
    case ApplicationTag.UNSIGNED_INTEGER:
    case ApplicationTag.SIGNED_INTEGER:
    case ApplicationTag.DOUBLE:
      return v.value as number;
    case ApplicationTag.CHARACTER_STRING:
      return String(v.value);
    case ApplicationTag.BIT_STRING: {
      // e.g. status-flags: [in-alarm, fault, overridden, out-of-service]
      const bs = v.value as { bitsUsed: number; value: number[] };
      return Array.from({ length: bs.bitsUsed }, (_, i) => ((bs.value[i >> 3] ?? 0) >> (i & 7)) & 1).map(Boolean);
    }
    case ApplicationTag.OBJECTIDENTIFIER:
      return objectText(v.value as ObjectId);
    default:
      return JSON.stringify(v.value);
  }
}

/** A property's value: a single value, or an array for lists and arrays of simple values. */
export function toValue(values: AppValue[], object: ObjectId, prop: number): Value {
  if (values.length === 1) return one(values[0]!, object, prop);
  return values.map((v) => {
    const x = one(v, object, prop);
    return Array.isArray(x) ? JSON.stringify(x) : (x as number | boolean | string | null);
  });
}

const ANALOG = new Set([ObjectType.ANALOG_INPUT, ObjectType.ANALOG_OUTPUT, ObjectType.ANALOG_VALUE] as number[]);
const MULTI_STATE = new Set([ObjectType.MULTI_STATE_INPUT, ObjectType.MULTI_STATE_OUTPUT, ObjectType.MULTI_STATE_VALUE] as number[]);

/** The type a present-value always has for its object type (REAL, active/inactive, a state number); undefined for others. */
export function declaredType(object: ObjectId, prop: number): ValueType | undefined {
  if (prop !== PropertyIdentifier.PRESENT_VALUE) return undefined;
  if (ANALOG.has(object.type)) return 'float';
  if (BINARY.has(object.type)) return 'boolean';
  if (MULTI_STATE.has(object.type)) return 'uint32';
  return undefined;
}

/** The type of a decoded property value, from its application tags (as toValue publishes it); undefined for NULL. */
export function typeOf(values: AppValue[], object: ObjectId, prop: number): ValueType | undefined {
  if (values.length !== 1) return 'array';
  const v = values[0]!;
  switch (v.type) {
    case ApplicationTag.NULL:
      return undefined;
    case ApplicationTag.BOOLEAN:
      return 'boolean';
    case ApplicationTag.ENUMERATED:
      return BINARY.has(object.type) && ACTIVE_INACTIVE.has(prop) ? 'boolean' : 'uint32';
    case ApplicationTag.UNSIGNED_INTEGER:
      return 'uint32';
    case ApplicationTag.SIGNED_INTEGER:
      return 'int32';
    case ApplicationTag.REAL:
      return 'float';
    case ApplicationTag.DOUBLE:
      return 'double';
    case ApplicationTag.BIT_STRING:
      return 'array';
    default:
      return 'string';
  }
}

/**
 * A command's value as the application value WriteProperty carries for a present-value: REAL for
 * analog objects, ENUMERATED inactive/active for binary ones, UNSIGNED (1…) for multi-state ones;
 * null is NULL, which relinquishes the command at the write priority.
 */
export function writeValue(object: ObjectId, value: unknown): { ok: true; value: AppValue } | { ok: false; reason: string } {
  if (value === null) return { ok: true, value: { type: ApplicationTag.NULL, value: null } };
  if (ANALOG.has(object.type)) {
    return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= 3.4028234663852886e38
      ? { ok: true, value: { type: ApplicationTag.REAL, value } }
      : { ok: false, reason: `expected a number (or null to relinquish) for ${objectText(object)}, got ${valueText(value)}` };
  }
  if (BINARY.has(object.type)) {
    if (typeof value === 'boolean' || value === 0 || value === 1)
      return { ok: true, value: { type: ApplicationTag.ENUMERATED, value: value === true || value === 1 ? 1 : 0 } };
    return { ok: false, reason: `expected true (active) or false (inactive), or null to relinquish, for ${objectText(object)}, got ${valueText(value)}` };
  }
  if (Number.isSafeInteger(value) && (value as number) >= 1) return { ok: true, value: { type: ApplicationTag.UNSIGNED_INTEGER, value } };
  return { ok: false, reason: `expected a state number 1 or more (or null to relinquish) for ${objectText(object)}, got ${valueText(value)}` };
}
