// The EL stage's worker threads (worker.ts: sharp + ONNX Runtime), their supervision and the model
// swap. A worker that ends on its own (an uncaught error, out of memory) answers its pending
// messages with a failure — so its batch is retried or rejected, never left busy — and is replaced
// by a new one with the model in service. A new model goes to every worker between batches: none
// start until every worker has it, or, if one refuses it, the old one back.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { workerScript } from '../core/worker-script.js';
import type { Manifest } from './model.js';
import type { FromWorker, ToWorker } from './worker.js';

export interface PoolModel {
  manifest: Manifest;
  sha256: string;
  bytes: Uint8Array;
}

export interface WorkerPoolDeps {
  log: Logger;
  /** Threads per worker for ONNX Runtime (inference.threads). */
  threads: number;
  /** The worker script; tests pass one that wraps the real worker. */
  workerFile?: string;
  /** A worker ended on its own (its pending messages are answered with a failure). */
  died(error: string, restarts: number): void;
  /** The new worker that took its place has the model in service (if any). */
  replaced(): void;
}

export class WorkerPool {
  private workers: Worker[] = [];
  /** Workers with a batch in flight. */
  private readonly busy = new Set<Worker>();
  /** Messages awaiting their answer, with the worker answering them (its death answers instead). */
  private readonly waiting = new Map<number, { w: Worker; answer: (m: FromWorker) => void }>();
  private batchWaiters: (() => void)[] = [];
  private lastError: string | undefined;
  private seq = 0;
  private stopped = false;
  restarts = 0;
  /** The model every worker has (after a successful swap). */
  model: PoolModel | undefined;

  constructor(private readonly deps: WorkerPoolDeps) {}

  start(size: number): void {
    for (let i = 0; i < size; i++) this.spawn();
  }

  get busyCount(): number {
    return this.busy.size;
  }

  /** Workers free for a batch now. */
  free(): Worker[] {
    return this.workers.filter((w) => !this.busy.has(w));
  }

  /** Runs one batch on `w`; the answer is the results or a failure (also when the worker dies). */
  async batch(w: Worker, files: string[]): Promise<FromWorker> {
    this.busy.add(w);
    try {
      return await this.call(w, { type: 'batch', seq: ++this.seq, files });
    } finally {
      this.busy.delete(w);
      if (!this.busy.size) for (const cb of this.batchWaiters.splice(0)) cb();
    }
  }

  /**
   * Loads `next` into every worker once the batches in flight are done (they finish on the old
   * model). Returns the first worker's self-test time, or the error; on a refusal by any worker,
   * the old model is put back everywhere.
   */
  async swap(next: PoolModel): Promise<{ ok: true; selfTestMs: number } | { ok: false; error: string }> {
    if (this.busy.size) await new Promise<void>((r) => this.batchWaiters.push(r));
    let selfTestMs = 0;
    for (const [i, w] of this.workers.entries()) {
      const reply = await this.load(w, next);
      if (reply.type === 'loaded' && reply.ok) {
        if (i === 0) selfTestMs = reply.selfTestMs;
        continue;
      }
      // Same bytes failed on another worker (memory?): put the old model back everywhere.
      if (i > 0 && this.model) for (const x of this.workers) await this.load(x, this.model);
      return { ok: false, error: reply.type === 'loaded' && !reply.ok ? reply.error : 'no answer' };
    }
    this.model = next;
    return { ok: true, selfTestMs };
  }

  /** Ends the workers, but not while one is loading a model (ending a thread inside ONNX Runtime aborts the process). Bounded: 10 s. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const until = Date.now() + 10_000; this.waiting.size && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }

  private load(w: Worker, m: PoolModel): Promise<FromWorker> {
    return this.call(w, { type: 'load', seq: ++this.seq, bytes: m.bytes, manifest: m.manifest, sha256: m.sha256 });
  }

  private spawn(): Worker {
    // A small young generation: the worker's garbage is short-lived image buffers, and V8's default
    // semi-spaces kept about 13 MB more resident per worker with no gain in speed (bench/el.ts).
    const w = new Worker(this.deps.workerFile ?? workerScript(import.meta.url, 'worker'), {
      workerData: { threads: this.deps.threads },
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    w.on('message', (m: FromWorker) => {
      if (m.type === 'fatal') return void (this.lastError = m.error);
      const waiter = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      waiter?.answer(m);
    });
    // An uncaught error ends the worker: 'exit' follows and does the counting.
    w.on('error', (err) => (this.lastError = err.message));
    w.on('exit', (code) => void this.exited(w, code));
    this.workers.push(w);
    return w;
  }

  private async exited(w: Worker, code: number): Promise<void> {
    this.workers = this.workers.filter((x) => x !== w);
    if (this.stopped) return;
    const error = `inference worker exited (code ${code}${this.lastError ? `: ${this.lastError}` : ''})`;
    this.lastError = undefined;
    this.restarts++;
    this.deps.log.error({ code, restarts: this.restarts }, 'inference worker died; starting a new one');
    this.deps.died(error, this.restarts);
    for (const [seq, waiter] of this.waiting) {
      if (waiter.w !== w) continue;
      this.waiting.delete(seq);
      waiter.answer({ type: 'failed', seq, error, died: true });
    }
    const fresh = this.spawn();
    if (this.model) {
      const reply = await this.load(fresh, this.model);
      if (reply.type !== 'loaded' || !reply.ok)
        this.deps.log.error({ error: 'error' in reply ? reply.error : 'no answer' }, 'new inference worker could not load the model');
    }
    this.deps.replaced();
  }

  private call(w: Worker, m: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      if (!this.workers.includes(w)) return resolve({ type: 'failed', seq: m.seq, error: 'inference worker is gone' });
      this.waiting.set(m.seq, { w, answer: resolve });
      // Model bytes are copied (the buffer stays usable here); file lists are small.
      w.postMessage(m);
    });
  }
}
