// Samples the disk refused even after eviction, and the seq mark that keeps them: they are counted
// at once (in memory and durably in the seq mark beside the file, seq-mark.ts), and with the next
// append that succeeds they take the next seqs and get a data_lost event ("not_stored") in the same
// transaction — so consumers see exactly which seqs are missing, even across a restart.
import type { Priority } from '../core/sample.js';
import { message } from './bounds.js';
import { SEQ_LEASE, type SeqMark, type SeqMarkState } from './seq-mark.js';
import type { Statements } from './statements.js';
import { PRIORITIES, prioOf, type BufferProblems } from './types.js';

export interface UnstoredHost {
  problems: BufferProblems;
  addEvent(body: Record<string, unknown>): void;
  now(): number;
}

export class Unstored {
  count = 0;
  private since = 0;
  private byPriority: Partial<Record<Priority, number>> = {};

  constructor(
    private readonly mark: SeqMark,
    private readonly host: UnstoredHost,
  ) {}

  /** At open: what the seq mark still counted from the last run, and the mark opened above `newest`. */
  open(newest: number, known: SeqMarkState | undefined): void {
    if (known?.unstored) {
      this.count = known.unstored;
      this.since = this.host.now();
      this.byPriority = { ...known.by };
    }
    try {
      this.mark.open({ newest, top: newest + SEQ_LEASE, unstored: this.count, by: this.byPriority });
      this.host.problems.set('seq_mark', undefined);
    } catch (err) {
      this.markFailed(err);
    }
  }

  /** Samples the disk refused: counted now (and in the seq mark), accounted with the next append. */
  add(priorities: readonly (Priority | undefined)[], newest: number, err: unknown): void {
    const first = !this.count;
    if (first) this.since = this.host.now();
    this.count += priorities.length;
    for (const prio of priorities) {
      const p = PRIORITIES[prioOf(prio)]!;
      this.byPriority[p] = (this.byPriority[p] ?? 0) + 1;
    }
    // One state change, not one per poll: the count is in stats() and the seq mark.
    if (first) this.host.problems.set('append', `samples cannot be stored since ${new Date(this.since).toISOString()}: ${message(err)}`);
    this.write(newest);
  }

  /** Inside the append transaction: seqs after `newest`, a data_lost event and the counter. Returns the new newest. */
  account(s: Statements, newest: number): number {
    const from = newest + 1;
    const to = newest + this.count;
    if (!s.setSeq.run(to).changes) s.initSeq.run(to);
    const event = { event: 'data_lost', reason: 'not_stored', count: this.count, by_priority: this.byPriority, ranges: [[from, to]] };
    this.host.addEvent({ ...event, since: new Date(this.since).toISOString() });
    s.bump.run('lost_unstored', this.count);
    return to;
  }

  /** After the append that accounted them committed. */
  clear(): void {
    this.count = 0;
    this.since = 0;
    this.byPriority = {};
  }

  /** Before an append: the mark leases seqs up to `upTo`, so a crash cannot reuse them. */
  cover(upTo: number): void {
    try {
      this.mark.cover(upTo);
    } catch (err) {
      this.markFailed(err);
    }
  }

  write(newest: number): void {
    try {
      this.mark.write({ ...this.mark.current, newest, unstored: this.count, by: this.byPriority });
      this.host.problems.set('seq_mark', undefined);
    } catch (err) {
      this.markFailed(err);
    }
  }

  private markFailed(err: unknown): void {
    this.host.problems.set('seq_mark', `seq mark "${this.mark.path}" not writable: ${message(err)}`);
  }
}
