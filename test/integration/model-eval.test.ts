// `edgeferry model eval`, the command that reproduces the model card's figures: run as a process
// on cells from the simulated EL camera with an ELPV-format labels file. Its counts must be what
// the shipped model really outputs (checked against onnxruntime run here directly), its intervals
// must hold the figures they belong to, and the per-type lines must add up to the whole.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawCell, writeCell, type Defect } from '../../simulators/el-camera/index.js';
import type { EvalIntervals, EvalMetrics } from '../../src/inference/metrics.js';
import { MODELS, shippedModel, type ShippedModel } from '../helpers/el-workdir.js';

type EvalJson = EvalMetrics & { model: { version: string }; ci: EvalIntervals; by_type: Record<string, EvalMetrics>; latency: { p99_ms: number } };

const root = join(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/main.js');
let dir: string;
const cells: { name: string; label: number; type: string; defect: Defect; seed: number }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-eval-'));
  const defects: Defect[] = ['none', 'crack', 'none', 'dark-area', 'none', 'inactive'];
  for (let i = 0; i < 24; i++) {
    const defect = defects[i % defects.length]!;
    const c = {
      name: `cell${String(i).padStart(4, '0')}.png`,
      label: defect === 'none' ? (i % 4 === 0 ? 0.3333 : 0) : 1,
      type: i % 2 ? 'poly' : 'mono',
      defect,
      seed: 100 + i,
    };
    cells.push(c);
    await writeCell(join(dir, c.name), { defect, seed: c.seed });
  }
  // ELPV's layout: path, probability, type, whitespace-separated; a split file names half of them.
  writeFileSync(join(dir, 'labels.csv'), cells.map((c) => `images/${c.name}  ${c.label}  ${c.type}\n`).join(''));
  writeFileSync(
    join(dir, 'split.txt'),
    cells
      .filter((_, i) => i < 18)
      .map((c) => `${c.name}\n`)
      .join(''),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const evalCli = (folder: ShippedModel, ...extra: string[]) =>
  spawnSync(process.execPath, [cli, 'model', 'eval', '--model', shippedModel(folder).dir, '--images', dir, '--labels', join(dir, 'labels.csv'), ...extra], {
    encoding: 'utf8',
  });

describe('edgeferry model eval', () => {
  it.each(MODELS)(
    'counts what the model outputs at the manifest threshold, with intervals and per-type figures (%s)',
    async (folder) => {
      const r = evalCli(folder, '--split', join(dir, 'split.txt'), '--json');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout) as EvalJson;
      const { manifest, file } = shippedModel(folder);
      expect(out.model.version).toBe(manifest.version);
      expect(out.n).toBe(18);

      // The same cells through onnxruntime here: the confusion matrix must match.
      const session = await ort.InferenceSession.create(file);
      const want = { tp: 0, fp: 0, tn: 0, fn: 0 };
      for (const c of cells.slice(0, 18)) {
        const px = drawCell({ defect: c.defect, seed: c.seed });
        const res = await session.run({ image: new ort.Tensor('float32', Float32Array.from(px), [1, 1, 300, 300]) });
        const p = (res.defect_probability!.data as Float32Array)[0]!;
        const pos = c.label >= 0.5;
        const pred = p >= manifest.threshold;
        want[pred ? (pos ? 'tp' : 'fp') : pos ? 'fn' : 'tn']++;
      }
      await session.release();
      expect({ tp: out.tp, fp: out.fp, tn: out.tn, fn: out.fn }).toEqual(want);
      expect(out.accuracy).toBeCloseTo((want.tp + want.tn) / 18, 10);

      // Each interval holds its figure.
      for (const k of ['accuracy', 'recall', 'false_positive_rate'] as const) {
        const [lo, hi] = out.ci[k];
        expect(lo).toBeLessThanOrEqual(out[k]);
        expect(hi).toBeGreaterThanOrEqual(out[k]);
      }
      // Per type: both types, and their counts add up to the whole.
      expect(Object.keys(out.by_type).sort()).toEqual(['mono', 'poly']);
      for (const k of ['tp', 'fp', 'tn', 'fn', 'n'] as const) expect(out.by_type.mono![k] + out.by_type.poly![k]).toBe(out[k]);
      expect(out.latency.p99_ms).toBeGreaterThan(0);
    },
    60_000,
  );

  it('prints the same figures as text, one line per cell type', () => {
    const json = JSON.parse(evalCli('el-defect', '--json').stdout) as { accuracy: number; n: number };
    const r = evalCli('el-defect');
    expect(r.status).toBe(0);
    expect(json.n).toBe(24);
    expect(r.stdout).toContain(`accuracy   ${(json.accuracy * 100).toFixed(2)}%  (95% CI `);
    expect(r.stdout).toMatch(/^mono {7}12 images: accuracy /m);
    expect(r.stdout).toMatch(/^poly {7}12 images: accuracy /m);
    expect(r.stdout).toMatch(/^latency {4}p50 [\d.]+ ms {2}p99 [\d.]+ ms per image/m);
  }, 60_000);
});
