// The store-and-forward buffer: the only owner of durability (DESIGN). Samples are appended in one
// transaction per poll with a gateway-wide sequence number that never goes backwards: SQLite
// AUTOINCREMENT never reuses a rowid, and the seq mark beside the file (seq-mark.ts) carries the
// high-water mark over a file that came back empty, older or damaged. Rows leave the table only
// through accept() (the broker acknowledged them), reject() (moved to dead_letter) or eviction at
// the bounds (max_bytes, max_age_s, a full disk), committed in one transaction with the data_lost
// event that names them. Samples the disk refused even after eviction get seqs and an event as soon
// as anything can be written again, and are counted in the seq mark meanwhile (unstored.ts). Nothing
// leaves silently. Storage errors never end the daemon: the buffer reports itself degraded
// (onHealth) and recovers by itself. All methods are synchronous, called from the event loop only.
import type Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { BufferBounds, isDiskError, message } from './bounds.js';
import { RecentRows } from './recent.js';
import { KIND_CODE, type Sample } from '../core/sample.js';
import { GatewayError } from '../errors.js';
import { encodeBody, type EncodedMessage } from './body.js';
import { continuation } from './continuity.js';
import { openBufferDb } from './open-db.js';
import { prepareStatements, type Statements } from './statements.js';
import { salvage } from './salvage.js';
import { seqRuns } from './ranges.js';
import { implausible, SeqMark, type SeqMarkState } from './seq-mark.js';
import { Unstored } from './unstored.js';
import { readStats } from './stats.js';
import { EventQueue } from './events.js';
import { OutputSlots } from './output-slots.js';
import {
  BufferProblems,
  prioOf,
  type BufferedRow,
  type BufferEvent,
  type BufferHealth,
  type BufferOptions,
  type BufferStats,
  type BufferView,
  type OutputBacklog,
} from './types.js';

export type { BufferedRow, BufferEvent, BufferHealth, BufferOptions, BufferStats, BufferView, OutputBacklog } from './types.js';
export { PRIORITIES, walBytes } from './types.js';

/**
 * The recent-rows cache for these outputs. With several it holds more: a batching output
 * (InfluxDB) reads a second behind the appends, which should still be memory.
 */
const recentRowsFor = (slots: OutputSlots) => (slots.single ? new RecentRows() : new RecentRows(32_768, 16 << 20));

export class SqliteBuffer {
  private db: Database.Database | undefined;
  private s!: Statements;
  private readonly now: () => number;
  private readonly mark: SeqMark;
  /** Samples the disk refused, and the seq mark (unstored.ts). */
  private readonly unstored: Unstored;
  private readonly bounds: BufferBounds;
  /** Rows just committed, for the outputs (recent.ts, sized by recentRowsFor). */
  private recent: RecentRows;
  private readonly problems = new BufferProblems();
  /** Each output's bit of a row's `pending` (output-slots.ts). */
  private slots: OutputSlots;
  /** Per output: a seq below its oldest row (a lower bound kept between start() calls). */
  private readonly floors = new Map<number, number>();
  /** Set when open() found a damaged file and moved it aside. */
  recovered: { movedTo: string; error: string } | undefined;

  constructor(
    readonly path: string,
    private readonly opts: BufferOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.mark = new SeqMark(`${path}.seq`);
    this.slots = new OutputSlots(opts.outputs ?? ['mqtt']);
    this.recent = recentRowsFor(this.slots);
    const host = { problems: this.problems, addEvent: (body: Record<string, unknown>) => this.addEvent(body), now: this.now };
    this.unstored = new Unstored(this.mark, host);
    const more = {
      path,
      db: () => this.handle,
      statements: () => this.s,
      unstored: () => this.unstored.count,
      forget: () => this.recent.clear(),
      outputsOf: (mask: number) => (this.slots.single ? undefined : this.slots.namesOf(mask)),
    };
    this.bounds = new BufferBounds({ ...host, ...more }, opts);
  }

  /** Highest seq ever appended, kept in memory (the publisher asks after every PUBACK). */
  private newest = 0;
  /** The events topic's queue (events.ts). */
  private readonly events = new EventQueue(
    () => (this.db ? this.s : undefined),
    () => this.now(),
  );

  /** Whether events wait for the broker, without a query. */
  get hasEvents(): boolean {
    return this.events.any;
  }

  get health(): BufferHealth {
    return this.problems.health;
  }

  /** Called on every change between ok and degraded, or of the reasons. */
  set onHealth(cb: ((h: BufferHealth) => void) | undefined) {
    this.problems.changed = cb;
  }

