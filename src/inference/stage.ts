// The EL inference stage: an inbox folder → a bounded queue → the worker threads (decode, resize,
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
// the old one keeps serving. The rooms: inbox.ts (folders, watch, moves), worker-pool.ts (threads,
// supervision, model swap), verdicts.ts (results → samples); this file is the queue between them.
import { watch, type FSWatcher } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Sample } from '../core/sample.js';
import { GatewayError } from '../errors.js';
import { Inbox } from './inbox.js';
import { readModel } from './model.js';
import type { InferenceConfig } from './schema.js';
import { verdictSamples } from './verdicts.js';
import type { ImageResult } from './worker.js';
import { WorkerPool } from './worker-pool.js';

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

export class InferenceStage {
  readonly counters: StageCounters = { classified: 0, rejected: 0, batches: 0, modelLoads: 0, modelRejected: 0, workerRestarts: 0 };
  private readonly inbox: Inbox;
  private readonly pool: WorkerPool;
  private readonly modelDir: string;
  private readonly pattern: RegExp | undefined;
  /** Failed tries per image (a batch that failed or whose worker died). */
  private readonly tries = new Map<string, number>();
  /** Set while a model is being swapped in: no new batches until it is done. */
  private swapping = false;
  private modelWatcher: FSWatcher | undefined;
  private readonly queue: string[] = [];
  /** Images to try again, each in a batch of its own. */
  private readonly retryOne: string[] = [];
  private readonly known = new Set<string>();
  private overflowed = false;
  private lastModelError: string | undefined;
  private lastStatus = '';
  private stopped = false;
  private idle: (() => void)[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: InferenceConfig,
    private readonly deps: StageDeps,
  ) {
    this.inbox = new Inbox(cfg, deps.baseDir, deps.log);
    this.modelDir = isAbsolute(cfg.model_dir) ? cfg.model_dir : resolve(deps.baseDir, cfg.model_dir);
    this.pattern = cfg.id_pattern ? new RegExp(cfg.id_pattern) : undefined;
    this.pool = new WorkerPool({
      log: deps.log,
      threads: cfg.threads,
      workerFile: deps.workerFile,
      died: (error, restarts) => {
        this.counters.workerRestarts = restarts;
        this.deps.fault?.(new Error(error));
      },
      replaced: () => {
        this.publishStatus();
        this.pump();
      },
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  get modelInfo(): { name: string; version: string; sha256: string } | undefined {
    const m = this.pool.model;
    return m && { name: m.manifest.name, version: m.manifest.version, sha256: m.sha256 };
  }

  async start(): Promise<void> {
    this.inbox.prepare();
    this.pool.start(this.cfg.workers);
    const loaded = await this.loadModel();
    if (!loaded) throw new GatewayError('GW_ERR_EL_MODEL', `EL model in ${this.modelDir} could not be loaded: ${this.lastModelError}`);
    // Pick up on rename (the camera's write-then-rename), and rescan what arrived while stopped.
    this.inbox.watch((path) => this.offer(path));
    this.modelWatcher = watch(this.modelDir, (_event, name) => {
      if (name && (name.toString() === this.pool.model?.manifest.file || name.toString() === 'model.json')) {
        // Debounce: a copy and a rename arrive as several events.
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => void this.reload().catch((err: unknown) => this.deps.fault?.(err)), 200);
      }
    });
    this.rescan();
    this.publishStatus();
  }

  /** Checks and swaps in the model in model_dir. False (and the old model keeps serving) if it is refused. */
  async reload(): Promise<boolean> {
    if (this.stopped) return false;
    return this.loadModel();
  }

  private async loadModel(): Promise<boolean> {
    let disk;
    try {
      disk = readModel(this.modelDir, this.cfg.operating_point);
    } catch (err) {
      return this.refused((err as Error).message);
    }
    // The same file under the same manifest: nothing to do. A new model.json alone (a threshold, an
    // operating point, a version) is a change too, checked and swapped like a new file.
    const serving = this.pool.model;
    if (disk.sha256 === serving?.sha256 && JSON.stringify(disk.manifest) === JSON.stringify(serving.manifest)) return true;
    // Atomic for the images: batches in flight finish on the old model, none start until every
    // worker has the new one (or the old one back).
    this.swapping = true;
    try {
      const swapped = await this.pool.swap({ manifest: disk.manifest, sha256: disk.sha256, bytes: disk.bytes });
      if (!swapped.ok) return this.refused(`${disk.path}: ${swapped.error}`);
      this.lastModelError = undefined;
      this.counters.modelLoads++;
      const { name, version } = disk.manifest;
      this.deps.log.info({ model: name, version, sha256: disk.sha256, self_test_ms: Math.round(swapped.selfTestMs * 10) / 10 }, 'EL model in service');
      this.publishStatus();
      return true;
    } finally {
      this.swapping = false;
      this.pump();
    }
  }

  private refused(error: string): boolean {
    this.counters.modelRejected++;
    this.deps.count?.('model_rejected', 1, this.queue.length);
    this.lastModelError = error;
    const serving = this.modelInfo;
    this.deps.log.error({ error, serving }, serving ? 'new EL model refused; the previous one keeps serving' : 'EL model refused');
    this.publishStatus();
    return false;
  }

  /**
   * The retained status says what a consumer acts on — serving or not, which model, its threshold,
   * the last model error, worker restarts — and is published only when that changes. Counts that
   * move with every image (queued, classified, rejected) are on /metrics and /healthz instead.
   */
  private publishStatus(): void {
    const model = this.pool.model;
    const status = {
      state: this.lastModelError && !model ? 'error' : 'serving',
      model: this.modelInfo ?? null,
      threshold: model?.manifest.threshold ?? null,
      operating_point: this.cfg.operating_point ?? null,
      model_error: this.lastModelError ?? null,
      worker_restarts: this.counters.workerRestarts,
    };
    const key = JSON.stringify(status);
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    this.deps.status({ ...status, since: new Date().toISOString() });
  }

  private rescan(): void {
    for (const f of this.inbox.scan()) this.offer(f);
  }

  /** An image in the inbox: queue it unless it is queued already or the queue is full (it waits). */
  private offer(path: string): void {
    if (this.stopped || this.known.has(path) || !this.inbox.isImage(path)) return;
    if (this.queue.length >= this.cfg.max_queue) {
      this.overflowed = true;
      return;
    }
    this.known.add(path);
    this.queue.push(path);
    this.pump();
  }

  private pump(): void {
    if (!this.stopped && !this.swapping && this.pool.model) {
      for (const w of this.pool.free()) {
        if (!this.queue.length && !this.retryOne.length) break;
        const retry = this.retryOne.shift();
        this.dispatch(w, retry !== undefined ? [retry] : this.queue.splice(0, this.cfg.max_batch));
      }
    }
    if (!this.pool.busyCount && ((!this.queue.length && !this.retryOne.length) || this.stopped)) for (const cb of this.idle.splice(0)) cb();
  }

  private dispatch(w: Parameters<WorkerPool['batch']>[0], files: string[]): void {
    void this.pool.batch(w, files).then((reply) => {
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
    for (const f of files) {
      const n = (this.tries.get(f) ?? 0) + 1;
      if (n < TRIES) {
        this.tries.set(f, n);
        // Tried again one at a time, so that one bad image does not take its batch-mates down again.
        this.retryOne.push(f);
        continue;
      }
      this.tries.delete(f);
      this.rejectImage(f, `${error} (${TRIES} tries)`);
    }
    this.publishStatus();
  }

  private rejectImage(file: string, reason: string): void {
    this.counters.rejected++;
    this.deps.count?.('rejected', 1, this.queue.length);
    this.inbox.reject(file, reason);
  }

  /** Verdicts into the buffer (one transaction), then the files out of the inbox. */
  private settle(results: ImageResult[], sha256: string): void {
    this.counters.batches++;
    const model = { manifest: this.pool.model!.manifest, sha256 };
    const samples = verdictSamples(results, model, { pattern: this.pattern, priority: this.cfg.priority, now: Date.now() });
    try {
      if (samples.length) this.deps.append(samples);
    } catch (err) {
      // Nothing moves: the images stay in the inbox and are classified again after a pause.
      this.deps.log.error({ err, images: samples.length }, 'buffer append failed; EL images stay in the inbox');
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.rescan();
      }, 5000);
      return;
    }
    for (const r of results) this.tries.delete(r.file);
    this.counters.classified += samples.length;
    this.deps.count?.('classified', samples.length, this.queue.length);
    for (const r of results) {
      if (r.error === undefined) this.inbox.done(r.file);
      else this.rejectImage(r.file, r.error);
    }
    if (this.counters.batches % 16 === 0 || this.cfg.keep_processed === 0) this.inbox.prune();
    this.publishStatus();
  }

  /** Resolves when the queue is empty and no batch is in flight (tests, drain on stop). */
  whenIdle(): Promise<void> {
    if (!this.pool.busyCount && !this.queue.length && !this.retryOne.length) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reloadTimer);
    clearTimeout(this.retryTimer);
    this.inbox.close();
    this.modelWatcher?.close();
    this.queue.length = 0;
    // Let the batch in flight finish so its verdicts are committed and its files moved.
    if (this.pool.busyCount) await new Promise<void>((r) => this.idle.push(r));
    for (const w of this.idle.splice(0)) w();
    await this.pool.stop();
  }
}
