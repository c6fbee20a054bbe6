// The EL inference stage: an inbox folder → a bounded queue → the worker thread (decode, resize,
// ONNX model) → verdicts appended to the store-and-forward buffer → images moved out of the inbox.
//
//   camera writes x.tmp, renames to x.png ──► inbox/ ──(watch + rescan at start)──► queue (bounded)
//        ──► worker: sharp + onnxruntime (batches when a queue builds) ──► buffer.append(verdicts)
//        ──► rename to processed/ (or rejected/ with a .reason.txt)
//
// An image leaves the inbox only after its verdict is committed to the buffer, so a crash loses
// nothing; one between the commit and the move makes the image be classified again after the
// restart (at-least-once, like everything else here). A new model (model.onnx renamed into place,
// or reload()) is checked in the worker and swapped between batches; a bad one is refused and
// the old one keeps serving.
import { GatewayError } from '../errors.js';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { EL_DEVICE, type Sample } from '../core/sample.js';
import { workerScript } from '../core/worker-script.js';
import { readModel, type Manifest } from './model.js';
import type { InferenceConfig } from './schema.js';
import type { FromWorker, ImageResult, ToWorker } from './worker.js';

export interface StageDeps {
  log: Logger;
  baseDir: string;
  /** One transaction; throws when the disk refuses (then the images stay in the inbox). */
  append(samples: Sample[]): void;
  /** Retained status of the stage. */
  status(payload: Record<string, unknown>): void;
  /** Counts for /metrics (optional). */
  count?(what: 'classified' | 'rejected' | 'model_rejected', n: number, queued: number): void;
  /** A worker died or a batch failed in it (counted and logged by the gateway's health). */
  fault?(err: unknown): void;
  /** The worker script; tests pass one that wraps the real worker. */
  workerFile?: string;
}

/** Tries per image in workers that died or failed on its batch before it is rejected with the reason. */
const TRIES = 2;

export interface StageCounters {
  classified: number;
  rejected: number;
  batches: number;
  modelLoads: number;
  modelRejected: number;
  workerRestarts: number;
}

