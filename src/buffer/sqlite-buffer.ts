// The store-and-forward buffer: the only owner of durability (DESIGN). Samples are appended in one
// transaction per poll with a gateway-wide sequence number that never goes backwards (SQLite
// AUTOINCREMENT never reuses a rowid, even after the table empties). Rows leave the table only
// through accept() (the broker acknowledged them) or reject() (moved to dead_letter).
import Database from 'better-sqlite3';
import { GatewayError } from '../errors.js';
import type { Sample, StoredSample } from '../core/sample.js';
import { encodeBody } from './body.js';

export interface BufferedRow {
  seq: number;
  ts: number;
  device: string;
  point: string;
  /** The JSON payload without seq: `{"ts":…,"value":…,…}` (rendered once, at append). */
  body: string;
}

export interface BufferOptions {
  synchronous: 'normal' | 'full';
}

export class SqliteBuffer {
  private db: Database.Database | undefined;
  private stmts!: {
    insert: Database.Statement;
    readAfter: Database.Statement;
    del: Database.Statement;
    depth: Database.Statement;
    oldest: Database.Statement;
    dead: Database.Statement;
  };
  private appendTx!: (samples: Sample[]) => number[];
  private deleteTx!: (seqs: readonly number[]) => void;

  constructor(
    readonly path: string,
    private readonly opts: BufferOptions,
  ) {}

  /** Opens or creates the file. Called once by the gateway before anything else starts. */
  open(): void {
    try {
      const db = new Database(this.path);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS samples (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          ts INTEGER NOT NULL,
          device TEXT NOT NULL,
          point TEXT NOT NULL,
          body TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS dead_letter (
          seq INTEGER PRIMARY KEY,
          ts INTEGER NOT NULL,
          device TEXT NOT NULL,
          point TEXT NOT NULL,
          body TEXT NOT NULL,
          reason TEXT NOT NULL,
          rejected_at INTEGER NOT NULL
        );
      `);
      this.db = db;
    } catch (err) {
      throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": cannot open: ${(err as Error).message}`, { cause: err });
    }
    const db = this.db;
    this.stmts = {
      insert: db.prepare('INSERT INTO samples (ts, device, point, body) VALUES (?, ?, ?, ?)'),
      readAfter: db.prepare('SELECT seq, ts, device, point, body FROM samples WHERE seq > ? ORDER BY seq LIMIT ?'),
      del: db.prepare('DELETE FROM samples WHERE seq = ?'),
      depth: db.prepare('SELECT count(*) AS n FROM samples').pluck(),
      oldest: db.prepare('SELECT ts FROM samples ORDER BY seq LIMIT 1').pluck(),
      dead: db.prepare(
        'INSERT OR REPLACE INTO dead_letter (seq, ts, device, point, body, reason, rejected_at) SELECT seq, ts, device, point, body, ?, ? FROM samples WHERE seq = ?',
      ),
    };
    this.appendTx = db.transaction((samples: Sample[]) =>
      samples.map((s) => Number(this.stmts.insert.run(s.ts, s.device, s.point, encodeBody(s)).lastInsertRowid)),
    );
    this.deleteTx = db.transaction((seqs: readonly number[]) => {
      for (const seq of seqs) this.stmts.del.run(seq);
    });
  }

  private assertOpen(): Database.Database {
    if (!this.db) throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}" is not open`);
    return this.db;
  }

  /**
   * Stores one poll's samples in one transaction and returns them with their seq. Called by the
   * pipeline after every poll, synchronously; throws GW_ERR_BUFFER if the disk refuses.
   */
  append(samples: Sample[]): StoredSample[] {
    if (!samples.length) return [];
    this.assertOpen();
    try {
      const seqs = this.appendTx(samples);
      return samples.map((s, i) => ({ ...s, seq: seqs[i]! }));
    } catch (err) {
      throw new GatewayError('GW_ERR_BUFFER', `buffer "${this.path}": append of ${samples.length} samples failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Oldest rows with seq > afterSeq, in seq order. Called by the publisher's pump. */
  readAfter(afterSeq: number, limit: number): BufferedRow[] {
    this.assertOpen();
    return this.stmts.readAfter.all(afterSeq, limit) as BufferedRow[];
  }

  /** Deletes rows the broker acknowledged. Called by the publisher, in batches. */
  accept(seqs: readonly number[]): void {
    if (seqs.length) this.deleteTx(seqs);
  }

  /** Moves poison rows to dead_letter so they stop blocking the queue; never silently dropped. */
  reject(seqs: readonly number[], reason: string): void {
    const db = this.assertOpen();
    db.transaction(() => {
      for (const seq of seqs) {
        this.stmts.dead.run(reason, Date.now(), seq);
        this.stmts.del.run(seq);
      }
    })();
  }

  depth(): number {
    return this.db ? (this.stmts.depth.get() as number) : 0;
  }

  /** Gateway timestamp of the oldest unsent sample, or undefined when empty. */
  oldestTs(): number | undefined {
    return this.db ? ((this.stmts.oldest.get() as number | undefined) ?? undefined) : undefined;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}
