// The EL stage's folders: the inbox a camera writes into (write x.tmp, rename to x.png), and
// processed/ and rejected/ that images leave it for by rename — so all three must be on one file
// system. New images are seen by a watch on the folder, and by a rescan at start and whenever the
// stage's queue has room again after it overflowed (images wait in the inbox: backpressure).
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { InferenceConfig } from './schema.js';

/** Names in `dir`; none if it cannot be read. */
function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Paths of `names` in `dir`, oldest modification first. */
function oldestFirst(dir: string, names = list(dir)): string[] {
  return names
    .map((n) => join(dir, n))
    .map((p) => ({ p, t: statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => a.t - b.t)
    .map((f) => f.p);
}

export class Inbox {
  readonly dir: string;
  private readonly processed: string;
  private readonly rejected: string;
  private readonly exts: Set<string>;
  private watcher: FSWatcher | undefined;

  constructor(
    private readonly cfg: InferenceConfig,
    baseDir: string,
    private readonly log: Logger,
  ) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
    this.dir = abs(cfg.inbox);
    this.processed = abs(cfg.processed_dir ?? join(cfg.inbox, 'processed'));
    this.rejected = abs(cfg.rejected_dir ?? join(cfg.inbox, 'rejected'));
    this.exts = new Set(cfg.extensions.map((e) => `.${e}`));
  }

  /** Makes the folders and checks they share a file system (images leave the inbox by rename). */
  prepare(): void {
    for (const d of [this.dir, this.processed, this.rejected]) mkdirSync(d, { recursive: true });
    const dev = statSync(this.dir).dev;
    for (const d of [this.processed, this.rejected]) {
      if (statSync(d).dev !== dev)
        throw new GatewayError(
          'GW_ERR_CONFIG_INVALID',
          `inference: ${d} must be on the same file system as the inbox ${this.dir} (images are moved by rename)`,
        );
    }
  }

  /** Calls `seen` for every name that appears (the camera's rename). */
  watch(seen: (path: string) => void): void {
    this.watcher = watch(this.dir, (_event, name) => {
      if (name) seen(join(this.dir, name.toString()));
    });
  }

  /** The images in the inbox now, oldest first (as they were written). */
  scan(): string[] {
    return oldestFirst(
      this.dir,
      list(this.dir).filter((n) => this.wanted(n)),
    );
  }

  /** An image file of a configured extension, not a hidden (temporary) one, still there. */
  isImage(path: string): boolean {
    return this.wanted(path) && existsSync(path) && statSync(path, { throwIfNoEntry: false })?.isFile() === true;
  }

  /** Classified: out to processed/ (after its verdict was committed). */
  done(file: string): void {
    this.move(file, this.processed);
  }

  /** Rejected: out to rejected/ with a .reason.txt beside it. */
  reject(file: string, reason: string): void {
    this.log.warn({ image: basename(file), reason }, 'EL image rejected');
    const dest = this.move(file, this.rejected);
    if (dest) writeFileSync(`${dest}.reason.txt`, `${reason}\n`);
  }

  /** Keeps the newest inference.keep_processed images in processed/ (none with 0). */
  prune(): void {
    const names = list(this.processed);
    if (names.length <= this.cfg.keep_processed) return;
    const files = oldestFirst(this.processed, names);
    for (const f of files.slice(0, files.length - this.cfg.keep_processed)) {
      try {
        unlinkSync(f);
      } catch {
        /* gone already */
      }
    }
  }

  close(): void {
    this.watcher?.close();
  }

  private wanted(path: string): boolean {
    const name = basename(path);
    return !name.startsWith('.') && this.exts.has(extname(name).toLowerCase());
  }

  private move(file: string, dir: string): string | undefined {
    const dest = join(dir, basename(file));
    try {
      renameSync(file, dest);
      return dest;
    } catch (err) {
      this.log.warn({ err, file }, 'could not move EL image out of the inbox');
      return undefined;
    }
  }
}
