// `edgeferry model eval --model DIR --images DIR --labels FILE [--split FILE]`: the model card's
// figures, reproduced. Labels in the ELPV format (path, defect probability, cell type; a cell is
// defective when its probability is >= 0.5); predictions at the threshold of the model's
// manifest. Latency is per image, one at a time on one thread: file read + decode + resize +
// inference, as the stage does it.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { EXIT, type CliIo } from '../cli/io.js';
import { quantile } from '../core/quantile.js';
import { readModel } from './model.js';
import { decodeCell, sessionOptions, toInput } from './preprocess.js';

export interface EvalMetrics {
  n: number;
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  false_positive_rate: number;
  auc: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Metrics at `threshold` for probabilities against labels (defective when label >= 0.5). */
export function metrics(prob: number[], label: number[], threshold: number): EvalMetrics {
  let tp = 0,
    fp = 0,
    tn = 0,
    fn = 0;
  prob.forEach((p, i) => {
    const pos = label[i]! >= 0.5;
    const pred = p >= threshold;
    if (pred && pos) tp++;
    else if (pred) fp++;
    else if (pos) fn++;
    else tn++;
  });
  // AUC as the Mann-Whitney statistic, ties counted half.
  const idx = prob.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(prob.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[idx[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  const npos = tp + fn;
  const nneg = fp + tn;
  const sumPos = label.reduce((s, l, i) => (l >= 0.5 ? s + ranks[i]! : s), 0);
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = npos ? tp / npos : 0;
  return {
    n: prob.length,
    threshold,
    accuracy: (tp + tn) / prob.length,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    false_positive_rate: nneg ? fp / nneg : 0,
    auc: npos && nneg ? (sumPos - (npos * (npos + 1)) / 2) / (npos * nneg) : NaN,
    tp,
    fp,
    tn,
    fn,
  };
}

const q = quantile;

export async function runModelCli(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'eval') {
    io.err('usage: edgeferry model eval --model DIR --images DIR --labels FILE [--split FILE] [--json]');
    return EXIT.USAGE;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      model: { type: 'string' },
      images: { type: 'string' },
      labels: { type: 'string' },
      split: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model || !values.images || !values.labels) {
    io.err('edgeferry model eval: --model, --images and --labels are required');
    return EXIT.USAGE;
  }
  const model = readModel(values.model);
  const only = values.split
    ? new Set(
        readFileSync(values.split, 'utf8')
          .split(/\s+/)
          .filter(Boolean)
          .map((n) => basename(n)),
      )
    : undefined;
  const rows = readFileSync(values.labels, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length >= 2 && p[0])
    .map((p) => ({ file: join(values.images!, basename(p[0]!)), label: Number(p[1]) }))
    .filter((r) => !only || only.has(basename(r.file)));
  if (!rows.length) {
    io.err('edgeferry model eval: no labelled images (check --labels and --split)');
    return EXIT.USAGE;
  }
  const session = await ort.InferenceSession.create(model.bytes, sessionOptions(1));
  const { input, output } = model.manifest;
  const prob: number[] = [];
  const latency: number[] = [];
  for (const r of rows) {
    const t0 = performance.now();
    const img = await decodeCell(r.file, input);
    const out = await session.run({ [input.name]: new ort.Tensor('float32', toInput(img), [1, 1, input.height, input.width]) });
    latency.push(performance.now() - t0);
    prob.push((out[output.name]!.data as Float32Array)[0]!);
  }
  await session.release();
  const m = metrics(
    prob,
    rows.map((r) => r.label),
    model.manifest.threshold,
  );
  const lat = { p50_ms: q(latency, 0.5), p99_ms: q(latency, 0.99) };
  if (values.json) {
    io.out(JSON.stringify({ model: { name: model.manifest.name, version: model.manifest.version, sha256: model.sha256 }, ...m, latency: lat }));
    return EXIT.OK;
  }
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  io.out(`model      ${model.manifest.name} ${model.manifest.version} (sha256 ${model.sha256.slice(0, 16)}…)`);
  io.out(`images     ${m.n} (${m.tp + m.fn} defective, ${m.tn + m.fp} functional by label >= 0.5)`);
  io.out(`threshold  ${m.threshold}`);
  io.out(`accuracy   ${pct(m.accuracy)}`);
  io.out(`precision  ${pct(m.precision)}`);
  io.out(`recall     ${pct(m.recall)}`);
  io.out(`F1         ${m.f1.toFixed(4)}`);
  io.out(`FPR        ${pct(m.false_positive_rate)}`);
  io.out(`AUC        ${m.auc.toFixed(4)}`);
  io.out(`confusion  tp ${m.tp}  fp ${m.fp}  tn ${m.tn}  fn ${m.fn}`);
  io.out(`latency    p50 ${lat.p50_ms.toFixed(2)} ms  p99 ${lat.p99_ms.toFixed(2)} ms per image (read + decode + resize + inference, one thread)`);
  return EXIT.OK;
}
