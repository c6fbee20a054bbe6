// The birth/death sequence number (bdSeq) of the edge node, 0–255: one more on every MQTT CONNECT,
// the same in that connection's Will (NDEATH) and in its NBIRTH, and kept across restarts in a
// small file next to the buffer, so that a host never takes a new session's NDEATH for an old one.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

export class BdSeqStore {
  private current: number;

  constructor(private readonly path: string) {
    let last = -1;
    try {
      // Digits only: an empty file (a power cut during the first write) is unknown, not 0.
      const text = readFileSync(path, 'utf8').trim();
      const n = Number(text);
      if (/^\d{1,3}$/.test(text) && n <= 255) last = n;
    } catch {
      // none yet (or unreadable: start over at 0)
    }
    this.current = last;
  }

  /** Whether the CONNECT that carried the current value went out (true after a restart: it may have). */
  private used = true;

  /**
   * The bdSeq for the next CONNECT, written to disk before it is used: one more than in the
   * previous CONNECT packet — the same again when that attempt never got as far as sending it
   * (the broker was unreachable), so an outage with many attempts does not skip numbers.
   */
  next(): number {
    if (!this.used && this.current >= 0) return this.current;
    this.used = false;
    const n = (this.current + 1) % 256;
    const tmp = `${this.path}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o644);
      try {
        writeSync(fd, `${n}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch {
      // A full or read-only disk must not stop publishing; the number still moves on in memory.
    }
    this.current = n;
    return n;
  }

  /** The CONNECT carrying the current value went out on a connected transport. */
  sent(): void {
    this.used = true;
  }

  get value(): number {
    return this.current;
  }
}
