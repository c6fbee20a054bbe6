// The store-and-forward buffer: the only owner of durability (DESIGN). Samples are appended in one
// transaction per poll with a gateway-wide sequence number that never goes backwards (SQLite
// AUTOINCREMENT never reuses a rowid, even after the table empties). Rows leave the table only
// through accept() (the broker acknowledged them), reject() (moved to dead_letter) or eviction at
// the configured bounds, which is counted and recorded as an event for the broker. Nothing leaves
// silently. All methods are synchronous and called from the event loop only (no concurrency).
import type Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import type { Priority, Sample } from '../core/sample.js';
import { GatewayError } from '../errors.js';
import { encodeBody, type EncodedMessage } from './body.js';
import { openBufferDb } from './open-db.js';
import { mergeRanges } from './ranges.js';

export interface BufferedRow {
  seq: number;
  ts: number;
  device: string;
  point: string;
  prio: number;
  /** The JSON payload without seq: `{"ts":…,"value":…,…}` (rendered once, at append). */
  body: string;
}

export interface BufferOptions {
  synchronous: 'normal' | 'full';
  maxBytes: number;
  maxAgeS: number;
  now?: () => number;
  /** Caps the database at this many pages (PRAGMA max_page_count): a full disk, for tests. */
  maxPageCount?: number;
}

export interface BufferEvent {
  id: number;
  body: string;
}

export interface BufferStats {
  depth: number;
  bytes: number;
  oldestTs: number | undefined;
  byPriority: Record<Priority, number>;
  evicted: number;
  deadLetters: number;
  pendingEvents: number;
  lastSeq: number;
}

export const PRIORITIES: readonly Priority[] = ['critical', 'normal', 'bulk'];
const prioOf = (p: Priority | undefined) => (p === 'critical' ? 0 : p === 'bulk' ? 2 : 1);

export class SqliteBuffer {
  private db: Database.Database | undefined;
  private s!: ReturnType<SqliteBuffer['prepare']>;
  private readonly now: () => number;
  /** Samples that could not be stored even after eviction (disk full); reported once stored again. */
  private unrecorded = { count: 0, since: 0 };
  /** Appends since open; the size and age checks run every so many. */
  private appends = 0;
  /** Bytes of rows appended since bytes() was last measured against max_bytes (an estimate). */
  private grownSinceSizeCheck = 0;
  /** Set when open() found a damaged file and moved it aside. */
  recovered: { movedTo: string; error: string } | undefined;

