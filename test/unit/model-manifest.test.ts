// A model folder's manifest (model.json): the default threshold, and named operating points that
// inference.operating_point (and `model eval --operating-point`) pick; a model without the point
// asked for is refused with the file, the point and the points it has.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../src/inference/model.js';

const shipped = join(import.meta.dirname, '../../models/el-defect');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-manifest-'));
  const m = JSON.parse(readFileSync(join(shipped, 'model.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...m, threshold: 0.5, operating_points: { balanced: 0.42, strict: 0.87 } }));
  copyFileSync(join(shipped, 'model.onnx'), join(dir, 'model.onnx'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('model manifest', () => {
  it('gives the default threshold, or the named operating point’s', () => {
    expect(readModel(dir).manifest.threshold).toBe(0.5);
    const strict = readModel(dir, 'strict').manifest;
    expect(strict.threshold).toBe(0.87);
    expect(strict).toMatchObject({ operating_point: 'strict', operating_points: { balanced: 0.42, strict: 0.87 } });
    expect(readModel(dir, 'balanced').manifest.threshold).toBe(0.42);
  });

  it('refuses a point the model does not have, naming the file and the points it has', () => {
    expect(() => readModel(dir, 'paranoid')).toThrow(
      `${join(dir, 'model.json')}: expected an operating point "paranoid" (inference.operating_point), got only "balanced", "strict"`,
    );
    expect(() => readModel(shipped, 'strict')).toThrow('got none: this model has only its default threshold');
  });

  it('refuses an operating point outside 0..1', () => {
    const bad = mkdtempSync(join(tmpdir(), 'edgeferry-manifest-'));
    const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(bad, 'model.json'), JSON.stringify({ ...m, operating_points: { strict: 1.5 } }));
    expect(() => readModel(bad)).toThrow('/operating_points/strict must be <= 1');
    rmSync(bad, { recursive: true, force: true });
  });
});
