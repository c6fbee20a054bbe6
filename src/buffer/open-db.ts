// Opening the buffer file, and what happens when it is damaged: the daemon never refuses to start
// because of its own buffer. A file that fails to open or fails SQLite's quick_check is moved
// aside (kept for forensics, never deleted) and a fresh buffer starts; the caller publishes the event.
import { GatewayError } from '../errors.js';
import { EL_DEVICE, KIND_CODE, POLL_POINT } from '../core/sample.js';
import Database, { type Db } from './sqlite.js';
import { existsSync, renameSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

export interface OpenedDb {
  db: Db;
  /** Set when a damaged file was moved aside. */
  recovered?: { movedTo: string; error: string };
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    device TEXT NOT NULL,
    point TEXT NOT NULL,
    prio INTEGER NOT NULL DEFAULT 1,
    body TEXT NOT NULL,
    kind INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 1
  );
  CREATE INDEX IF NOT EXISTS samples_prio_seq ON samples (prio, seq);
  CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    device TEXT NOT NULL,
    point TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at INTEGER NOT NULL,
    kind INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS outputs (
    name TEXT PRIMARY KEY,
    bit INTEGER NOT NULL UNIQUE
  );
  CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
`;

/**
 * Files written before messages carried their `kind` (0.x up to the topic-routing change): the
 * column is added and filled once from the labels those versions routed by (device "/el" for EL
 * verdicts, point "/poll" for poll messages), in one transaction.
 */
function addKindColumn(db: Db): void {
  const has = (table: string) => (db.prepare(`SELECT count(*) FROM pragma_table_info('${table}') WHERE name = 'kind'`).pluck().get() as number) > 0;
  if (has('samples') && has('dead_letter')) return;
  db.transaction(() => {
    for (const table of ['samples', 'dead_letter']) {
      if (has(table)) continue;
      db.exec(`ALTER TABLE ${table} ADD COLUMN kind INTEGER NOT NULL DEFAULT 0`);
      db.prepare(`UPDATE ${table} SET kind = CASE WHEN device = ? THEN ? WHEN point = ? THEN ? ELSE 0 END`).run(
        EL_DEVICE,
        KIND_CODE.el,
        POLL_POINT,
        KIND_CODE.poll,
      );
    }
  })();
}

/**
 * Files written before outputs had cursors (output-slots.ts): every row was MQTT's, which the
 * column's default (bit 0) says.
 */
function addPendingColumn(db: Db): void {
  const has = (db.prepare("SELECT count(*) FROM pragma_table_info('samples') WHERE name = 'pending'").pluck().get() as number) > 0;
  if (!has) db.exec('ALTER TABLE samples ADD COLUMN pending INTEGER NOT NULL DEFAULT 1');
}

export const AUTO_VACUUM_INCREMENTAL = 2;
/** Files up to this size are rewritten at open to let their free pages go (VACUUM copies the file). */
const CONVERT_MAX_BYTES = 64 << 20;

const tableCount = (db: Db) => db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get() as number;

/** auto_vacuum can only be switched on by VACUUM, which needs a copy's room: done when the file is small and the disk has it. */
function convertToIncremental(db: Db, path: string): void {
  const bytes = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  if (bytes > CONVERT_MAX_BYTES) return;
  try {
    const fs = statfsSync(dirname(path));
    if (fs.bavail * fs.bsize < 3 * bytes + (8 << 20)) return;
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  } catch {
    // a full disk or a lock: the file keeps working as it is, and is converted at a later start
  }
}

function tryOpen(path: string, synchronous: 'normal' | 'full', walPages: number): Db {
  // A writer that holds the lock (an operator's sqlite3 shell) must not freeze the event loop for
  // long: the buffer then fails the operation, degrades and tries again.
  const db = new Database(path, { timeout: 200 });
  try {
    // Before WAL mode: a new file takes auto_vacuum only while it has no tables and no WAL header yet.
    if (!tableCount(db)) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    // The WAL counts towards max_bytes and needs room on the disk: the buffer sizes it.
    db.pragma(`wal_autocheckpoint = ${walPages}`);
    db.pragma(`journal_size_limit = ${walPages * 4096}`);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new GatewayError('GW_ERR_BUFFER', `quick_check: ${String(check)}`);
    // Pages freed by deliveries and evictions can go back to the file system (incremental_vacuum),
    // so that the full-disk reserve can be made again (bounds.ts). A new file gets it before its
    // first table; a file of an older release is converted while it is small.
    if (tableCount(db) && db.pragma('auto_vacuum', { simple: true }) !== AUTO_VACUUM_INCREMENTAL) convertToIncremental(db, path);
    db.exec(SCHEMA);
    addKindColumn(db);
    addPendingColumn(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function openBufferDb(path: string, synchronous: 'normal' | 'full', walPages: number, now: () => number = Date.now): OpenedDb {
  try {
    return { db: tryOpen(path, synchronous, walPages) };
  } catch (err) {
    if (!existsSync(path)) throw err; // not damage: the folder is missing or read-only
    // Not damage either: a full disk (the WAL or shared-memory file could not be made) or a lock.
    // Moving a healthy file aside for that would lose its samples from the queue.
    if (/^SQLITE_(FULL|IOERR|BUSY|LOCKED|CANTOPEN|READONLY)/.test(String((err as { code?: unknown }).code ?? ''))) throw err;
    const stamp = new Date(now()).toISOString().replace(/[:.]/g, '-');
    const movedTo = `${path}.corrupt-${stamp}`;
    renameSync(path, movedTo);
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
    const db = tryOpen(path, synchronous, walPages);
    // Where its seqs continue is the buffer's decision (the seq mark, src/buffer/seq-mark.ts).
    return { db, recovered: { movedTo, error: (err as Error).message } };
  }
}
