// Keeping the buffer bounded: buffer.max_bytes (evicting to 90 % so it does not evict on every
// append), buffer.max_age_s, and the disk itself — the database may grow only while the file
// system keeps room for the WAL, a reserve file holds blocks to give back when even an eviction
// cannot be written, and a full disk evicts the oldest samples of the lowest priority until a
// slice of the file is free. Every eviction deletes its rows and records the data_lost event that
// names them in one transaction. Rows the publisher has in flight are never evicted.
import type { Db } from './sqlite.js';
import { diskSpace, ReserveFile } from './disk-space.js';
import { AUTO_VACUUM_INCREMENTAL } from './open-db.js';
import { lossParts } from './ranges.js';
import type { Statements } from './statements.js';
import { PRIORITIES, walBytes, type BufferOptions, type BufferProblems } from './types.js';

/** Pages beyond the cap that an eviction on a full disk may write (inside the headroom). */
const EVICT_SLACK_PAGES = 32;

export const isDiskError = (err: unknown) => /^SQLITE_(FULL|IOERR)/.test(String((err as { code?: unknown }).code ?? ''));
export const message = (err: unknown) => (err as Error).message ?? String(err);

/** What the bounds need of the buffer that owns them. */
export interface BoundsHost {
  readonly path: string;
  db(): Db;
  statements(): Statements;
  /** What keeps the buffer degraded (disk_full and evict are the bounds' to set and clear). */
  problems: BufferProblems;
  /** Samples the disk refused and not yet accounted (the disk is not "fine" while there are any). */
  unstored(): number;
  addEvent(body: Record<string, unknown>): void;
  /** Rows left the table by eviction: whatever the buffer keeps of them in memory goes too. */
  forget(): void;
  now(): number;
  /** With several outputs, the names of those whose bits are in `mask` (undefined with one). */
  outputsOf?(mask: number): string[] | undefined;
}

export class BufferBounds {
  /** The WAL's working size (pages before an automatic checkpoint; also its size limit). */
  walPages = 1000;
  /** Free bytes the file system keeps beyond the database: the WAL's room, and a margin. */
  private headroom = 0;
  reserve: ReserveFile | undefined;
  /** Appends since open; the size and age checks run every so many. */
  private appends = 0;
  /** Bytes of rows appended since the size was last measured (an estimate). */
  private grownSinceSizeCheck = 0;
  /**
   * Rows the publisher has handed to the broker and awaits PUBACK for: never evicted, since they
   * are (most likely) delivered already, and reporting them as lost would be wrong. At most two
   * inclusive seq ranges.
   */
  private inFlight: [number, number][] = [];

  constructor(
    private readonly host: BoundsHost,
    private readonly opts: BufferOptions,
  ) {}

  /** Before the file is opened: the WAL's size, the headroom and the reserve, from the cap and the disk. */
  size(): void {
    let total = Infinity;
    try {
      total = diskSpace(this.host.path).total;
    } catch {
      // the folder is missing: opening says so
    }
    // The WAL's working size: a small part of the cap and of the disk.
    this.walPages = Math.max(16, Math.min(1000, Math.floor(this.opts.maxBytes / 8 / 4096), Math.floor(total / 16 / 4096)));
    this.headroom = this.walPages * 4096 + 256 * 1024;
    this.reserve = new ReserveFile(`${this.host.path}.reserve`, Math.min(16 << 20, Math.max(this.walPages * 4096, 256 * 1024)));
  }

  /**
   * Opens the file. Started on a full disk (a reboot after it filled), the last run's reserve makes
   * the room that opening needs (the WAL and shared-memory files).
   */
  open<T>(openDb: () => T): T {
    try {
      return openDb();
    } catch (err) {
      if (!isDiskError(err) || !this.reserve?.drop()) throw err;
      this.host.problems.set('disk_full', 'disk full at start: reserve given back to open the buffer');
      return openDb();
    }
  }

  /** Each output's seq ranges in flight (never evicted), by output. */
  private readonly protectedBy = new Map<string, [number, number][]>();

  /**
   * An output passes down the seq ranges it has in flight, whenever they change. Eviction skips
   * two ranges: every range that starts at 0 (a cursor's "everything up to here") as one, and the
   * first other one (MQTT's live_first window).
   */
  protect(ranges: [number, number][], output = ''): void {
    this.protectedBy.set(output, ranges);
    let head: [number, number] | undefined;
    let other: [number, number] | undefined;
    for (const list of this.protectedBy.values()) {
      for (const r of list) {
        if (r[0] === 0) head = [0, Math.max(head?.[1] ?? -1, r[1])];
        else other ??= r;
      }
    }
    this.inFlight = [head ?? [0, -1], other ?? [0, -1]];
  }