  /**
   * Opens or creates the file (moving a damaged one aside), decides where seqs continue and records
   * what happened to an earlier file as events. Called once before anything else.
   */
  open(): void {
    const before = statSync(this.path, { throwIfNoEntry: false });
    const walBefore = statSync(`${this.path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    let mark = this.mark.read();
    const refused = typeof mark === 'object' ? implausible(mark) : undefined;
    if (refused) {
      // Not believed: as if damaged (seqs continue above the file and the clock), and said.
      mark = 'damaged';
    }
    this.bounds.size();
    try {
      const opened = this.bounds.open(() => openBufferDb(this.path, this.opts.synchronous, this.bounds.walPages, this.now));
      this.db = opened.db;
      this.recovered = opened.recovered;
    } catch (err) {
      throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": cannot open: ${message(err)}`, { cause: err });
    }
    this.s = prepareStatements(this.db);
    this.newest = (this.s.lastSeq.get() as number | undefined) ?? 0;
    this.events.opened();
    this.useSlots(this.slots, this.db);
    if (refused) this.addEvent({ event: 'seq_mark_refused', seq_mark: this.mark.path, reason: refused });
    this.continueSeqs(before, mark, walBefore);
    this.bounds.updateCap();
  }

  /** Where seqs continue after open(), and the events that say why (see seq-mark.ts). */
  private continueSeqs(before: ReturnType<typeof statSync> | undefined, mark: SeqMarkState | 'damaged' | undefined, walBefore: number): void {
    const old = this.recovered && salvage(this.recovered.movedTo, typeof mark === 'object' ? mark.newest : 0);
    const { next, event } = continuation({
      path: this.path,
      fileLast: this.newest,
      sizeBefore: before === undefined ? undefined : Number(before.size),
      walBefore,
      mark,
      recovered: this.recovered && old ? { ...this.recovered, old } : undefined,
      nowMs: this.now(),
    });
    if (event) this.addEvent(event);
    if (old) {
      this.bounds.recordLoss('buffer_damaged', old.rows, { moved_to: this.recovered!.movedTo });
      // Seqs on pages that could not be read: those not delivered before are lost (how many is not known).
      for (let i = 0; i < old.unreadable.length; i += 500) {
        const ranges = old.unreadable.slice(i, i + 500);
        const count = ranges.reduce((n, [a, z]) => n + z - a + 1, 0);
        this.addEvent({ event: 'data_lost', reason: 'buffer_damaged', unreadable: true, count, ranges, moved_to: this.recovered!.movedTo });
      }
    }
    if (next > this.newest) {
      if (!this.s.setSeq.run(next).changes) this.s.initSeq.run(next);
      this.newest = next;
    }
    this.unstored.open(this.newest, typeof mark === 'object' ? mark : undefined);
  }

  private get handle(): Database.Database {
    if (!this.db) throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}" is not open`);
    return this.db;
  }

  /**
   * Stores one poll's samples (or messages already rendered, e.g. a poll message) in one transaction
   * and returns their seqs, in order. Called by the pipeline after every poll. A sample counts as
   * taken only once this returns. On a full disk it evicts by priority and retries once; samples
   * that still cannot be stored are counted (in the seq mark, durably) and get seqs and a data_lost
   * event with the next append that succeeds; GW_ERR_BUFFER is thrown.
   */
  append(samples: readonly (Sample | EncodedMessage)[]): number[] {
    if (!samples.length) return [];
    const db = this.handle;
    let newest = this.newest;
    let bytes = 0;
    let made: BufferedRow[] = [];
    const pending = this.slots.all;
    const insert = db.transaction((list: readonly (Sample | EncodedMessage)[]) => {
      newest = this.newest;
      bytes = 0;
      made = new Array<BufferedRow>(list.length);
      // Samples lost earlier take the next seqs, so consumers see exactly which ones are missing.
      if (this.unstored.count) newest = this.unstored.account(this.s, this.newest);
      const seqs = new Array<number>(list.length);
      for (let i = 0; i < list.length; i++) {
        const x = list[i]!;
        const body = 'body' in x ? x.body : encodeBody(x);
        bytes += body.length + 64;
        const prio = prioOf(x.priority);
        const kind = KIND_CODE[x.kind ?? 'point'];
        const seq = Number(this.s.insert.run(x.ts, x.device, x.point, prio, body, kind, pending).lastInsertRowid);
        seqs[i] = seq;
        // What the body was made from rides along while the row is in memory (rowPoints, body.ts).
        made[i] = { seq, ts: x.ts, device: x.device, point: x.point, prio, kind, body, pending, source: 'body' in x ? x.source : x };
      }
      return seqs;
    });
    this.unstored.cover(this.newest + this.unstored.count + samples.length);
    let seqs: number[];
    try {
      seqs = insert(samples);
    } catch (err) {
      if (!isDiskError(err)) throw this.notStored(samples, err);
      try {
        this.bounds.makeRoom();
        seqs = insert(samples);
      } catch (again) {
        throw this.notStored(samples, again);
      }
    }
    const accounted = this.unstored.count > 0;
    if (accounted) this.unstored.clear();
    this.newest = Math.max(newest, seqs[seqs.length - 1]!);
    this.recent.add(made);
    this.problems.set('append', undefined);
    this.unstored.write(this.newest);
    if (accounted) this.bounds.updateCap();
    this.bounds.afterAppend(bytes);
    return seqs;
  }

  /** Samples the disk refused: counted (unstored.ts), and the error append() throws. */
  private notStored(samples: readonly (Sample | EncodedMessage)[], err: unknown): GatewayError {
    this.unstored.add(
      samples.map((x) => x.priority),
      this.newest,
      err,
    );
    return new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": append of ${samples.length} samples failed: ${message(err)}`, { cause: err });
  }

  /** Bytes in use: database pages holding data plus the write-ahead log (what max_bytes caps). */
  bytes(): number {
    return this.db ? this.bounds.bytes() : 0;
  }

  /** Drops samples older than max_age_s, whatever their priority. Also run at start. */
  evictAged(): void {
    this.bounds.evictAged();
  }

  /** The publisher passes down the seq ranges it has in flight (never evicted), whenever they change. */
  protect(ranges: [number, number][]): void {
    this.bounds.protect(ranges);
  }

  /** Oldest rows with afterSeq < seq <= upTo, in seq order (every row, whoever still needs it). */
  readRange(afterSeq: number, upTo: number, limit: number): BufferedRow[] {
    return this.readFor(0, afterSeq, upTo, limit);
  }

  /** The same, only rows `bit`'s output has not acknowledged (bit 0: every row). */
  private readFor(bit: number, afterSeq: number, upTo: number, limit: number): BufferedRow[] {
    if (!this.db) return [];
    // What was just committed comes from memory (recent.ts); the rest from the table.
    const recent = this.recent.range(afterSeq, upTo, limit, bit);
    if (recent) return recent;
    const to = Number.isFinite(upTo) ? upTo : Number.MAX_SAFE_INTEGER;
    return (bit ? this.s.readFor.all(afterSeq, to, bit, limit) : this.s.readRange.all(afterSeq, to, limit)) as BufferedRow[];
  }

  /**
   * Outputs added or removed while running (a reload): the same as at open — a new output gets
   * what is appended from now on, a removed one gives back its share with an output_removed event
   * — and every other output's cursor stays where it is.
   */
  setOutputs(names: readonly string[]): void {
    const slots = new OutputSlots(names);
    this.useSlots(slots, this.handle); // a refusal (the disk) leaves the outputs as they were
    this.recent = recentRowsFor(slots);
  }

  /** Reads and changes these outputs' bits against the file, takes them, and says what changed (events). */
  private useSlots(slots: OutputSlots, db: Database.Database): void {
    const changes = slots.open(db);
    this.slots = slots;
    this.floors.clear();
    for (const change of changes) this.addEvent({ ...change });
  }

  /** The outputs this buffer keeps a cursor for. */
  get outputs(): readonly string[] {
    return this.slots.names;
  }

  /**
   * What output `name` sees of the buffer (types.ts): its own rows and acknowledgements. With one
   * output that is the whole table, and an acknowledgement deletes.
   */
  view(name: string): BufferView {
    if (!this.slots.names.includes(name)) throw new Error(`no output "${name}" in this buffer (outputs: ${this.slots.names.join(', ')})`);
    const self = this;
    const bitOf = () => (this.slots.single ? 0 : this.slots.bit(name));
    return {
      output: name,
      readRange: (afterSeq, upTo, limit) => this.readFor(bitOf(), afterSeq, upTo, limit),
      start: () => this.startOf(bitOf()),
      accept: (seqs) => this.accept(seqs, bitOf()),
      reject: (seqs, reason) => this.reject(seqs, reason, bitOf(), name),
      addEvent: (body) => this.addEvent(body),
      protect: (ranges) => this.bounds.protect(ranges, name),
      depth: () => this.depthOf(bitOf()),
      lastSeq: () => this.lastSeq(),
      get hasEvents() {
        return self.hasEvents;
      },
      pendingEvents: (limit) => this.pendingEvents(limit),
      ackEvent: (id) => this.ackEvent(id),
    };
  }

  /** The seq before `bit`'s oldest row: where that output starts on a new connection (0 with one output). */
  private startOf(bit: number): number {
    if (!bit || !this.db) return 0;
    const from = this.floors.get(bit) ?? 0;
    const first = this.s.firstFor.get(from, bit) as { seq: number } | undefined;
    const floor = first ? first.seq - 1 : this.newest;
    this.floors.set(bit, floor);
    return floor;
  }

  private depthOf(bit: number): number {
    if (!bit) return this.depth();
    return this.db ? (this.s.countFor.get(bit) as number) : 0;
  }

  /** Backlog and oldest row of each output (one output: the whole table). */
  outputBacklogs(): Record<string, OutputBacklog> {
    const out: Record<string, OutputBacklog> = {};
    for (const name of this.slots.names) {
      if (this.slots.single || !this.db) {
        out[name] = { backlog: this.depth(), oldestTs: this.oldestTs() };
        continue;
      }
      const bit = this.slots.bit(name);
      const first = this.s.firstFor.get(this.floors.get(bit) ?? 0, bit) as { ts: number } | undefined;
      out[name] = { backlog: this.s.countFor.get(bit) as number, oldestTs: first?.ts };
    }
    return out;
  }

  /** Oldest rows with seq > afterSeq, in seq order. */
  readAfter = (afterSeq: number, limit: number): BufferedRow[] => this.readRange(afterSeq, Infinity, limit);

  /**
   * Deletes rows the broker acknowledged. Called by the publisher, in batches. Throws when the
   * database refuses (the buffer is then degraded); the caller keeps the seqs and tries again.
   */
  accept(seqs: readonly number[], bit = 0): void {
    if (!seqs.length) return;
    // PUBACKs come in seq order almost always: one range delete per contiguous run.
    const runs = seqRuns(seqs);
    const keep = ~bit & 0x7fffffff;
    // With several outputs: this one's bit is cleared, and rows no output needs any more go.
    const one = bit
      ? ([from, to]: [number, number]) => (this.s.clearBit.run(keep, from, to, bit), this.s.delDone.run(from, to))
      : ([from, to]: [number, number]) => this.s.delRange.run(from, to);
    const del = this.handle.transaction(() => runs.forEach(one));
    // A delete needs no fsync of its own: one lost to a power cut means those rows are sent again
    // (at-least-once), and the next append's commit with synchronous FULL syncs the WAL, deletes
    // included. So deletes commit without one, and only appends pay for durability.
    const relax = this.opts.synchronous === 'full';
    if (relax) this.s.syncNormal.run();
    try {
      try {
        del();
      } catch (err) {
        if (!isDiskError(err)) throw err;
        // Deleting needs WAL space: give the reserve back and try once more.
        this.bounds.dropReserve('acknowledge');
        del();
      } finally {
        if (relax) this.s.syncFull.run();
      }
      this.problems.set('ack', undefined);
      if (bit) this.recent.clearBit(runs, bit);
      else this.recent.dropThrough(runs[runs.length - 1]![1]);
    } catch (err) {
      this.problems.set('ack', `acknowledged samples could not be deleted: ${message(err)}`);
      throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": delete of ${seqs.length} acknowledged samples failed: ${message(err)}`, { cause: err });
    }
  }

  /**
   * Moves rows an output refused for good to dead_letter, so they stop blocking its queue. With
   * several outputs the reason names the output, and the row stays for the others.
   */
  reject(seqs: readonly number[], reason: string, bit = 0, output = ''): void {
    if (!bit) this.recent.clear();
    const keep = ~bit & 0x7fffffff;
    this.handle.transaction(() => {
      for (const seq of seqs) {
        this.s.dead.run(bit ? `${output}: ${reason}` : reason, this.now(), seq);
        if (!bit) this.s.del.run(seq);
        else {
          this.s.clearBit.run(keep, seq, seq, bit);
          this.s.delDone.run(seq, seq);
        }
      }
    })();
    if (bit) this.recent.clearBit(seqRuns(seqs), bit);
  }

  /** Stores an event for the events topic; it stays until the broker acknowledged it. */
  addEvent(body: Record<string, unknown>): void {
    this.events.add(body);
    this.opts.onEvent?.(body);
  }

  pendingEvents = (limit: number): BufferEvent[] => this.events.list(limit);
  ackEvent = (id: number): void => this.events.ack(id);

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

  /** Depth, bytes, evictions, dead letters… (backs /healthz, /metrics and the status page). */
  stats(): BufferStats {
    return readStats(this.s, { bytes: this.bytes(), oldestTs: this.oldestTs(), unstored: this.unstored.count, lastSeq: this.lastSeq() });
  }

  close(): void {
    this.recent.clear();
    this.db?.close();
    this.db = undefined;
    this.mark.close();
  }
}