/** Names in `dir`; none if it cannot be read. */
function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Paths of `names` in `dir`, oldest modification first. */
function oldestFirst(dir: string, names = list(dir)): string[] {
  return names
    .map((n) => join(dir, n))
    .map((p) => ({ p, t: statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => a.t - b.t)
    .map((f) => f.p);
}

export class InferenceStage {
  readonly counters: StageCounters = { classified: 0, rejected: 0, batches: 0, modelLoads: 0, modelRejected: 0, workerRestarts: 0 };
  private readonly inbox: string;
  private readonly processed: string;
  private readonly rejected: string;
  private readonly modelDir: string;
  private readonly pattern: RegExp | undefined;
  private readonly exts: Set<string>;
  private workers: Worker[] = [];
  /** Workers with a batch in flight. */
  private readonly busy = new Set<Worker>();
  /** Failed tries per image (a batch that failed or whose worker died). */
  private readonly tries = new Map<string, number>();
  private lastWorkerError: string | undefined;
  /** Set while a model is being swapped in: no new batches until it is done. */
  private swapping = false;
  private modelBytes: Uint8Array | undefined;
  private watcher: FSWatcher | undefined;
  private modelWatcher: FSWatcher | undefined;
  private readonly queue: string[] = [];
  private readonly known = new Set<string>();
  private overflowed = false;
  private seq = 0;
  /** Messages awaiting their answer, with the worker answering them (its death answers instead). */
  private readonly waiting = new Map<number, { w: Worker; answer: (m: FromWorker) => void }>();
  private model: { manifest: Manifest; sha256: string } | undefined;
  private lastModelError: string | undefined;
  private stopped = false;
  private idle: (() => void)[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: InferenceConfig,
    private readonly deps: StageDeps,
  ) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(deps.baseDir, p));
    this.inbox = abs(cfg.inbox);
    this.processed = abs(cfg.processed_dir ?? join(cfg.inbox, 'processed'));
    this.rejected = abs(cfg.rejected_dir ?? join(cfg.inbox, 'rejected'));
    this.modelDir = abs(cfg.model_dir);
    this.pattern = cfg.id_pattern ? new RegExp(cfg.id_pattern) : undefined;
    this.exts = new Set(cfg.extensions.map((e) => `.${e}`));
  }

  get queued(): number {
    return this.queue.length;
  }

  get modelInfo(): { name: string; version: string; sha256: string } | undefined {
    return this.model && { name: this.model.manifest.name, version: this.model.manifest.version, sha256: this.model.sha256 };
  }

  async start(): Promise<void> {
    for (const d of [this.inbox, this.processed, this.rejected]) mkdirSync(d, { recursive: true });
    // Images leave the inbox by rename, which only works within one file system.
    const dev = statSync(this.inbox).dev;
    for (const d of [this.processed, this.rejected]) {
      if (statSync(d).dev !== dev)
        throw new GatewayError(
          'GW_ERR_CONFIG_INVALID',
          `inference: ${d} must be on the same file system as the inbox ${this.inbox} (images are moved by rename)`,
        );
    }
    for (let i = 0; i < this.cfg.workers; i++) this.spawn();
    const loaded = await this.loadModel();
    if (!loaded) throw new GatewayError('GW_ERR_EL_MODEL', `EL model in ${this.modelDir} could not be loaded: ${this.lastModelError}`);
    // Pick up on rename (the camera's write-then-rename), and rescan what arrived while stopped.
    this.watcher = watch(this.inbox, (_event, name) => {
      if (name) this.offer(join(this.inbox, name.toString()));
    });
    this.modelWatcher = watch(this.modelDir, (_event, name) => {
      if (name && (name.toString() === this.model?.manifest.file || name.toString() === 'model.json')) {
        // Debounce: a copy and a rename arrive as several events.
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => void this.reload().catch((err: unknown) => this.deps.fault?.(err)), 200);
      }
    });
    this.rescan();
    this.publishStatus();
  }

  private spawn(): Worker {
    // A small young generation: the worker's garbage is short-lived image buffers, and V8's default
    // semi-spaces kept about 13 MB more resident per worker with no gain in speed (bench/el.ts).
    const w = new Worker(this.deps.workerFile ?? workerScript(import.meta.url, 'worker'), {
      workerData: { threads: this.cfg.threads },
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    w.on('message', (m: FromWorker) => {
      if (m.type === 'fatal') return void (this.lastWorkerError = m.error);
      const waiter = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      waiter?.answer(m);
    });
    // An uncaught error ends the worker: 'exit' follows and does the counting.
    w.on('error', (err) => (this.lastWorkerError = err.message));
    w.on('exit', (code) => void this.exited(w, code));
    this.workers.push(w);
    return w;
  }

  /**
   * Supervision: a worker that ended on its own (an uncaught error, out of memory) answers its
   * pending messages with a failure — so its batch is retried or rejected, never left busy — and is
   * replaced by a new one with the model in service.
   */
  private async exited(w: Worker, code: number): Promise<void> {
    this.workers = this.workers.filter((x) => x !== w);
    if (this.stopped) return;
    const error = `inference worker exited (code ${code}${this.lastWorkerError ? `: ${this.lastWorkerError}` : ''})`;
    this.lastWorkerError = undefined;
    this.counters.workerRestarts++;
    this.deps.log.error({ code, restarts: this.counters.workerRestarts }, 'inference worker died; starting a new one');
    this.deps.fault?.(new Error(error));
    for (const [seq, waiter] of this.waiting) {
      if (waiter.w !== w) continue;
      this.waiting.delete(seq);
      waiter.answer({ type: 'failed', seq, error, died: true });
    }
    const fresh = this.spawn();
    if (this.model && this.modelBytes) {
      const reply = await this.call(fresh, { type: 'load', seq: ++this.seq, bytes: this.modelBytes, manifest: this.model.manifest, sha256: this.model.sha256 });
      if (reply.type !== 'loaded' || !reply.ok)
        this.deps.log.error({ error: 'error' in reply ? reply.error : 'no answer' }, 'new inference worker could not load the model');
    }
    this.publishStatus();
    this.pump();
  }

  /** Checks and swaps in the model in model_dir. False (and the old model keeps serving) if it is refused. */
  async reload(): Promise<boolean> {
    if (this.stopped) return false;
    return this.loadModel();
  }

  private async loadModel(): Promise<boolean> {
    let disk;
    try {
      disk = readModel(this.modelDir);
    } catch (err) {
      return this.refused((err as Error).message);
    }
    if (this.model && disk.sha256 === this.model.sha256) return true;
    // Atomic for the images: batches in flight finish on the old model, none start until every
    // worker has the new one (or the old one back).
    this.swapping = true;
    try {
      await this.batchesDone();
      const [first, ...rest] = this.workers;
      const load = (w: Worker, bytes: Uint8Array, manifest: Manifest, sha256: string) =>
        this.call(w, { type: 'load', seq: ++this.seq, bytes, manifest, sha256 });
      const reply = await load(first!, disk.bytes, disk.manifest, disk.sha256);
      if (reply.type !== 'loaded' || !reply.ok) return this.refused(`${disk.path}: ${reply.type === 'loaded' && !reply.ok ? reply.error : 'no answer'}`);
      for (const w of rest) {
        const r = await load(w, disk.bytes, disk.manifest, disk.sha256);
        if (r.type !== 'loaded' || !r.ok) {
          // Same bytes failed on another worker (memory?): put the old model back everywhere.
          if (this.model && this.modelBytes) for (const x of this.workers) await load(x, this.modelBytes, this.model.manifest, this.model.sha256);
          return this.refused(`${disk.path}: ${r.type === 'loaded' && !r.ok ? r.error : 'no answer'}`);
        }
      }
      this.model = { manifest: disk.manifest, sha256: disk.sha256 };
      this.modelBytes = disk.bytes;
      this.lastModelError = undefined;
      this.counters.modelLoads++;
      this.deps.log.info(
        { model: disk.manifest.name, version: disk.manifest.version, sha256: disk.sha256, self_test_ms: Math.round(reply.selfTestMs * 10) / 10 },
        'EL model in service',
      );
      this.publishStatus();
      return true;
    } finally {
      this.swapping = false;
      this.pump();
    }
  }

  private batchesDone(): Promise<void> {
    if (!this.busy.size) return Promise.resolve();
    return new Promise((r) => this.batchWaiters.push(r));
  }
  private batchWaiters: (() => void)[] = [];

  private refused(error: string): boolean {
    this.counters.modelRejected++;
    this.deps.count?.('model_rejected', 1, this.queue.length);
    this.lastModelError = error;
    this.deps.log.error({ error, serving: this.modelInfo }, this.model ? 'new EL model refused; the previous one keeps serving' : 'EL model refused');
    this.publishStatus();
    return false;
  }

  private call(w: Worker, m: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      if (!this.workers.includes(w)) return resolve({ type: 'failed', seq: m.seq, error: 'inference worker is gone' });
      this.waiting.set(m.seq, { w, answer: resolve });
      // Model bytes are copied (the buffer stays usable here); file lists are small.
      w.postMessage(m);
    });
  }

  private lastStatus = '';

  /**
   * The retained status says what a consumer acts on — serving or not, which model, its threshold,
   * the last model error, worker restarts — and is published only when that changes. Counts that
   * move with every image (queued, classified, rejected) are on /metrics and /healthz instead.
   */
  private publishStatus(): void {
    const status = {
      state: this.lastModelError && !this.model ? 'error' : 'serving',
      model: this.modelInfo ?? null,
      threshold: this.model?.manifest.threshold ?? null,
      model_error: this.lastModelError ?? null,
      worker_restarts: this.counters.workerRestarts,
    };
    const key = JSON.stringify(status);
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    this.deps.status({ ...status, since: new Date().toISOString() });
  }

  private rescan(): void {
    // Oldest first, as they were written.
    for (const f of oldestFirst(
      this.inbox,
      list(this.inbox).filter((n) => this.wanted(n)),
    ))
      this.offer(f);
  }

  private wanted(path: string): boolean {
    const name = basename(path);
    return !name.startsWith('.') && this.exts.has(extname(name).toLowerCase());
  }

  /** An image in the inbox: queue it unless it is queued already or the queue is full (it waits). */
  private offer(path: string): void {
    if (this.stopped || this.known.has(path) || !this.wanted(path) || !existsSync(path)) return;
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) return;
    if (this.queue.length >= this.cfg.max_queue) {
      this.overflowed = true;
      return;
    }
    this.known.add(path);
    this.queue.push(path);
    this.pump();
  }

  private pump(): void {
    if (!this.stopped && !this.swapping && this.model) {
      for (const w of this.workers) {
        if (!this.queue.length && !this.retryOne.length) break;
        if (this.busy.has(w)) continue;
        const retry = this.retryOne.shift();
        if (retry !== undefined) this.dispatch(w, [retry]);
        else this.dispatch(w, this.queue.splice(0, this.cfg.max_batch));
      }
    }
    if (!this.busy.size) {
      for (const cb of this.batchWaiters.splice(0)) cb();
      if ((!this.queue.length && !this.retryOne.length) || this.stopped) for (const cb of this.idle.splice(0)) cb();
    }
  }

  private dispatch(w: Worker, files: string[]): void {
    this.busy.add(w);
    void this.call(w, { type: 'batch', seq: ++this.seq, files }).then((reply) => {
      this.busy.delete(w);
      if (reply.type === 'results') this.settle(reply.results, reply.sha256);
      else if (reply.type === 'failed') {
        if (!reply.died) this.deps.fault?.(new Error(reply.error));
        this.failed(files, reply.error);
      }
      for (const f of files) if (!this.retryOne.includes(f)) this.known.delete(f);
      if (this.overflowed && this.queue.length < this.cfg.max_queue / 2) {
        this.overflowed = false;
        this.rescan();
      }
      this.pump();
    });
  }

  /** A batch whose worker died or threw: each image is tried again, or rejected after TRIES. */
  private failed(files: string[], error: string): void {
    const again: string[] = [];
    for (const f of files) {
      const n = (this.tries.get(f) ?? 0) + 1;
      if (n < TRIES) {
        this.tries.set(f, n);
        again.push(f);
        continue;
      }
      this.tries.delete(f);
      this.counters.rejected++;
      this.deps.count?.('rejected', 1, this.queue.length);
      this.deps.log.warn({ image: basename(f), reason: error }, 'EL image rejected');
      const dest = this.move(f, this.rejected);
      if (dest) writeFileSync(`${dest}.reason.txt`, `${error} (${TRIES} tries)\n`);
    }
    // Tried again one at a time, so that one bad image does not take its batch-mates down again.
    this.retryOne.push(...again);
    this.publishStatus();
  }

  /** Images to try again, each in a batch of its own. */
  private readonly retryOne: string[] = [];

  private ids(file: string): { station: string; line?: string; cell?: string } {
    const g = this.pattern?.exec(basename(file))?.groups;
    return { station: g?.station ?? 'default', line: g?.line, cell: g?.cell };
  }

  /** Verdicts into the buffer (one transaction), then the files out of the inbox. */
  private settle(results: ImageResult[], sha256: string): void {
    this.counters.batches++;
    const m = this.model!.manifest;
    const now = Date.now();
    const ok = results.filter((r) => r.probability !== undefined);
    const samples: Sample[] = ok.map((r) => {
      const id = this.ids(r.file);
      const p = r.probability!;
      return {
        ts: now,
        kind: 'el',
        device: EL_DEVICE,
        point: id.station,
        value: Math.round(p * 1e6) / 1e6,
        quality: 'good',
        priority: this.cfg.priority,
        channel: 'el:inbox',
        extra: {
          image: basename(r.file),
          station: id.station,
          line: id.line,
          cell: id.cell,
          verdict: p >= m.threshold ? 'defective' : 'ok',
          threshold: m.threshold,
          model: { name: m.name, version: m.version, sha256 },
          preprocess_ms: Math.round(r.preprocessMs * 100) / 100,
          inference_ms: Math.round(r.inferenceMs * 100) / 100,
        },
      };
    });
    try {
      if (samples.length) this.deps.append(samples);
    } catch (err) {
      // Nothing moves: the images stay in the inbox and are classified again after a pause.
      this.deps.log.error({ err, images: samples.length }, 'buffer append failed; EL images stay in the inbox');
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.rescan();
        }, 5000);
      }
      return;
    }
    for (const r of results) this.tries.delete(r.file);
    this.counters.classified += ok.length;
    this.deps.count?.('classified', ok.length, this.queue.length);
    for (const r of ok) this.move(r.file, this.processed);
    for (const r of results) {
      if (r.error === undefined) continue;
      this.counters.rejected++;
      this.deps.count?.('rejected', 1, this.queue.length);
      this.deps.log.warn({ image: basename(r.file), reason: r.error }, 'EL image rejected');
      const dest = this.move(r.file, this.rejected);
      if (dest) writeFileSync(`${dest}.reason.txt`, `${r.error}\n`);
    }
    this.prune();
    this.publishStatus();
  }

  private move(file: string, dir: string): string | undefined {
    const dest = join(dir, basename(file));
    try {
      renameSync(file, dest);
      return dest;
    } catch (err) {
      this.deps.log.warn({ err, file }, 'could not move EL image out of the inbox');
      return undefined;
    }
  }

  private prune(): void {
    if (this.counters.batches % 16 !== 0 && this.cfg.keep_processed > 0) return;
    const names = list(this.processed);
    if (names.length <= this.cfg.keep_processed) return;
    const files = oldestFirst(this.processed, names);
    for (const f of files.slice(0, files.length - this.cfg.keep_processed)) {
      try {
        unlinkSync(f);
      } catch {
        /* gone already */
      }
    }
  }

  /** Resolves when the queue is empty and no batch is in flight (tests, drain on stop). */
  whenIdle(): Promise<void> {
    if (!this.busy.size && !this.queue.length && !this.retryOne.length) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reloadTimer);
    clearTimeout(this.retryTimer);
    this.watcher?.close();
    this.modelWatcher?.close();
    this.queue.length = 0;
    // Let the batch in flight finish so its verdicts are committed and its files moved.
    if (this.busy.size) await new Promise<void>((r) => this.idle.push(r));
    for (const w of this.idle.splice(0)) w();
    // Nor while a worker is still loading a model (a replacement after a crash, a reload): ending
    // a thread inside ONNX Runtime's native code aborts the whole process. Bounded: 10 s.
    for (const until = Date.now() + 10_000; this.waiting.size && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
