// The seq high-water mark: a small file beside the buffer (`<buffer>.seq`) that remembers how far
// the gateway-wide seq has gone, so that a buffer file that comes back empty (zero-length after a
// power cut, deleted), or older (restored from a backup), cannot make seqs go back or be reused.
//
// Two numbers matter. `newest` is the last seq committed, rewritten in place after every append
// (one pwrite, no fsync: cheap, and on a full disk it needs no new block). `top` is a lease: no seq
// above it is ever handed out before a new `top` has been written and fsynced, so `top` is right
// even when a power cut lost the last `newest`. A buffer whose last seq is below `newest` is not the
// file the gateway was writing: it continues above `top`. `unstored` counts samples that could not
// be written at all (disk full) until they are accounted in the buffer's own events.
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';

export interface SeqMarkState {
  newest: number;
  top: number;
  unstored: number;
  /** The unstored samples by priority. */
  by?: Partial<Record<'critical' | 'normal' | 'bulk', number>>;
}

/** Seqs handed out per fsync of the lease: a restart after a lost buffer skips at most this many. */
export const SEQ_LEASE = 100_000;
/**
 * No seq the gateway hands out comes near 2^53 (where a JavaScript number stops counting by one):
 * a mark beyond this is not believed. The clock fallback (µs since the epoch) stays below it until 2112.
 */
export const MAX_SEQ = 2 ** 52;

/**
 * Why a mark that parses cannot be the one this gateway wrote (hand-edited, or damaged into other
 * numbers), or undefined when it can. The buffer then treats it as damaged and says so in an event.
 */
export function implausible(m: SeqMarkState): string | undefined {
  if (m.top > MAX_SEQ) return `top ${m.top} is beyond ${MAX_SEQ}, where seqs would stop being exact`;
  if (m.newest > m.top) return `newest ${m.newest} is above the lease top ${m.top}`;
  // Samples not stored were given leased seqs before they were refused: they fit between newest and top.
  if (m.unstored > m.top - m.newest) return `unstored ${m.unstored} does not fit between newest ${m.newest} and top ${m.top}`;
  const by = Object.values(m.by ?? {}).reduce((n, k) => n + (Number.isSafeInteger(k) && k >= 0 ? k : NaN), 0);
  if (m.by && Object.keys(m.by).length && by !== m.unstored) return `unstored ${m.unstored} is not the sum of its priorities (${by})`;
  return undefined;
}
/** The record's fixed size: rewritten in place, it never needs a new block on the disk. */
const RECORD = 256;

export class SeqMark {
  private fd: number | undefined;
  private state: SeqMarkState = { newest: 0, top: 0, unstored: 0 };

  constructor(readonly path: string) {}

  /** What the file says: undefined when there is none, 'damaged' when it cannot be parsed. */
  read(): SeqMarkState | 'damaged' | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return 'damaged';
    }
    try {
      const v = JSON.parse(text.trim()) as Partial<SeqMarkState>;
      if (![v.newest, v.top, v.unstored].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) return 'damaged';
      return { newest: v.newest!, top: v.top!, unstored: v.unstored!, by: v.by ?? {} };
    } catch {
      return 'damaged';
    }
  }

  get current(): Readonly<SeqMarkState> {
    return this.state;
  }

  /** Opens the file for in-place writes and records `state` durably. */
  open(state: SeqMarkState): void {
    // In place when it exists: truncating first would give its block back and need a new one.
    try {
      this.fd = openSync(this.path, 'r+');
    } catch {
      this.fd = openSync(this.path, 'w');
    }
    this.write(state, true);
  }

  /**
   * Records the state; `sync` fsyncs it (the lease must be on disk before a seq above the old `top`
   * is used). Throws on an I/O error; the caller decides how bad that is.
   */
  write(state: SeqMarkState, sync = false): void {
    this.state = { ...state };
    if (this.fd === undefined) return;
    const body = JSON.stringify(this.state);
    const buf = Buffer.alloc(RECORD, 0x20);
    buf.write(body, 0, 'utf8');
    buf[RECORD - 1] = 0x0a;
    writeSync(this.fd, buf, 0, RECORD, 0);
    if (sync) fdatasyncSync(this.fd);
  }

  /** Makes sure seqs up to `upTo` are covered by the lease (fsyncs a new one when they are not). */
  cover(upTo: number): void {
    if (upTo <= this.state.top) return;
    this.write({ ...this.state, top: upTo + SEQ_LEASE }, true);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
