// The runner of a "written" output (HTTP APIs such as InfluxDB's): its rows are read from its
// buffer view in batches of batch_size (or what flush_ms gathered), written by the output's
// writer, and acknowledged only once the destination answered that it has them. A failed write
// is tried again with backoff (1 s doubling to max_backoff_ms) from the same rows, so nothing is
// skipped; a write the destination refuses because of the data itself (Refused: HTTP 400/422) is
// split in halves until the refused row is alone, and that row goes to dead_letter with the
// destination's reason, so it never blocks the rest. A stop aborts the write in flight: its rows
// stay in the buffer and are written again at the next start (the destinations this is for treat
// a repeated point as the same point).
import type { BufferedRow } from '../buffer/rows.js';
import type { Output, OutputContext, OutputStatus } from './types.js';

/** The destination refused the data itself: retrying the same rows cannot succeed. */
export class Refused extends Error {}

export interface BatchWriter {
  /** Where it writes, for logs (no credentials). */
  readonly target: string;
  /** Resolves once the destination has the rows; throws Refused for the data's fault, anything else to retry. */
  write(rows: readonly BufferedRow[], signal: AbortSignal): Promise<void>;
  close?(): void;
}

export interface BatchOptions {
  batchSize: number;
  flushMs: number;
  maxBackoffMs: number;
}

const FIRST_BACKOFF_MS = 1000;

export class BatchOutput implements Output {
  readonly delivery = 'written' as const;
  private running = false;
  private busy = false;
  /** Highest seq written in this run (the view's start() after a restart). */
  private cursor = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private abort: AbortController | undefined;
  private waiters: (() => void)[] = [];
  private st: OutputStatus = { state: 'up', delivered: 0 };

  constructor(
    readonly name: string,
    readonly encoding: string,
    private readonly writer: BatchWriter,
    private readonly opts: BatchOptions,
    private readonly ctx: OutputContext,
  ) {}

  start(): void {
    this.running = true;
    this.cursor = this.ctx.view.start();
    this.ctx.log.info({ output: this.name, target: this.writer.target, from_seq: this.cursor + 1 }, 'output started');
    void this.run();
  }

  wake(): void {
    if (!this.running || this.busy || this.retryTimer || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.run();
    }, this.opts.flushMs);
  }

  status(): OutputStatus {
    return { ...this.st };
  }

  async drain(ms: number): Promise<boolean> {
    if (this.done()) return true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    void this.run();
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((r) => this.waiters.push(() => r(true))),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    this.flushTimer = this.retryTimer = undefined;
    this.abort?.abort();
    this.writer.close?.();
    this.ctx.view.protect([]);
  }

  private done(): boolean {
    return !this.busy && this.ctx.view.depth() === 0;
  }

  private async run(): Promise<void> {
    if (!this.running || this.busy || this.retryTimer) return;
    this.busy = true;
    const { view } = this.ctx;
    try {
      for (;;) {
        const rows = view.readRange(this.cursor, Infinity, this.opts.batchSize);
        if (!rows.length || !this.running) break;
        const last = rows[rows.length - 1]!.seq;
        view.protect([[0, last]]);
        this.abort = new AbortController();
        try {
          await this.deliver(rows, this.abort.signal);
        } catch (err) {
          if (this.running) this.failed(err);
          return;
        }
        this.cursor = last;
        this.ok(rows.length);
        // A short batch: what arrives next is gathered for flush_ms (wake) instead of written row by row.
        if (rows.length < this.opts.batchSize) break;
      }
    } catch (err) {
      this.ctx.fault(err); // the buffer refused a read: tried again on the next wake
    } finally {
      this.busy = false;
      this.abort = undefined;
      view.protect([]);
      if (this.waiters.length && this.done()) for (const w of this.waiters.splice(0)) w();
      else if (this.running && view.lastSeq() > this.cursor) this.wake(); // appended while writing
    }
  }

  /** Writes the rows; a refused batch is halved until the refused rows are alone, and those go to dead_letter. */
  private async deliver(rows: readonly BufferedRow[], signal: AbortSignal): Promise<void> {
    try {
      await this.writer.write(rows, signal);
      this.ctx.view.accept(rows.map((r) => r.seq));
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      if (rows.length === 1) {
        const row = rows[0]!;
        this.ctx.log.error(
          { output: this.name, seq: row.seq, device: row.device, point: row.point, reason: err.message },
          'row refused by the output; moved to dead_letter',
        );
        this.ctx.view.reject([row.seq], err.message);
        this.ctx.metrics.outputDeadLetters.inc({ output: this.name });
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await this.deliver(rows.slice(0, half), signal);
      await this.deliver(rows.slice(half), signal);
    }
  }

  private ok(n: number): void {
    this.backoffMs = 0;
    this.ctx.metrics.outputDelivered.inc({ output: this.name }, n);
    const wasDown = this.st.state === 'down';
    this.st = { state: 'up', delivered: this.st.delivered + n, lastDeliveryMs: Date.now() };
    if (wasDown) {
      this.ctx.log.info({ output: this.name, target: this.writer.target }, 'output delivering again');
      this.ctx.onStatus(this.status());
    }
  }

  private failed(err: unknown): void {
    const reason = (err as Error)?.message ?? String(err);
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs ? this.backoffMs * 2 : FIRST_BACKOFF_MS);
    const changed = this.st.state !== 'down' || this.st.reason !== reason;
    this.st = { ...this.st, state: 'down', reason };
    if (changed) {
      this.ctx.log.warn(
        { output: this.name, target: this.writer.target, reason, retry_ms: this.backoffMs },
        'output write failed; rows stay buffered and are written again',
      );
      this.ctx.onStatus(this.status());
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.run();
    }, this.backoffMs);
  }
}