  /** Bytes in use: database pages holding data plus the write-ahead log. */
  bytes(): number {
    const s = this.host.statements();
    const pages = (s.pageCount.get() as number) - (s.freePages.get() as number);
    return pages * (s.pageSize.get() as number) + walBytes(this.host.path);
  }

  /**
   * Lets the database grow only while the disk keeps `headroom` free, and says whether the buffer
   * has room again after a full disk (then it is no longer degraded for it). Run with the size check.
   */
  updateCap(): void {
    const s = this.host.statements();
    let available: number;
    try {
      available = diskSpace(this.host.path).available;
    } catch {
      return;
    }
    // A reserve given back (or never made: the disk was full at start) is made again once there is
    // room — if need be, room the database's free pages give back (delivered or evicted rows').
    if (this.reserve && !this.reserve.present) {
      const short = this.headroom + this.reserve.bytes - available;
      if (short > 0 && this.release(short)) available = diskSpace(this.host.path).available;
      if (available > this.headroom + this.reserve.bytes && this.reserve.make()) available -= this.reserve.bytes;
      // Without its reserve the buffer could not evict on a full disk: degraded until it is back
      // (also right after a start on a disk that is still full).
      else if (this.host.problems.get('disk_full') === undefined) this.host.problems.set('disk_full', 'disk full: no room for the reserve file');
    }
    const pageSize = s.pageSize.get() as number;
    const pages = s.pageCount.get() as number;
    let cap = pages + Math.max(0, Math.floor((available - this.headroom) / pageSize));
    if (this.opts.maxPageCount) cap = Math.min(cap, this.opts.maxPageCount);
    this.host.db().pragma(`max_page_count = ${Math.max(cap, pages)}`);
    if (this.host.problems.get('disk_full') === undefined) return;
    // Room again: the reserve could be made, and a tenth of the file (or more) can take new rows.
    const room = (s.freePages.get() as number) + Math.max(0, cap - pages);
    if (room >= Math.max(64, pages / 10) && this.reserve?.present && !this.host.unstored()) this.host.problems.set('disk_full', undefined);
  }

  /**
   * Gives `bytes` (and a little more) of the database's free pages back to the file system
   * (incremental_vacuum, then a checkpoint truncates the file). False when there are too few free
   * pages or the file cannot (a file of an older release not converted yet, or the disk refused).
   */
  private release(bytes: number): boolean {
    const s = this.host.statements();
    const pageSize = s.pageSize.get() as number;
    const pages = Math.ceil(bytes / pageSize) + 16;
    if ((s.freePages.get() as number) < pages) return false;
    try {
      const db = this.host.db();
      if (db.pragma('auto_vacuum', { simple: true }) !== AUTO_VACUUM_INCREMENTAL) return false;
      db.pragma(`incremental_vacuum(${pages})`);
      db.pragma('wal_checkpoint(TRUNCATE)');
      return true;
    } catch {
      return false; // tried again with the next size check
    }
  }

  /** A write needs room the disk does not have: gives the reserve's blocks back. */
  dropReserve(why: string): void {
    this.reserve?.drop();
    this.host.problems.set('disk_full', this.host.problems.get('disk_full') ?? `disk full: reserve given back to ${why}`);
  }

  /**
   * The disk (or the page cap below its free space) is full: evict the oldest samples of the lowest
   * priority until a slice of the file is free for new rows. If even that cannot be written, the
   * reserve file's blocks are given back first.
   */
  makeRoom(): void {
    this.host.problems.set('disk_full', this.host.problems.get('disk_full') ?? 'disk full: evicting the oldest samples by priority');
    // No more growth than the disk has now (another program may have taken the headroom), and the
    // WAL folded back so that its next frames reuse blocks it has already.
    this.updateCap();
    this.checkpoint();
    const s = this.host.statements();
    const want = Math.max(16, Math.min(4096, Math.floor((s.pageCount.get() as number) / 50)));
    const enough = () => (s.freePages.get() as number) >= want;
    // An eviction writes too — its data_lost event, the counters, the freelist's trunk pages — and
    // when deleting rows frees no whole page (every priority on every page), those writes need pages
    // the cap does not give: they come out of the headroom the cap keeps free for such work.
    this.host.db().pragma(`max_page_count = ${(s.pageCount.get() as number) + EVICT_SLACK_PAGES}`);
    try {
      this.evict('disk_full', enough, () => this.checkpoint());
    } catch (err) {
      if (!isDiskError(err)) throw err;
      this.reserve?.drop();
      this.host.problems.set('disk_full', 'disk full: reserve given back to evict');
      this.checkpoint();
      this.evict('disk_full', enough, () => this.checkpoint());
    }
    this.updateCap();
  }

