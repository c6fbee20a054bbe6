// The buffer at the machine's edges (issue 15): files that come back empty, older or damaged, loss
// events with more ranges than fit in one, samples the disk refused, and a genuinely full disk.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, closeSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { logLoss } from '../../src/buffer/loss-log.js';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import { LogSink } from '../../src/log.js';
import type { Priority, Sample } from '../../src/core/sample.js';

const s = (point: string, priority: Priority = 'normal'): Sample => ({
  ts: Date.now(),
  device: 'd',
  point,
  value: 1.5,
  quality: 'good',
  channel: 'c',
  priority,
});
const OPTS = { synchronous: 'full' as const, maxBytes: 1 << 30, maxAgeS: 86_400 };
type Ev = {
  event: string;
  reason?: string;
  count?: number;
  ranges?: [number, number][];
  first_seq?: number;
  by_priority?: Record<string, number>;
  samples_in_file?: number;
};
const events = (b: SqliteBuffer): Ev[] => b.pendingEvents(100_000).map((e) => JSON.parse(e.body) as Ev);
const seqsIn = (evs: Ev[]) => {
  const out = new Set<number>();
  for (const e of evs) for (const [a, z] of e.ranges ?? []) for (let q = a; q <= z; q++) out.add(q);
  return out;
};

