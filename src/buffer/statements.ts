// Every statement the buffer runs, prepared once each time the file is opened.
import type Database from 'better-sqlite3';

export function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare('INSERT INTO samples (ts, device, point, prio, body, kind, pending) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    readRange: db.prepare('SELECT seq, ts, device, point, prio, body, kind, pending FROM samples WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
    // One output's rows (output-slots.ts): those whose bit it has not cleared yet.
    readFor: db.prepare(
      'SELECT seq, ts, device, point, prio, body, kind, pending FROM samples WHERE seq > ? AND seq <= ? AND (pending & ?) != 0 ORDER BY seq LIMIT ?',
    ),
    firstFor: db.prepare('SELECT seq, ts FROM samples WHERE seq > ? AND (pending & ?) != 0 ORDER BY seq LIMIT 1'),
    countFor: db.prepare('SELECT count(*) FROM samples WHERE (pending & ?) != 0').pluck(),
    clearBit: db.prepare('UPDATE samples SET pending = pending & ? WHERE seq BETWEEN ? AND ? AND (pending & ?) != 0'),
    delDone: db.prepare('DELETE FROM samples WHERE seq BETWEEN ? AND ? AND pending = 0'),
    del: db.prepare('DELETE FROM samples WHERE seq = ?'),
    delRange: db.prepare('DELETE FROM samples WHERE seq BETWEEN ? AND ?'),
    depth: db.prepare('SELECT count(*) FROM samples').pluck(),
    byPrio: db.prepare('SELECT prio, count(*) AS n FROM samples GROUP BY prio'),
    // The queue's head (one index lookup; min(ts) scanned the table on every /healthz).
    oldest: db.prepare('SELECT ts FROM samples ORDER BY seq LIMIT 1').pluck(),
    lastSeq: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck(),
    setSeq: db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'samples'"),
    initSeq: db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('samples', ?)"),
    victims: db.prepare('SELECT seq, pending FROM samples WHERE prio = ? AND seq NOT BETWEEN ? AND ? AND seq NOT BETWEEN ? AND ? ORDER BY seq LIMIT ?'),
    aged: db.prepare('SELECT seq, prio, pending FROM samples WHERE ts < ? ORDER BY seq LIMIT 1000'),
    dead: db.prepare(
      'INSERT OR REPLACE INTO dead_letter (seq, ts, device, point, body, reason, rejected_at, kind) SELECT seq, ts, device, point, body, ?, ?, kind FROM samples WHERE seq = ?',
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
    syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: db.prepare('PRAGMA synchronous = FULL'),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
