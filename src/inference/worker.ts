// The inference worker thread: file read + decode (our grey-PNG fast path, else sharp) and the ONNX model
// (onnxruntime-node, CPU), so the gateway's event loop never waits for either. Messages are
// handled one at a time, so a model swap happens between batches, never inside one.
import { GatewayError } from '../errors.js';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Manifest } from './model.js';
import { decodeCell, sessionOptions } from './preprocess.js';

export type ToWorker = { type: 'load'; seq: number; bytes: Uint8Array; manifest: Manifest; sha256: string } | { type: 'batch'; seq: number; files: string[] };

export interface ImageResult {
  file: string;
  probability?: number;
  error?: string;
  preprocessMs: number;
  inferenceMs: number;
}

export type FromWorker =
  | { type: 'loaded'; seq: number; ok: true; sha256: string; selfTestMs: number }
  | { type: 'loaded'; seq: number; ok: false; error: string }
  | { type: 'results'; seq: number; sha256: string; results: ImageResult[] }
  /** The batch threw (or, made up by the stage, the worker died while it was running it). */
  | { type: 'failed'; seq: number; error: string; died?: boolean }
  /** The thread is ending after an uncaught exception (it exits once its work in progress is done). */
  | { type: 'fatal'; seq?: undefined; error: string };

const port = parentPort!;
const threads = (workerData as { threads?: number } | undefined)?.threads ?? 1;

let current: { session: ort.InferenceSession; manifest: Manifest; sha256: string } | undefined;

async function load(m: Extract<ToWorker, { type: 'load' }>): Promise<FromWorker> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(m.bytes, sessionOptions(threads));
    const { input, output } = m.manifest;
    if (!session.inputNames.includes(input.name))
      throw new GatewayError('GW_ERR_EL_MODEL', `model input is ${JSON.stringify(session.inputNames)}, the manifest says "${input.name}"`);
    if (!session.outputNames.includes(output.name))
      throw new GatewayError('GW_ERR_EL_MODEL', `model output is ${JSON.stringify(session.outputNames)}, the manifest says "${output.name}"`);
    // Self-test: a flat mid-grey cell must give one probability in [0, 1].
    const t0 = performance.now();
    const probe = new Float32Array(input.width * input.height).fill(128);
    const out = await session.run({ [input.name]: new ort.Tensor('float32', probe, [1, 1, input.height, input.width]) });
    const v = out[output.name];
    if (!v || v.data.length !== 1 || typeof v.data[0] !== 'number' || !(v.data[0] >= 0 && v.data[0] <= 1)) {
      throw new GatewayError(
        'GW_ERR_EL_MODEL',
        `self-test: expected one probability in [0, 1] for a ${input.width}x${input.height} image, got ${
          v
            ? `${v.data.length} values (${Array.from(v.data as Float32Array)
                .slice(0, 3)
                .join(', ')})`
            : 'no output'
        }`,
      );
    }
    const selfTestMs = performance.now() - t0;
    const old = current;
    current = { session, manifest: m.manifest, sha256: m.sha256 };
    await old?.session.release().catch(() => undefined);
    return { type: 'loaded', seq: m.seq, ok: true, sha256: m.sha256, selfTestMs };
  } catch (err) {
    await session?.release().catch(() => undefined);
    return { type: 'loaded', seq: m.seq, ok: false, error: (err as Error).message };
  }
}

/** The model's input, reused image after image (runs are one at a time). */
let scratch: Float32Array | undefined;

async function batch(m: Extract<ToWorker, { type: 'batch' }>): Promise<FromWorker> {
  const model = current!;
  const { input, output } = model.manifest;
  const pixels = input.width * input.height;
  // Fast-path decodes (and the file reads) run here, one after another; sharp's decodes, for
  // images off the fast path, run on libuv's thread pool and overlap.
  const decoded = await Promise.all(
    m.files.map(async (file) => {
      const t0 = performance.now();
      try {
        const data = await decodeCell(file, input);
        const r: ImageResult = { file, preprocessMs: performance.now() - t0, inferenceMs: 0 };
        return { r, data };
      } catch (err) {
        const r: ImageResult = { file, error: `unreadable image: ${(err as Error).message}`, preprocessMs: performance.now() - t0, inferenceMs: 0 };
        return { r, data: undefined };
      }
    }),
  );
  const results = decoded.map((d) => d.r);
  const good = decoded.filter((d): d is { r: ImageResult; data: Buffer } => d.data !== undefined);
  // The model runs image by image: on the CPU a batched run costs the same per image (3.3 ms each
  // for 1, 2, 4 or 8 here) while ONNX Runtime's arena grows by about 3.4 MB per image in the
  // batch and keeps it. Batches still pay off around the model: one message each way, one
  // buffer transaction, one round of file moves.
  if (scratch?.length !== pixels) scratch = new Float32Array(pixels);
  for (const g of good) {
    const t1 = performance.now();
    scratch.set(g.data);
    const out = await model.session.run({ [input.name]: new ort.Tensor('float32', scratch, [1, 1, input.height, input.width]) });
    g.r.inferenceMs = performance.now() - t1;
    g.r.probability = (out[output.name]!.data as Float32Array)[0]!;
  }
  return { type: 'results', seq: m.seq, sha256: model.sha256, results };
}

let chain = Promise.resolve();
// An exception that escaped everything leaves this thread in an unknown state: it ends itself and
// the stage starts a fresh one. Not at once, though: ending a thread while ONNX Runtime still runs
// a model on it can abort the whole process from native code. The work in progress finishes first.
let ending = false;
process.on('uncaughtException', (err) => {
  if (ending) return;
  ending = true;
  port.postMessage({ type: 'fatal', error: err?.message ?? String(err) } satisfies FromWorker);
  void chain.finally(() => process.exit(1));
});
port.on('message', (m: ToWorker) => {
  chain = chain.then(async () => {
    let reply: FromWorker;
    try {
      reply = m.type === 'load' ? await load(m) : await batch(m);
    } catch (err) {
      // Never leave a message unanswered: the stage would wait for it forever.
      reply = { type: 'failed', seq: m.seq, error: `inference failed: ${(err as Error).message ?? String(err)}` };
    }
    port.postMessage(reply);
  });
});
