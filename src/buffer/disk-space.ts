// Room to work on a full disk. Deleting rows, acknowledging them and recording a loss all write to
// SQLite's WAL, so a buffer that let its database fill the disk could no longer evict anything.
// Two measures keep that room:
//  - a page cap below the free space: the database may grow only while the file system keeps
//    `headroom` bytes free (the WAL's working size plus a margin), so SQLite reports SQLITE_FULL
//    to the buffer — which then evicts — while the disk still has space for the WAL;
//  - a reserve file (`<buffer>.reserve`) of real blocks, given back when the disk fills anyway
//    (another program's logs took the headroom) so that eviction can still run, and made again
//    once there is room.
import { closeSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DiskSpace {
  /** Bytes an unprivileged process may still write on the buffer's file system. */
  available: number;
  /** The file system's size. */
  total: number;
}

export function diskSpace(path: string): DiskSpace {
  const s = statfsSync(dirname(path));
  return { available: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

export class ReserveFile {
  private held = false;

  constructor(
    readonly path: string,
    readonly bytes: number,
  ) {}

  get present(): boolean {
    return this.held;
  }

  /** Writes the reserve (real blocks, not a sparse file). False when the disk has no room for it. */
  make(): boolean {
    if (this.held) return true;
    // The last run's reserve: its blocks are still ours.
    if (statSync(this.path, { throwIfNoEntry: false })?.size === this.bytes) return (this.held = true);
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'w');
      const chunk = Buffer.alloc(Math.min(this.bytes, 1 << 20));
      for (let done = 0; done < this.bytes; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, this.bytes - done));
      this.held = true;
    } catch {
      this.drop();
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return this.held;
  }

  /** Gives the reserve's blocks back to the file system (also a last run's); true if there was a file. */
  drop(): boolean {
    this.held = false;
    try {
      unlinkSync(this.path);
      return true;
    } catch {
      return false; // not there
    }
  }
}