  constructor(
    readonly path: string,
    private readonly opts: BufferOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Highest seq ever appended, kept in memory (the publisher asks after every PUBACK). */
  private newest = 0;
  private eventsPending = 0;

  /** Whether events wait for the broker, without a query. */
  get hasEvents(): boolean {
    return this.eventsPending > 0;
  }

  /** Opens or creates the file (moving a damaged one aside). Called once before anything else. */
  open(): void {
    try {
      const opened = openBufferDb(this.path, this.opts.synchronous, this.opts.maxBytes, this.now);
      this.db = opened.db;
      this.recovered = opened.recovered;
    } catch (err) {
      throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": cannot open: ${(err as Error).message}`, { cause: err });
    }
    if (this.opts.maxPageCount) this.db.pragma(`max_page_count = ${this.opts.maxPageCount}`);
    this.s = this.prepare(this.db);
    this.newest = (this.s.lastSeq.get() as number | undefined) ?? 0;
    this.eventsPending = this.s.eventCount.get() as number;
    if (this.recovered) {
      this.addEvent({ event: 'buffer_recovered', moved_to: this.recovered.movedTo, error: this.recovered.error, first_seq: this.lastSeq() + 1 });
    }
  }

  private prepare(db: Database.Database) {
    return {
      insert: db.prepare('INSERT INTO samples (ts, device, point, prio, body) VALUES (?, ?, ?, ?, ?)'),
      readRange: db.prepare('SELECT seq, ts, device, point, prio, body FROM samples WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      del: db.prepare('DELETE FROM samples WHERE seq = ?'),
      delRange: db.prepare('DELETE FROM samples WHERE seq BETWEEN ? AND ?'),
      depth: db.prepare('SELECT count(*) FROM samples').pluck(),
      byPrio: db.prepare('SELECT prio, count(*) AS n FROM samples GROUP BY prio'),
      oldest: db.prepare('SELECT min(ts) FROM samples').pluck(),
      lastSeq: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck(),
      victims: db.prepare('SELECT seq FROM samples WHERE prio = ? AND seq NOT BETWEEN ? AND ? AND seq NOT BETWEEN ? AND ? ORDER BY seq LIMIT ?').pluck(),
      firstTs: db.prepare('SELECT ts FROM samples ORDER BY seq LIMIT 1').pluck(),
      aged: db.prepare('SELECT seq, prio FROM samples WHERE ts < ? ORDER BY seq LIMIT 1000'),
      dead: db.prepare(
        'INSERT OR REPLACE INTO dead_letter (seq, ts, device, point, body, reason, rejected_at) SELECT seq, ts, device, point, body, ?, ? FROM samples WHERE seq = ?',
      ),
      deadCount: db.prepare('SELECT count(*) FROM dead_letter').pluck(),
      addEvent: db.prepare('INSERT INTO events (ts, body) VALUES (?, ?)'),
      events: db.prepare('SELECT id, body FROM events ORDER BY id LIMIT ?'),
      eventCount: db.prepare('SELECT count(*) FROM events').pluck(),
      delEvent: db.prepare('DELETE FROM events WHERE id = ?'),
      bump: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      counter: db.prepare('SELECT value FROM counters WHERE name = ?').pluck(),
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      freePages: db.prepare('PRAGMA freelist_count').pluck(),
      pageSize: db.prepare('PRAGMA page_size').pluck(),
    };
  }

  private get handle(): Database.Database {
    if (!this.db) throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}" is not open`);
    return this.db;
  }

  /** Bytes in use: database pages holding data plus the write-ahead log. */
  bytes(): number {
    if (!this.db) return 0;
    const pages = (this.s.pageCount.get() as number) - (this.s.freePages.get() as number);
    let wal = 0;
    try {
      wal = statSync(`${this.path}-wal`).size;
    } catch {
      /* no WAL file right now */
    }
    return pages * (this.s.pageSize.get() as number) + wal;
  }

  /**
   * Stores one poll's samples (or messages already rendered, e.g. a poll message) in one transaction
   * and returns their seqs, in order. Called by the pipeline after every poll. A sample counts as
   * taken only once this returns. On a full disk it evicts by priority and retries once; samples
   * that still cannot be stored are counted and reported as lost, and GW_ERR_BUFFER is thrown.
   */
  append(samples: readonly (Sample | EncodedMessage)[]): number[] {
    if (!samples.length) return [];
    const db = this.handle;
    const insert = db.transaction((list: readonly (Sample | EncodedMessage)[]) => {
      const seqs = new Array<number>(list.length);
      for (let i = 0; i < list.length; i++) {
        const x = list[i]!;
        const body = 'body' in x ? x.body : encodeBody(x);
        this.grownSinceSizeCheck += body.length + 64;
        seqs[i] = Number(this.s.insert.run(x.ts, x.device, x.point, prioOf(x.priority), body).lastInsertRowid);
      }
      return seqs;
    });
    let seqs: number[];
    try {
      seqs = insert(samples);
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_FULL') throw this.appendError(samples.length, err);
      db.pragma('wal_checkpoint(TRUNCATE)');
      this.evict(Math.floor(this.bytes() * 0.8), 'disk_full');
      try {
        seqs = insert(samples);
      } catch (again) {
        if (!this.unrecorded.count) this.unrecorded.since = this.now();
        this.unrecorded.count += samples.length;
        throw this.appendError(samples.length, again);
      }
    }
    this.newest = Math.max(this.newest, seqs[seqs.length - 1]!);
    if (this.unrecorded.count) this.recordUnstored();
    this.enforceBounds();
    return seqs;
  }

  private appendError(n: number, err: unknown): GatewayError {
    return new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": append of ${n} samples failed: ${(err as Error).message}`, { cause: err });
  }

  private recordUnstored(): void {
    try {
      this.addEvent({ event: 'data_lost', reason: 'disk_full', count: this.unrecorded.count, since: new Date(this.unrecorded.since).toISOString(), ranges: [] });
      this.s.bump.run('lost_unstored', this.unrecorded.count);
      this.unrecorded.count = 0;
    } catch {
      /* still full: try again after the next successful append */
    }
  }

  /** Keeps the buffer under max_bytes (evicting to 90 % so it does not evict on every append) and max_age_s. */
  private enforceBounds(): void {
    // Measuring the size takes three PRAGMAs and a stat of the WAL: do it once the rows written
    // since the last measurement could have used 1/128 of the cap, or every 64 appends.
    this.appends++;
    if (this.grownSinceSizeCheck >= this.opts.maxBytes / 128 || this.appends % 64 === 0) {
      this.grownSinceSizeCheck = 0;
      if (this.bytes() > this.opts.maxBytes) this.evict(Math.floor(this.opts.maxBytes * 0.9), 'max_bytes');
    }
    if (this.appends % 100 === 0) {
      // The age query scans the table (ts has no index); rows are appended in time order, so the
      // oldest row by seq says whether anything can be old enough (one index lookup).
      const first = this.s.firstTs.get() as number | undefined;
      if (first !== undefined && first < this.now() - this.opts.maxAgeS * 1000 + 60_000) this.evictAged();
    }
  }

  /** Drops samples older than max_age_s, whatever their priority. Also run at start. */
  evictAged(): void {
    const cutoff = this.now() - this.opts.maxAgeS * 1000;
    const db = this.handle;
    for (;;) {
      const rows = this.s.aged.all(cutoff) as { seq: number; prio: number }[];
      if (!rows.length) return;
      db.transaction(() => {
        for (const r of rows) this.s.del.run(r.seq);
      })();
      this.recordLoss('max_age', rows);
    }
  }

  /**
   * Rows the publisher has handed to the broker and awaits PUBACK for: never evicted, since they
   * are (most likely) delivered already, and reporting them as lost would be wrong. Set by the
   * publisher; at most two inclusive seq ranges.
   */
  inFlight: () => [number, number][] = () => [];

  /** Evicts the oldest samples of the lowest priority until the buffer uses at most `target` bytes. */
  private evict(target: number, reason: string): void {
    const db = this.handle;
    const gone: { seq: number; prio: number }[] = [];
    // Much of the size may be WAL that a checkpoint folds back; never evict for that.
    db.pragma('wal_checkpoint(TRUNCATE)');
    const [a = [0, -1], b = [0, -1]] = this.inFlight();
    let prio = PRIORITIES.length - 1;
    while (prio >= 0 && this.bytes() > target) {
      const seqs = this.s.victims.all(prio, a[0], a[1], b[0], b[1], 256) as number[];
      if (!seqs.length) {
        prio--; // nothing (left) of this priority: the next one up
        continue;
      }
      db.transaction(() => {
        for (const seq of seqs) this.s.del.run(seq);
      })();
      for (const seq of seqs) gone.push({ seq, prio });
      // Deleting writes to the WAL; fold it back so the freed pages show and the file stops growing.
      db.pragma('wal_checkpoint(TRUNCATE)');
    }
    if (gone.length) this.recordLoss(reason, gone);
  }

  private recordLoss(reason: string, rows: { seq: number; prio: number }[]): void {
    const byPriority: Partial<Record<Priority, number>> = {};
    for (const r of rows) byPriority[PRIORITIES[r.prio]!] = (byPriority[PRIORITIES[r.prio]!] ?? 0) + 1;
    this.handle.transaction(() => {
      const ranges = mergeRanges(rows.map((r) => r.seq));
      // Capped so one event stays a reasonable MQTT message; the count is always exact.
      this.addEvent({ event: 'data_lost', reason, count: rows.length, by_priority: byPriority, ranges: ranges.slice(0, 500), ...(ranges.length > 500 ? { ranges_truncated: true } : {}) });
      this.s.bump.run('evicted', rows.length);
    })();
  }

  /** Oldest rows with afterSeq < seq <= upTo, in seq order. Called by the publisher's pump. */
  readRange(afterSeq: number, upTo: number, limit: number): BufferedRow[] {
    if (!this.db) return [];
    return this.s.readRange.all(afterSeq, Number.isFinite(upTo) ? upTo : Number.MAX_SAFE_INTEGER, limit) as BufferedRow[];
  }

  /** Oldest rows with seq > afterSeq, in seq order. */
  readAfter(afterSeq: number, limit: number): BufferedRow[] {
    return this.readRange(afterSeq, Infinity, limit);
  }

  /** Deletes rows the broker acknowledged. Called by the publisher, in batches. */
  accept(seqs: readonly number[]): void {
    if (!seqs.length) return;
    // PUBACKs come in seq order almost always: one range delete per contiguous run.
    const sorted = [...seqs].sort((a, b) => a - b);
    this.handle.transaction(() => {
      let from = sorted[0]!;
      for (let i = 1; i <= sorted.length; i++) {
        const seq = sorted[i];
        if (seq === sorted[i - 1]! + 1) continue;
        if (seq === sorted[i - 1]) continue;
        this.s.delRange.run(from, sorted[i - 1]!);
        if (seq !== undefined) from = seq;
      }
    })();
  }

  /** Moves rows the broker refused for good to dead_letter, so they stop blocking the queue. */
  reject(seqs: readonly number[], reason: string): void {
    this.handle.transaction(() => {
      for (const seq of seqs) {
        this.s.dead.run(reason, this.now(), seq);
        this.s.del.run(seq);
      }
    })();
  }

  /** Stores an event for the events topic; it stays until the broker acknowledged it. */
  addEvent(body: Record<string, unknown>): void {
    this.eventsPending++;
    this.s.addEvent.run(this.now(), JSON.stringify({ ...body, ts: new Date(this.now()).toISOString() }));
  }

  pendingEvents(limit: number): BufferEvent[] {
    return this.db ? (this.s.events.all(limit) as BufferEvent[]) : [];
  }

  ackEvent(id: number): void {
    if (this.s.delEvent.run(id).changes) this.eventsPending = Math.max(0, this.eventsPending - 1);
  }

  depth(): number {
    return this.db ? (this.s.depth.get() as number) : 0;
  }

  /** Gateway timestamp of the oldest unsent sample, or undefined when empty. */
  oldestTs(): number | undefined {
    return this.db ? ((this.s.oldest.get() as number | null) ?? undefined) : undefined;
  }

  /** Highest seq ever assigned (0 for a new buffer). */
  lastSeq(): number {
    return this.db ? this.newest : 0;
  }

  stats(): BufferStats {
    const byPriority: Record<Priority, number> = { critical: 0, normal: 0, bulk: 0 };
    for (const r of this.s.byPrio.all() as { prio: number; n: number }[]) byPriority[PRIORITIES[r.prio]!] = r.n;
    return {
      depth: this.depth(),
      bytes: this.bytes(),
      oldestTs: this.oldestTs(),
      byPriority,
      evicted: (this.s.counter.get('evicted') as number | undefined) ?? 0,
      deadLetters: this.s.deadCount.get() as number,
      pendingEvents: this.s.eventCount.get() as number,
      lastSeq: this.lastSeq(),
    };
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}
