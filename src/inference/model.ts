// An EL model on disk: model.onnx plus model.json, the machine-readable part of its model card
// (input name and size, resize kernel, output, threshold). Read and checked before any load.
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
    threshold: Type.Number({ minimum: 0, maximum: 1 }),
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

/** Reads model.json and the model file it names. Throws with the file and what is wrong. */
export function readModel(dir: string): ModelOnDisk {
  const mpath = join(dir, 'model.json');
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8'));
  } catch (err) {
    throw new GatewayError('GW_ERR_EL_MODEL', `${mpath}: ${(err as Error).message}`);
  }
  if (!check(manifest))
    throw new GatewayError('GW_ERR_EL_MODEL', `${mpath}: ${(check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}`);
  const m = manifest;
  const path = join(dir, m.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new GatewayError('GW_ERR_EL_MODEL', `${path}: ${(err as Error).message}`);
  }
  return { manifest: m, path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