describe('buffer edges', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeferry-edges-'));
    path = join(dir, 'b.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A buffer that took `n` samples (all still buffered) and was closed; returns its last seq. */
  function filled(n: number, file = path): number {
    const b = new SqliteBuffer(file, OPTS);
    b.open();
    let last = 0;
    for (let i = 0; i < n; i += 10) last = b.append(Array.from({ length: 10 }, (_, k) => s(`p${k}`))).at(-1)!;
    b.close();
    return last;
  }

  const cases: [string, (last: number) => void, string][] = [
    ['a zero-length file (a power cut with delayed allocation, or `> buffer.db`)', () => truncateSync(path, 0), 'zero_length'],
    ['a deleted file', () => unlinkSync(path), 'missing'],
  ];
  for (const [what, damage, reason] of cases) {
    it(`continues above every seq used before after ${what}, and says so`, () => {
      const last = filled(500);
      damage(last);
      const b = new SqliteBuffer(path, OPTS);
      b.open();
      const next = b.append([s('x')])[0]!;
      expect(next).toBeGreaterThan(last);
      const ev = events(b).find((e) => e.event === 'buffer_reset');
      expect(ev).toMatchObject({ reason, previous_seq: last });
      expect(ev!.first_seq).toBe(next);
      b.close();
    });
  }

  it('continues above every seq used before when the file is replaced by an older copy', () => {
    const early = filled(100);
    copyFileSync(path, join(dir, 'backup.db'));
    const b1 = new SqliteBuffer(path, OPTS);
    b1.open();
    const late = b1.append(Array.from({ length: 200 }, (_, i) => s(`q${i}`))).at(-1)!;
    b1.close();
    expect(late).toBe(300);
    copyFileSync(join(dir, 'backup.db'), path);
    const b = new SqliteBuffer(path, OPTS);
    b.open();
    expect(b.append([s('x')])[0]).toBeGreaterThan(late);
    expect(events(b).find((e) => e.event === 'buffer_reset')).toMatchObject({ reason: 'older_copy', previous_seq: late, file_seq: early });
    b.close();
  });

  it('routes rows of a file written before messages carried their kind as those versions did', () => {
    // The 0.x layout: no kind column; EL verdicts labelled device "/el", poll messages point "/poll".
    const old = new Database(path);
    old.exec(`CREATE TABLE samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
      prio INTEGER NOT NULL DEFAULT 1, body TEXT NOT NULL);
      CREATE TABLE dead_letter (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, body TEXT NOT NULL,
      reason TEXT NOT NULL, rejected_at INTEGER NOT NULL);`);
    const ins = old.prepare('INSERT INTO samples (ts, device, point, body) VALUES (1, ?, ?, ?)');
    for (const [d, p] of [
      ['press', 'temp'],
      ['/el', 'line1'],
      ['press', '/poll'],
    ])
      ins.run(d, p, '{}');
    old.close();
    const b = new SqliteBuffer(path, OPTS);
    b.open();
    expect(b.readRange(0, Infinity, 10).map((r) => [r.device, r.point, r.kind])).toEqual([
      ['press', 'temp', 0],
      ['/el', 'line1', 2],
      ['press', '/poll', 1],
    ]);
    // New rows carry their kind; a point literally named like the old label is still a point.
    b.append([
      { ...s('/poll'), device: 'x' },
      { ...s('v'), kind: 'el' },
    ]);
    expect(b.readRange(3, Infinity, 10).map((r) => r.kind)).toEqual([0, 2]);
    b.close();
  });

  it('keeps seqs across a clean restart without gaps and without an event', () => {
    const last = filled(50);
    const b = new SqliteBuffer(path, OPTS);
    b.open();
    expect(b.append([s('x')])[0]).toBe(last + 1);
    expect(events(b)).toEqual([]);
    b.close();
  });

  it('accounts the samples of a damaged file: an event whose ranges cover every one of them', () => {
    const n = 2000;
    filled(n);
    // Damage the priority index: quick_check fails, the rows themselves stay readable.
    const db = new Database(path);
    const root = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'samples_prio_seq'").pluck().get() as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, (root - 1) * pageSize);
    closeSync(fd);
    const b = new SqliteBuffer(path, OPTS);
    b.open();
    expect(b.recovered).toBeDefined();
    const evs = events(b);
    expect(evs.find((e) => e.event === 'buffer_recovered')).toMatchObject({ samples_in_file: n, first_seq: n + 1 });
    const lost = evs.filter((e) => e.event === 'data_lost');
    expect(lost.every((e) => e.reason === 'buffer_damaged')).toBe(true);
    expect(lost.reduce((k, e) => k + e.count!, 0)).toBe(n);
    expect(seqsIn(lost)).toEqual(new Set(Array.from({ length: n }, (_, i) => i + 1)));
    expect(b.append([s('x')])[0]).toBe(n + 1);
    b.close();
  });

  /** A buffer whose events are logged the way the daemon logs them (gateway.ts → loss-log.ts), into `lines`. */
  function logged(file: string, lines: Record<string, unknown>[]): SqliteBuffer {
    const sink = new LogSink({ format: 'json', journald: false, write: (x) => void lines.push(JSON.parse(x) as Record<string, unknown>) });
    const log = pino({ level: 'info', formatters: { level: (label) => ({ level: label }) } }, sink);
    return new SqliteBuffer(file, { ...OPTS, onEvent: (e) => logLoss(log, e) });
  }

  it('a zero-length file: the reset is an error log line with the seqs it could not account, not only an event', () => {
    const last = filled(300);
    truncateSync(path, 0);
    const lines: Record<string, unknown>[] = [];
    const b = logged(path, lines);
    b.open();
    const line = lines.find((l) => l.event === 'buffer_reset');
    expect(line).toMatchObject({
      level: 'error',
      reason: 'zero_length',
      previous_seq: last,
      file_seq: 0,
      unaccounted: last,
      first_seq: expect.any(Number) as number,
    });
    expect(String(line!.msg)).toMatch(/not the one being written \(zero_length\)/);
    b.close();
  });

  it('a damaged WAL tail after a power cut: reason wal_tail_lost (not older_copy), the unaccounted seqs counted, an error log line', () => {
    const b0 = new SqliteBuffer(path, OPTS);
    b0.open();
    for (let i = 0; i < 40; i++) b0.append(Array.from({ length: 50 }, (_, k) => s(`p${k}`)));
    // The power cut: the files as they are on disk while the gateway runs (the WAL holds the rows).
    const cut = join(dir, 'cut.db');
    for (const x of ['', '-wal', '.seq']) copyFileSync(path + x, cut + x);
    b0.close();
    const wal = statSync(`${cut}-wal`).size;
    expect(wal).toBeGreaterThan(100_000);
    const fd = openSync(`${cut}-wal`, 'r+');
    writeSync(fd, Buffer.alloc(4096 * 4, 0x5a), 0, 4096 * 4, Math.floor(wal * 0.7));
    closeSync(fd);
    const lines: Record<string, unknown>[] = [];
    const b = logged(cut, lines);
    b.open();
    const ev = events(b).find((e) => e.event === 'buffer_reset') as Ev & { previous_seq: number; file_seq: number; unaccounted: number };
    expect(ev).toMatchObject({ reason: 'wal_tail_lost', previous_seq: 2000 });
    expect(ev.file_seq).toBeLessThan(2000);
    expect(ev.unaccounted).toBe(2000 - ev.file_seq);
    expect(b.depth()).toBe(ev.file_seq);
    expect(lines.find((l) => l.event === 'buffer_reset')).toMatchObject({ level: 'error', reason: 'wal_tail_lost', unaccounted: ev.unaccounted });
    b.close();
  });

  it('a damaged page in the middle of the file: the scan goes on past it, samples_in_file is what was read, the unreadable seqs are named and logged', () => {
    const n = 9700;
    filled(n);
    const db = new Database(path);
    const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = 'samples' AND pagetype = 'leaf' ORDER BY pageno").pluck().all() as number[];
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const victim = leaves[Math.floor(leaves.length / 2)]!;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0xff), 0, pageSize, (victim - 1) * pageSize);
    closeSync(fd);
    const lines: Record<string, unknown>[] = [];
    const b = logged(path, lines);
    b.open();
    expect(b.recovered).toBeDefined();
    const evs = events(b);
    const rec = evs.find((e) => e.event === 'buffer_recovered') as Ev & { unreadable_seqs: [number, number][] };
    const read = rec.samples_in_file!;
    expect(read).toBeGreaterThan(n / 2); // the rows after the damaged page were read too
    expect(read).toBeLessThan(n);
    const lost = evs.filter((e) => e.event === 'data_lost');
    const named = seqsIn(lost);
    // Every seq of the file is named: read ones (buffer_damaged) and the unreadable ranges.
    expect(Array.from({ length: n }, (_, i) => i + 1).filter((q) => !named.has(q))).toEqual([]);
    const unreadable = lost.filter((e) => (e as { unreadable?: boolean }).unreadable);
    expect(unreadable.length).toBe(1);
    expect(seqsIn(unreadable).size).toBeLessThan(n - read + 300); // a page's worth, not the rest of the file
    expect(lines.find((l) => l.event === 'buffer_recovered')).toMatchObject({ level: 'error', samples_in_file: read });
    expect(lines.filter((l) => l.event === 'data_lost' && l.level === 'warn').length).toBe(lost.length);
    b.close();
  });

  it('a file that cannot be read at all: samples_in_file is null (unknown), not 0', () => {
    filled(500);
    writeFileSync(path, Buffer.alloc(64 * 1024, 0x42)); // not a database any more
    const b = new SqliteBuffer(path, OPTS);
    b.open();
    const rec = events(b).find((e) => e.event === 'buffer_recovered') as Ev & { samples_in_file: number | null; seqs_up_to?: number };
    expect(rec.samples_in_file).toBeNull();
    expect(rec.seqs_up_to).toBe(500);
    expect(b.append([s('x')])[0]).toBeGreaterThan(500);
    b.close();
  });

  for (const [what, mark] of [
    ['a trillion samples not stored', (last: number) => ({ newest: last, top: last + 100_000, unstored: 1e12, by: { normal: 1e12 } })],
    ['newest and top near 2^53', () => ({ newest: 2 ** 53 - 10, top: 2 ** 53 - 5, unstored: 0, by: {} })],
    ['newest above top', (last: number) => ({ newest: last + 10, top: last, unstored: 0, by: {} })],
  ] as const) {
    it(`a seq mark with absurd values (${what}) is refused with an event and a log line; seqs go on from the file`, () => {
      const last = filled(100);
      writeFileSync(`${path}.seq`, JSON.stringify(mark(last)));
      const lines: Record<string, unknown>[] = [];
      const b = logged(path, lines);
      b.open();
      const evs = events(b);
      expect(evs.find((e) => e.event === 'seq_mark_refused')).toBeDefined();
      expect(evs.filter((e) => e.event === 'data_lost')).toEqual([]);
      expect(lines.find((l) => l.event === 'seq_mark_refused')).toMatchObject({ level: 'error' });
      const seqs = b.append([s('x'), s('y')]);
      expect(seqs).toEqual([last + 1, last + 2]);
      expect(b.stats().unstored).toBe(0);
      b.close();
      // The mark is sane again: the next start has nothing to say.
      const again = new SqliteBuffer(path, OPTS);
      again.open();
      expect(events(again).filter((e) => e.event === 'seq_mark_refused')).toHaveLength(1); // the earlier one, still pending
      again.close();
    });
  }

  it('names every lost seq when one eviction has more than 500 ranges, over several events', () => {
    const b = new SqliteBuffer(path, { ...OPTS, synchronous: 'normal', maxBytes: 1 << 20 });
    b.open();
    const bulk: number[] = [];
    const pad = 'x'.repeat(200);
    // Critical and bulk alternate: every evicted bulk sample is a range of its own.
    for (let i = 0; i < 4000; i++) {
      const seqs = b.append([s(`c${i}`, 'critical'), s(`b${i}${pad}`, 'bulk')]);
      bulk.push(seqs[1]!);
    }
    const st = b.stats();
    const lost = events(b).filter((e) => e.event === 'data_lost');
    expect(st.evicted).toBeGreaterThan(1000);
    expect(lost.some((e) => e.ranges!.length === 500)).toBe(true);
    expect(lost.every((e) => e.ranges!.length <= 500 && !('ranges_truncated' in e))).toBe(true);
    const named = seqsIn(lost);
    expect(named.size).toBe(st.evicted);
    expect(lost.reduce((k, e) => k + e.count!, 0)).toBe(st.evicted);
    expect([...named].every((q) => bulk.includes(q))).toBe(true);
    b.close();
  });

  it('gives samples it could not store seqs and a data_lost event, even across a restart', () => {
    const b = new SqliteBuffer(path, OPTS);
    const states: string[] = [];
    b.onHealth = (h) => states.push(h.state);
    b.open();
    b.append([s('a'), s('b')]);
    // Another process holds the write lock (an operator's sqlite3 shell in a transaction).
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    expect(() => b.append([s('c', 'critical'), s('d')])).toThrow(/GW_ERR_BUFFER|append of 2 samples failed/);
    expect(() => b.append([s('e')])).toThrow();
    expect(b.health.state).toBe('degraded');
    expect(b.stats().unstored).toBe(3);
    b.close(); // the count is in the seq mark, not only in memory
    other.exec('ROLLBACK');
    other.close();
    const again = new SqliteBuffer(path, OPTS);
    again.open();
    expect(again.append([s('f')])).toEqual([6]);
    const lost = events(again).filter((e) => e.event === 'data_lost');
    expect(lost).toMatchObject([{ reason: 'not_stored', count: 3, ranges: [[3, 5]], by_priority: { critical: 1, normal: 2 } }]);
    expect(again.stats().unstored).toBe(3);
    expect(again.health.state).toBe('ok');
    again.close();
    expect(states).toEqual(['degraded']);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)(
    'started on a disk with no room for the reserve: degraded saying so, and up with the reserve made once there is room (needs root to mount a tmpfs)',
    () => {
      const mnt = mkdtempSync(join(tmpdir(), 'edgeferry-tmpfs-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
      try {
        try {
          writeFileSync(join(mnt, 'filler'), Buffer.alloc(8 << 20)); // another program's file: every block
        } catch {
          /* ENOSPC: full to the last block */
        }
        unlinkSync(join(mnt, 'filler'));
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(3.5 * 2 ** 20)); // 0.5 MiB left: less than headroom and reserve need (0.75 MiB)
        const b = new SqliteBuffer(join(mnt, 'b.db'), OPTS);
        b.open();
        expect(b.health).toEqual({ state: 'degraded', reasons: ['disk full: no room for the reserve file'] });
        expect(existsSync(join(mnt, 'b.db.reserve'))).toBe(false);
        unlinkSync(join(mnt, 'filler'));
        for (let i = 0; i < 64; i++) b.append([s(`p${i}`)]); // the next size check sees the room
        expect(b.health.state).toBe('ok');
        expect(statSync(join(mnt, 'b.db.reserve')).size).toBeGreaterThan(0);
        b.close();
      } finally {
        execFileSync('umount', ['-l', mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!root)('on a genuinely full file system keeps taking samples, evicts bulk first and accounts every seq (needs root to mount a tmpfs)', () => {
    const mnt = mkdtempSync(join(tmpdir(), 'edgeferry-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
    try {
      const b = new SqliteBuffer(join(mnt, 'b.db'), OPTS);
      const health: string[] = [];
      b.onHealth = (h) => health.push(`${h.state}:${h.reasons.join(';')}`);
      b.open();
      const critical: number[] = [];
      let refused = 0;
      for (let i = 0; i < 2500; i++) {
        if (i === 1200) {
          // Another program fills what is left (the headroom included).
          try {
            writeFileSync(join(mnt, 'filler'), Buffer.alloc(8 << 20));
          } catch {
            /* ENOSPC: the disk is now full to the last block */
          }
        }
        try {
          const seqs = b.append([s(`c${i}`, 'critical'), ...Array.from({ length: 19 }, (_, k) => s(`b${k}`, 'bulk'))]);
          critical.push(seqs[0]!);
        } catch {
          refused++;
        }
      }
      const st = b.stats();
      expect(refused).toBe(0);
      expect(st.byPriority.critical).toBe(2500);
      const lost = events(b).filter((e) => e.event === 'data_lost');
      expect(lost.reduce((k, e) => k + e.count!, 0)).toBe(st.evicted + st.unstored);
      expect(lost.every((e) => e.reason === 'disk_full' && !e.by_priority!.critical)).toBe(true);
      const stored = new Set(b.readAfter(0, 1e9).map((r) => r.seq));
      const named = seqsIn(lost);
      for (let q = 1; q <= st.lastSeq; q++) expect(stored.has(q) || named.has(q)).toBe(true);
      expect(health[0]).toMatch(/^degraded:disk full/);
      // Space comes back and the backlog is delivered: the buffer is healthy again by itself.
      unlinkSync(join(mnt, 'filler'));
      for (let from = 0; ;) {
        const rows = b.readAfter(from, 500);
        if (!rows.length) break;
        b.accept(rows.map((r) => r.seq));
        from = rows.at(-1)!.seq;
      }
      for (let i = 0; i < 200; i++) b.append([s('live')]);
      expect(b.health).toEqual({ state: 'ok', reasons: [] });
      const depth = b.depth();
      const last = b.lastSeq();
      b.close();

      // A reboot with the disk full to the last block: the buffer opens (its reserve makes room
      // for the WAL), is not mistaken for a damaged file, and keeps what it had.
      try {
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(8 << 20));
      } catch {
        /* ENOSPC */
      }
      const again = new SqliteBuffer(join(mnt, 'b.db'), OPTS);
      again.open();
      expect(again.recovered).toBeUndefined();
      expect(again.depth()).toBe(depth);
      expect(again.append([s('after reboot')])[0]).toBe(last + 1);
      // The pages the delivered backlog freed go back to the file system (incremental_vacuum) and
      // become the reserve again: the buffer has its room, so it is not degraded — health follows
      // what the buffer can do, with the reserve in place.
      expect(existsSync(join(mnt, 'b.db.reserve'))).toBe(true);
      expect(again.health.state).toBe('ok');
      again.close();
    } finally {
      execFileSync('umount', ['-l', mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
