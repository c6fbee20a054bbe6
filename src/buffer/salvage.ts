// What was in a damaged buffer file that was moved aside: the seqs that can still be read, so the
// samples in it are accounted (a data_lost event with their ranges) instead of vanishing, and the
// highest seq it had handed out, so the fresh buffer continues above it.
import Database, { type Db } from './sqlite.js';

export interface Salvage {
  /** Samples whose seq (and priority, 0 critical … 2 bulk) could be read. */
  rows: { seq: number; prio: number }[];
  /** Highest seq the file had assigned (its sqlite_sequence, or the highest readable row). */
  lastSeq: number;
  /** Why reading stopped early, if it did: rows past that point could not be counted. */
  error?: string;
}

export function salvage(path: string): Salvage {
  const out: Salvage = { rows: [], lastSeq: 0 };
  let db: Db | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      out.lastSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck().get() as number | undefined) ?? 0;
    } catch {
      /* that page is damaged too: the rows still say how far it went */
    }
    // Row by row, so that a damaged page ends the scan with what came before it kept.
    for (const r of db.prepare('SELECT seq, prio FROM samples ORDER BY seq').iterate() as Iterable<{ seq: number; prio: number }>) out.rows.push(r);
  } catch (err) {
    out.error = (err as Error).message;
  } finally {
    try {
      db?.close();
    } catch {
      /* nothing to close */
    }
  }
  if (out.rows.length) out.lastSeq = Math.max(out.lastSeq, out.rows[out.rows.length - 1]!.seq);
  return out;
}
