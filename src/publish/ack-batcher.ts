// PUBACKs become deletes in batches: one transaction per 500 acknowledged rows or per 200 ms,
// whichever comes first, instead of one per message (each transaction writes its pages to the WAL:
// at a plant's rate, deletes every 20 ms were a tenth of the gateway's CPU). Nothing waits on
// them: the rows are delivered, and the pump never reads them again on this connection. A
// connection that ends, a drain and a stop flush at once. After a crash, acknowledged rows whose
// delete had not run yet are sent again: duplicates of at most 200 ms, never a loss. A delete the
// buffer refuses (a locked or failing disk) keeps its seqs and is tried again.
const FLUSH_MS = 200;
const FLUSH_AT = 500;
const RETRY_MS = 1000;

export interface AckBatcherDeps {
  /** Deletes acknowledged rows in one transaction; throws when the disk refuses. */
  accept(seqs: readonly number[]): void;
  /** After a delete went through. */
  flushed(n: number): void;
  fault(err: unknown): void;
}

export class AckBatcher {
  private acked: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AckBatcherDeps) {}

  add(seq: number): void {
    this.acked.push(seq);
    if (this.acked.length >= FLUSH_AT) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.acked.length) return;
    const seqs = this.acked;
    this.acked = [];
    try {
      this.deps.accept(seqs);
    } catch (err) {
      this.acked = seqs.concat(this.acked);
      this.deps.fault(err);
      this.timer = setTimeout(() => this.flush(), RETRY_MS);
      return;
    }
    this.deps.flushed(seqs.length);
  }

  /** On stop: a last flush; a delete refused then is left for the next start (a resend). */
  close(): void {
    this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
