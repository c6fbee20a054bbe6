// An EL model on disk: model.onnx plus model.json, the machine-readable part of its model card
// (input name and size, resize kernel, output, threshold and named operating points). Read and
// checked before any load.
import { GatewayError } from '../errors.js';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ModelManifest = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    version: Type.String({ minLength: 1 }),
    file: Type.String({ default: 'model.onnx' }),
    input: Type.Object({
      name: Type.String(),
      width: Type.Integer({ minimum: 8, maximum: 4096 }),
      height: Type.Integer({ minimum: 8, maximum: 4096 }),
      resize_kernel: Type.Union(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'].map((k) => Type.Literal(k))),
      /** What the input values are; the graph does any normalisation. */
      values: Type.Literal('grey levels 0-255 as float32'),
    }),
    output: Type.Object({ name: Type.String(), meaning: Type.String() }),
    /** The default operating point's threshold (a probability at or above it is "defective"). */
    threshold: Type.Number({ minimum: 0, maximum: 1 }),
    /**
     * More thresholds by name, each chosen by cross-validation and described in the card, e.g.
     * balanced (best accuracy with FPR <= 5%) and strict (FPR <= 0.9%); inference.operating_point picks one.
     */
    operating_points: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Type.Number({ minimum: 0, maximum: 1 }))),
  },
  { additionalProperties: true },
);
export type Manifest = Static<typeof ModelManifest>;

export interface ModelOnDisk {
  manifest: Manifest;
  path: string;
  sha256: string;
  bytes: Buffer;
}

const check = new Ajv({ useDefaults: true, allErrors: true }).compile(ModelManifest);

/**
 * Reads model.json and the model file it names. Throws with the file and what is wrong. With
 * `operatingPoint`, the manifest's threshold is that named point's (a model without it is refused).
 */
export function readModel(dir: string, operatingPoint?: string): ModelOnDisk {
  const mpath = join(dir, 'model.json');
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8'));
  } catch (err) {
    throw new GatewayError('GW_ERR_EL_MODEL', `${mpath}: ${(err as Error).message}`);
  }
  if (!check(manifest))
    throw new GatewayError('GW_ERR_EL_MODEL', `${mpath}: ${(check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
  let m = manifest as Manifest;
  if (operatingPoint !== undefined) {
    const t = m.operating_points?.[operatingPoint];
    const has = Object.keys(m.operating_points ?? {});
    if (t === undefined)
      throw new GatewayError(
        'GW_ERR_EL_MODEL',
        `${mpath}: expected an operating point "${operatingPoint}" (inference.operating_point), got ${has.length ? `only ${has.map((n) => `"${n}"`).join(', ')}` : 'none: this model has only its default threshold'}`,
      );
    m = { ...m, threshold: t, operating_point: operatingPoint } as Manifest;
  }
  const path = join(dir, m.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new GatewayError('GW_ERR_EL_MODEL', `${path}: ${(err as Error).message}`);
  }
  return { manifest: m, path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
