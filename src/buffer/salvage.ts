// What was in a damaged buffer file that was moved aside: the seqs that can still be read, so the
// samples in it are accounted (a data_lost event with their ranges) instead of vanishing, and the
// highest seq it had handed out, so the fresh buffer continues above it. A damaged page does not
// end the count: the scan seeks past it and goes on, and the seqs it could not read are named.
import Database, { type Db } from './sqlite.js';

export interface Salvage {
  /** Samples whose seq (and priority, 0 critical … 2 bulk) could be read. */
  rows: { seq: number; prio: number }[];
  /** Highest seq the file had assigned (its sqlite_sequence, or the highest readable row). */
  lastSeq: number;
  /** Why reading failed, if it did anywhere. */
  error?: string;
  /** Seq ranges that could not be read (a damaged page): samples in them not delivered before are lost. */
  unreadable: [number, number][];
  /** The file could not be read at all: how many samples it held is unknown. */
  opaque?: boolean;
}

/** `upTo`: the highest seq the file can hold (the seq mark's), where the scan past damage stops. */
export function salvage(path: string, upTo = 0): Salvage {
  const out: Salvage = { rows: [], lastSeq: 0, unreadable: [] };
  let db: Db | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      out.lastSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck().get() as number | undefined) ?? 0;
    } catch {
      /* that page is damaged too: the rows (or the seq mark) still say how far it went */
    }
    const limit = Math.max(out.lastSeq, upTo);
    const scan = db.prepare('SELECT seq, prio FROM samples WHERE seq > ? ORDER BY seq');
    const next = db.prepare('SELECT seq FROM samples WHERE seq > ? ORDER BY seq LIMIT 1').pluck();
    let from = 0;
    for (;;) {
      try {
        // Row by row, so that a damaged page ends this pass with what came before it kept.
        for (const r of scan.iterate(from) as Iterable<{ seq: number; prio: number }>) {
          out.rows.push(r);
          from = r.seq;
        }
        break;
      } catch (err) {
        out.error ??= (err as Error).message;
      }
      // Seek past the damage: further and further until a seek lands on a readable page (or the end).
      let resumed: number | undefined | null = null;
      let step = 1;
      while (resumed === null && from + step <= Math.max(limit, from + 1)) {
        try {
          resumed = next.get(from + step) as number | undefined;
        } catch {
          step *= 2;
        }
      }
      const end = resumed === null ? Math.max(limit, from + 1) : Math.min(from + step, (resumed ?? Infinity) - 1);
      out.unreadable.push([from + 1, end]);
      if (resumed === null || resumed === undefined) break;
      from = resumed - 1;
    }
  } catch (err) {
    out.error = (err as Error).message;
    if (!out.rows.length) out.opaque = true;
  } finally {
    try {
      db?.close();
    } catch {
      /* nothing to close */
    }
  }
  if (!out.rows.length && out.error && Math.max(out.lastSeq, upTo) === 0) {
    // Nothing read and nothing says how far it went: the count is unknown, not zero.
    out.opaque = true;
    out.unreadable = [];
  }
  if (out.rows.length) out.lastSeq = Math.max(out.lastSeq, out.rows[out.rows.length - 1]!.seq);
  if (out.unreadable.length) out.lastSeq = Math.max(out.lastSeq, out.unreadable[out.unreadable.length - 1]![1]);
  return out;
}
