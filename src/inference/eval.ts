// `edgeferry model eval --model DIR --images DIR --labels FILE [--split FILE] [--operating-point NAME]`:
// the model card's figures, reproduced. Labels in the ELPV format (path, defect probability, cell
// type; a cell is defective when its probability is >= 0.5); predictions at the threshold of the
// model's manifest (or of one of its named operating points), with 95% confidence intervals, for all cells and per cell type (the labels' third
// column: ELPV's mono / poly). Latency is per image, one at a time on one thread: file read +
// decode + resize + inference, as the stage does it — after 20 untimed images (the stage's first
// images after a start are slower while V8 optimises the decoder; see the warm-up below).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { EXIT, type CliIo } from '../cli/io.js';
import { quantile } from '../core/quantile.js';
import { readModel } from './model.js';
import { intervals, metrics, type Interval } from './metrics.js';
import { decodeCell, sessionOptions, toInput } from './preprocess.js';

const q = quantile;

export async function runModelCli(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'eval') {
    io.err('usage: edgeferry model eval --model DIR --images DIR --labels FILE [--split FILE] [--operating-point NAME] [--json]');
    return EXIT.USAGE;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      model: { type: 'string' },
      images: { type: 'string' },
      labels: { type: 'string' },
      split: { type: 'string' },
      'operating-point': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model || !values.images || !values.labels) {
    io.err('edgeferry model eval: --model, --images and --labels are required');
    return EXIT.USAGE;
  }
  const point = values['operating-point'];
  const model = readModel(values.model, point);
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
    .map((p) => ({ file: join(values.images!, basename(p[0]!)), label: Number(p[1]), type: p[2] ?? '' }))
    .filter((r) => !only || only.has(basename(r.file)));
  if (!rows.length) {
    io.err('edgeferry model eval: no labelled images (check --labels and --split)');
    return EXIT.USAGE;
  }
  const session = await ort.InferenceSession.create(model.bytes, sessionOptions(1));
  const { input, output } = model.manifest;
  const prob: number[] = [];
  const latency: number[] = [];
  const run = async (file: string) => {
    const img = await decodeCell(file, input);
    const out = await session.run({ [input.name]: new ort.Tensor('float32', toInput(img), [1, 1, input.height, input.width]) });
    return (out[output.name]!.data as Float32Array)[0]!;
  };
  // Untimed warm-up, as in bench:el: the first images after a start are slower while V8 optimises
  // the PNG decoder (a few ms more each); what a running stage sees is the steady state after it.
  for (let i = 0; i < 20; i++) await run(rows[i % rows.length]!.file);
  for (const r of rows) {
    const t0 = performance.now();
    prob.push(await run(r.file));
    latency.push(performance.now() - t0);
  }
  await session.release();
  const { threshold } = model.manifest;
  const labels = rows.map((r) => r.label);
  const m = metrics(prob, labels, threshold);
  const ci = intervals(m);
  const types = [...new Set(rows.map((r) => r.type).filter(Boolean))].sort();
  const byType = types.map((t) => {
    const sel = rows.flatMap((r, i) => (r.type === t ? [i] : []));
    const mt = metrics(
      sel.map((i) => prob[i]!),
      sel.map((i) => labels[i]!),
      threshold,
    );
    return [t, { ...mt, ci: intervals(mt) }] as const;
  });
  const lat = { p50_ms: q(latency, 0.5), p99_ms: q(latency, 0.99) };
  if (values.json) {
    io.out(
      JSON.stringify({
        model: { name: model.manifest.name, version: model.manifest.version, sha256: model.sha256 },
        operating_point: point ?? null,
        ...m,
        ci,
        by_type: Object.fromEntries(byType),
        latency: lat,
      }),
    );
    return EXIT.OK;
  }
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const range = ([lo, hi]: Interval, f: (x: number) => string) => `(95% CI ${f(lo)} – ${f(hi)})`;
  const pctRange = (i: Interval) => range(i, pct);
  io.out(`model      ${model.manifest.name} ${model.manifest.version} (sha256 ${model.sha256.slice(0, 16)}…)`);
  io.out(`images     ${m.n} (${m.tp + m.fn} defective, ${m.tn + m.fp} functional by label >= 0.5)`);
  io.out(`threshold  ${m.threshold}${point ? ` (operating point ${point})` : ''}`);
  io.out(`accuracy   ${pct(m.accuracy)}  ${pctRange(ci.accuracy)}`);
  io.out(`precision  ${pct(m.precision)}`);
  io.out(`recall     ${pct(m.recall)}  ${pctRange(ci.recall)}`);
  io.out(`F1         ${m.f1.toFixed(4)}`);
  io.out(`FPR        ${pct(m.false_positive_rate)}  ${pctRange(ci.false_positive_rate)}`);
  io.out(`AUC        ${m.auc.toFixed(4)}  ${range(ci.auc, (x) => x.toFixed(4))}`);
  io.out(`confusion  tp ${m.tp}  fp ${m.fp}  tn ${m.tn}  fn ${m.fn}`);
  for (const [t, mt] of byType)
    io.out(
      `${t.padEnd(10)} ${mt.n} images: accuracy ${pct(mt.accuracy)}  recall ${pct(mt.recall)}  FPR ${pct(mt.false_positive_rate)}  AUC ${mt.auc.toFixed(4)}  (tp ${mt.tp} fp ${mt.fp} tn ${mt.tn} fn ${mt.fn})`,
    );
  io.out(`latency    p50 ${lat.p50_ms.toFixed(2)} ms  p99 ${lat.p99_ms.toFixed(2)} ms per image (read + decode + resize + inference, one thread)`);
  return EXIT.OK;
}
