// The rows just committed, kept in memory so that the publisher — usually right behind the
// appends — sends them without reading them back from SQLite. Only a run of the newest rows with
// consecutive seqs is kept (bounded in rows and bytes); whatever it does not cover (after a
// reconnect, the backlog of an outage) is read from SQLite, which stays the source of truth. Any
// row leaving the table other than by acknowledgement (eviction, dead letter) empties it.
import type { BufferedRow } from './types.js';

export class RecentRows {
  /** Slots before `head` are emptied as rows leave (a row kept there would live on into the old generation). */
  private rows: (BufferedRow | undefined)[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly maxRows = 4096,
    private readonly maxBytes = 2 << 20,
  ) {}

  /** Rows just committed, in seq order with consecutive seqs. */
  add(rows: readonly BufferedRow[]): void {
    if (!rows.length) return;
    const last = this.rows.length > this.head ? this.rows[this.rows.length - 1]!.seq : undefined;
    if (last !== undefined && rows[0]!.seq !== last + 1) this.clear(); // seqs skipped (samples not stored): a new run
    for (const r of rows) {
      this.rows.push(r);
      this.bytes += r.body.length;
    }
    while (this.rows.length - this.head > this.maxRows || (this.bytes > this.maxBytes && this.rows.length - this.head > 1)) this.dropHead();
    this.compact();
  }

  /**
   * Rows with afterSeq < seq <= upTo, at most `limit`, when this run holds them all (the run always
   * ends at the newest row, so nothing newer can be missing); undefined when SQLite must answer.
   */
  range(afterSeq: number, upTo: number, limit: number, bit = 0): BufferedRow[] | undefined {
    if (this.rows.length === this.head) return undefined;
    const first = this.rows[this.head]!.seq;
    if (afterSeq + 1 < first) return undefined;
    const out: BufferedRow[] = [];
    for (let i = this.head + (afterSeq + 1 - first); i < this.rows.length && out.length < limit; i++) {
      const r = this.rows[i]!;
      if (r.seq > upTo) break;
      if (bit ? !(r.pending & bit) : r.pending === 0) continue; // that output has it already / every output has (deleted)
      out.push(r);
    }
    return out;
  }

  /** Rows up to `seq` were acknowledged: a new connection reads from SQLite anyway. */
  dropThrough(seq: number): void {
    while (this.head < this.rows.length && this.rows[this.head]!.seq <= seq) this.dropHead();
    this.compact();
  }

  /**
   * With several outputs: `bit` acknowledged the rows in these runs. Rows every output has are
   * let go from the front; the others stay (for the outputs that still need them) until the bounds.
   */
  clearBit(runs: readonly [number, number][], bit: number): void {
    if (this.rows.length === this.head) return;
    const first = this.rows[this.head]!.seq;
    for (const [a, z] of runs) {
      for (let i = this.head + Math.max(0, a - first); i < this.rows.length; i++) {
        const r = this.rows[i]!;
        if (r.seq > z) break;
        r.pending &= ~bit;
      }
    }
    while (this.head < this.rows.length && this.rows[this.head]!.pending === 0) this.dropHead();
    this.compact();
  }

  private dropHead(): void {
    this.bytes -= this.rows[this.head]!.body.length;
    this.rows[this.head++] = undefined;
  }

  clear(): void {
    this.rows = [];
    this.head = 0;
    this.bytes = 0;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
  }
}