  /** Folds the WAL into the database and restarts it from its beginning; a failure is left for later. */
  private checkpoint(): void {
    try {
      this.host.db().pragma('wal_checkpoint(RESTART)');
    } catch {
      /* the database file could not grow: the reserve or an eviction makes room */
    }
  }

  /** After every append of `bytes`: keeps the buffer under max_bytes and max_age_s. */
  afterAppend(bytes: number): void {
    // Measuring the size takes three PRAGMAs, a stat of the WAL and one of the file system: do it
    // once the rows written since the last measurement could have used 1/128 of the cap, or every 64 appends.
    this.appends++;
    this.grownSinceSizeCheck += bytes;
    try {
      if (this.grownSinceSizeCheck >= this.opts.maxBytes / 128 || this.appends % 64 === 0) {
        this.grownSinceSizeCheck = 0;
        if (this.bytes() > this.opts.maxBytes) this.evictToBytes(Math.floor(this.opts.maxBytes * 0.9));
        this.updateCap();
      }
      if (this.appends % 100 === 0) {
        // The age query scans the table (ts has no index); rows are appended in time order, so the
        // oldest row by seq says whether anything can be old enough (one index lookup).
        const first = this.host.statements().oldest.get() as number | undefined;
        if (first !== undefined && first < this.host.now() - this.opts.maxAgeS * 1000 + 60_000) this.evictAged();
      }
      this.host.problems.set('evict', undefined);
    } catch (err) {
      // The samples are stored; the bounds are enforced again with a later append.
      this.host.problems.set('evict', `eviction failed: ${message(err)}`);
    }
  }

  /** Drops samples older than max_age_s, whatever their priority. Also run at start. */
  evictAged(): void {
    const cutoff = this.host.now() - this.opts.maxAgeS * 1000;
    const db = this.host.db();
    const s = this.host.statements();
    for (;;) {
      const rows = s.aged.all(cutoff) as { seq: number; prio: number; pending: number }[];
      if (!rows.length) return;
      db.transaction(() => {
        for (const r of rows) s.del.run(r.seq);
        this.recordLoss('max_age', rows);
      })();
    }
  }

  private evictToBytes(target: number): void {
    const db = this.host.db();
    // Much of the size may be WAL that a checkpoint folds back; never evict for that. Deleting
    // writes to the WAL too: each round folds it back so the freed pages show.
    db.pragma('wal_checkpoint(TRUNCATE)');
    this.evict(
      'max_bytes',
      () => this.bytes() <= target,
      () => db.pragma('wal_checkpoint(TRUNCATE)'),
    );
  }

  /**
   * Evicts the oldest samples of the lowest priority present, in rounds, until `enough()`. Each
   * round deletes its rows and records their data_lost event in one transaction: a crash between
   * the two cannot lose a sample silently.
   */
  private evict(reason: string, enough: () => boolean, afterRound?: () => void): void {
    const db = this.host.db();
    const s = this.host.statements();
    const [a = [0, -1], b = [0, -1]] = this.inFlight;
    let prio = PRIORITIES.length - 1;
    while (prio >= 0 && !enough()) {
      const rows = s.victims.all(prio, a[0], a[1], b[0], b[1], 512) as { seq: number; pending: number }[];
      if (!rows.length) {
        prio--; // nothing (left) of this priority: the next one up
        continue;
      }
      db.transaction(() => {
        for (const r of rows) s.del.run(r.seq);
        this.recordLoss(
          reason,
          rows.map((r) => ({ seq: r.seq, prio, pending: r.pending })),
        );
      })();
      afterRound?.();
    }
  }

  /** data_lost events for rows gone (as many as needed to name every seq) and the counter; inside a transaction. */
  recordLoss(reason: string, rows: readonly { seq: number; prio: number; pending?: number }[], extra: Record<string, unknown> = {}): void {
    if (!rows.length) return;
    this.host.forget();
    // With several outputs: one event per set of outputs that had not received the rows (the others have them).
    const groups = new Map<number, { seq: number; prio: number }[]>();
    for (const r of rows) {
      const mask = this.host.outputsOf ? (r.pending ?? 0) : 0;
      const g = groups.get(mask);
      if (g) g.push(r);
      else groups.set(mask, [r]);
    }
    for (const [mask, group] of groups) {
      const outputs = this.host.outputsOf?.(mask);
      for (const part of lossParts(group.map((r) => ({ seq: r.seq, prio: PRIORITIES[r.prio] ?? 'normal' })))) {
        this.host.addEvent({ event: 'data_lost', reason, ...part, ...(outputs ? { outputs } : {}), ...extra });
      }
    }
    // Rows of a damaged file were never evicted: they have a counter of their own.
    this.host.statements().bump.run(reason === 'buffer_damaged' ? 'lost_damaged' : 'evicted', rows.length);
  }
}
