// EL inference stage figures: per-image latency on one core (file read + decode + resize +
// inference, one at a time, one thread), stage throughput with one and two workers (inbox → worker
// threads → verdicts committed to a real SQLite buffer → files moved), and the RSS the stage adds.
//
//   npm run bench:el -- --images 600 --model models/el-defect
//   npm run bench:el -- --cells ../shared/elpv/images     (real EL cells instead of synthetic ones)
//   npm run bench:el -- --model models/el-defect-lite,models/el-defect   (several models in one run:
//       the one-core latency interleaved image by image, ratios against the last one named)
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { quantile } from '../src/core/quantile.js';
import { writeCell } from '../simulators/el-camera/index.js';
import { SqliteBuffer } from '../src/buffer/sqlite-buffer.js';
import { readModel } from '../src/inference/model.js';
import { decodeCell, sessionOptions, toInput } from '../src/inference/preprocess.js';
import { InferenceStage } from '../src/inference/stage.js';

const values = scriptArgs('bench:el', 'EL inference stage: latency per image and memory.', {
  images: { type: 'string', default: '600' },
  model: { type: 'string', default: 'models/el-defect' },
  stage: { type: 'string' },
  dir: { type: 'string' },
  cells: { type: 'string' },
});
const N = Number(values.images);
const q = quantile;
const mb = (b: number) => (b / 1048576).toFixed(1);

const child = values.stage !== undefined;
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'edgeferry-bench-el-'));
const src = values.cells ?? join(dir, 'src');
if (!child && !values.cells) {
  mkdirSync(src);
  for (let i = 0; i < 100; i++) await writeCell(join(src, `c${i}.png`), { defect: i % 3 ? 'none' : 'crack', seed: i });
}
const srcFiles = readdirSync(src)
  .filter((f) => f.endsWith('.png'))
  .sort()
  .map((f) => join(src, f));
const UNIQUE = srcFiles.length;
if (!UNIQUE) throw new Error(`bench:el: no .png files in ${src}`);
if (child) {
  // One stage configuration in a fresh process, so its RSS is its own.
  const [w, t] = values.stage!.split('x').map(Number);
  await stageRun(w!, t!);
  process.exit(0);
}
console.log(
  `edgeferry EL bench — node ${process.version}, ${process.arch}, onnxruntime-node ${ort.env.versions.common}; model ${values.model}; ${
    values.cells ? `${UNIQUE} real cells from ${values.cells}` : `${UNIQUE} distinct synthetic 300x300 PNG cells`
  }`,
);

// 1. One core, one image at a time; with several models, each image through each in turn
// (alternating which goes first), so the machine's noise falls on all of them alike.
const modelDirs = values.model.split(',').filter(Boolean);
const runs = await Promise.all(
  modelDirs.map(async (m) => {
    const model = readModel(m);
    const session = await ort.InferenceSession.create(model.bytes, sessionOptions(1));
    return { dir: m, model, session, dec: [] as number[], inf: [] as number[], tot: [] as number[] };
  }),
);
const once = async (r: (typeof runs)[number], file: string) => {
  const { input } = r.model.manifest;
  const t0 = performance.now();
  const img = await decodeCell(file, input);
  const t1 = performance.now();
  await r.session.run({ [input.name]: new ort.Tensor('float32', toInput(img), [1, 1, input.height, input.width]) });
  const t2 = performance.now();
  return [t1 - t0, t2 - t1, t2 - t0] as const;
};
// Warm-up, as the stage's worker does with its self-test before its first image.
for (const r of runs) for (let i = 0; i < 20; i++) await once(r, srcFiles[i % UNIQUE]!);
for (let i = 0; i < (values.cells ? UNIQUE : Math.max(N, 500)); i++) {
  for (const r of i % 2 ? [...runs].reverse() : runs) {
    const [d, n, t] = await once(r, srcFiles[i % UNIQUE]!);
    r.dec.push(d);
    r.inf.push(n);
    r.tot.push(t);
  }
}
const last = runs[runs.length - 1]!;
for (const r of runs) {
  await r.session.release();
  const { name, version } = r.model.manifest;
  const vs =
    r === last
      ? ''
      : `; ×${(q(r.tot, 0.5) / q(last.tot, 0.5)).toFixed(2)} / ×${(q(r.tot, 0.99) / q(last.tot, 0.99)).toFixed(2)} of ${last.model.manifest.version}'s p50 / p99`;
  console.log(
    `${name} ${version} (${r.dir}, ${mb(r.model.bytes.length)} MB), one core, per image: total p50 ${q(r.tot, 0.5).toFixed(2)} ms  p99 ${q(r.tot, 0.99).toFixed(2)} ms  max ${Math.max(...r.tot).toFixed(2)} ms  (read+decode p50 ${q(r.dec, 0.5).toFixed(2)} / p99 ${q(r.dec, 0.99).toFixed(2)} ms, inference p50 ${q(r.inf, 0.5).toFixed(2)} / p99 ${q(r.inf, 0.99).toFixed(2)} ms; n ${r.tot.length})${vs}`,
  );
}

// 2. The stage with 1 and 2 workers, inbox pre-filled.
async function stageRun(workers: number, threads: number): Promise<void> {
  const tag = `${workers}-${threads}-${values.model.replace(/[^a-z0-9]+/gi, '_')}`;
  const inbox = join(dir, `inbox-${tag}`);
  mkdirSync(inbox);
  for (let i = 0; i < N; i++) copyFileSync(srcFiles[i % UNIQUE]!, join(inbox, `L1_S1_${String(i).padStart(6, '0')}.png`));
  const buffer = new SqliteBuffer(join(dir, `buffer-${tag}.db`), { synchronous: 'normal', maxBytes: 1e9, maxAgeS: 365 * 86400 });
  buffer.open();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const stage = new InferenceStage(
    {
      enabled: true,
      model_dir: values.model,
      inbox,
      keep_processed: 100_000,
      extensions: ['png'],
      topic_template: '{site}/{gateway}/el/{station}',
      status_topic: 's',
      max_queue: 256,
      max_batch: 8,
      workers,
      threads,
      priority: 'normal',
    },
    { log: pino({ level: 'silent' }), baseDir: process.cwd(), append: (s) => buffer.append(s), status: () => undefined },
  );
  const t0 = performance.now();
  await stage.start();
  while (stage.counters.classified < N) {
    await stage.whenIdle();
    if (stage.counters.classified < N) await new Promise((r) => setTimeout(r, 5));
  }
  const secs = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await stage.stop();
  const depth = buffer.depth();
  buffer.close();
  console.log(
    `${values.model}: stage, ${workers} worker${workers > 1 ? 's' : ''} × ${threads} ORT thread${threads > 1 ? 's' : ''}: ${N} images in ${secs.toFixed(2)} s = ${(N / secs).toFixed(0)} images/s (incl. start and model load); verdicts in the buffer ${depth}; RSS +${mb(peak - rss0)} MB at peak over the process before the stage started`,
  );
}
for (const cfg of ['1x1', '1x2', '2x1']) {
  for (const m of modelDirs) {
    const cellArgs = values.cells ? ['--cells', values.cells] : [];
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--stage', cfg, '--dir', dir, '--images', String(N), '--model', m, ...cellArgs], {
      stdio: 'inherit',
    });
    if (r.status !== 0) process.exitCode = 1;
  }
}
rmSync(dir, { recursive: true, force: true });
