import { Type } from '@sinclair/typebox';

/**
 * A closed set of strings or numbers as a plain JSON Schema `enum` (not anyOf of consts), so a
 * wrong value gives one clear error listing the choices.
 */
export const Enum = <const T extends readonly (string | number)[]>(values: T, opts: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ enum: [...values], ...opts });
