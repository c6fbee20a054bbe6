// Where seqs continue when the buffer opens, and the event that says why (docs/store-and-forward.md,
// "Where seqs continue"). Pure: the buffer gathers the facts, this decides.
import type { Salvage } from './salvage.js';
import type { SeqMarkState } from './seq-mark.js';

export interface OpenFacts {
  path: string;
  /** The file's last seq (sqlite_sequence), 0 when it has none. */
  fileLast: number;
  /** The file's size before SQLite opened it; undefined when there was no file. */
  sizeBefore: number | undefined;
  /** The size of its write-ahead log before SQLite opened it (0 when none). */
  walBefore?: number;
  mark: SeqMarkState | 'damaged' | undefined;
  /** Set when the file was damaged and moved aside: where to, why, and what could be read from it. */
  recovered?: { movedTo: string; error: string; old: Salvage };
  nowMs: number;
}

export interface Continuation {
  /** The last seq to count as used: the next append gets next + 1. */
  next: number;
  /** buffer_recovered or buffer_reset, when the file is not simply the one the gateway was writing. */
  event?: Record<string, unknown>;
}

export function continuation(f: OpenFacts): Continuation {
  const known = typeof f.mark === 'object' ? f.mark : undefined;
  // Without a usable mark, the clock (µs since the epoch) is above any seq this gateway used.
  const above = known?.top ?? f.nowMs * 1000;
  if (f.recovered) {
    const { movedTo, error, old } = f.recovered;
    // The old file read to its end and as far as the mark says: it was the one being written, and
    // seqs continue right after it. Otherwise above the lease (or the clock).
    const whole = !old.error && known !== undefined && old.lastSeq >= known.newest;
    const next = Math.max(f.fileLast, old.lastSeq, whole ? 0 : above);
    return {
      next,
      event: {
        event: 'buffer_recovered',
        moved_to: movedTo,
        error,
        first_seq: next + 1,
        // Read from the file; null when it could not be read at all (unknown, not none).
        samples_in_file: old.opaque ? null : old.rows.length,
        ...(old.unreadable.length ? { unreadable_seqs: old.unreadable.slice(0, 20), unreadable_ranges: old.unreadable.length } : {}),
        ...(old.error ? { unreadable: old.error } : {}),
        ...(old.opaque && known ? { seqs_up_to: known.newest } : {}),
        replay: `edgeferry buffer export --file ${movedTo}`,
      },
    };
  }
  const notOurs = known ? f.fileLast < known.newest : f.fileLast === 0 && (f.mark === 'damaged' || f.sizeBefore === 0);
  if (!notOurs) return { next: f.fileLast };
  // Not the file this gateway was writing: empty after a power cut or an operator's `>`, deleted,
  // or an older copy. Whatever it held beyond its own rows is gone.
  // A write-ahead log was there and the file still ends below the mark: SQLite dropped a damaged
  // WAL tail (frames after the last valid commit), not an older copy of the file.
  const reason =
    f.sizeBefore === undefined
      ? 'missing'
      : f.sizeBefore === 0
        ? 'zero_length'
        : known && f.walBefore
          ? 'wal_tail_lost'
          : f.fileLast === 0
            ? 'empty'
            : 'older_copy';
  const next = Math.max(f.fileLast, above);
  return {
    next,
    event: {
      event: 'buffer_reset',
      reason,
      buffer: f.path,
      ...(known ? { previous_seq: known.newest, file_seq: f.fileLast, unaccounted: known.newest - f.fileLast } : { seq_mark: f.mark ?? 'missing' }),
      first_seq: next + 1,
      detail: 'samples with a seq below first_seq that did not arrive are lost',
    },
  };
}
