import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBufferCli } from '../../src/cli/buffer.js';
import Database from '../../src/buffer/sqlite.js';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import type { Priority, Sample } from '../../src/core/sample.js';

const s = (point: string, priority: Priority, ts = Date.now()): Sample => ({ ts, device: 'd', point, value: 1.5, quality: 'good', channel: 'c', priority });

describe('buffer bounds and recovery', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'edgeferry-bounds-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('at the byte cap evicts bulk before normal before critical, oldest first, and records exact loss events', () => {
    const b = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 20, maxAgeS: 86_400 });
    b.open();
    const taken: { seq: number; prio: Priority }[] = [];
    for (let i = 0; i < 800; i++) {
      const batch = [s(`c${i}`, 'critical'), s(`n${i}`, 'normal'), ...Array.from({ length: 8 }, (_, k) => s(`b${i}-${k}`, 'bulk'))];
      b.append(batch).forEach((seq, k) => taken.push({ seq, prio: batch[k]!.priority! }));
    }
    const st = b.stats();
    expect(st.evicted).toBeGreaterThan(0);
    expect(st.bytes).toBeLessThanOrEqual(1 << 20);
    expect(st.byPriority.critical).toBe(800);
    const events = b
      .pendingEvents(1000)
      .map((e) => JSON.parse(e.body) as { event: string; count: number; ranges: [number, number][]; by_priority: Record<string, number> });
    const lost = new Set<number>();
    for (const e of events) for (const [a, z] of e.ranges) for (let q = a; q <= z; q++) lost.add(q);
    expect(events.reduce((n, e) => n + e.count, 0)).toBe(st.evicted);
    expect(lost.size).toBe(st.evicted);
    // Only bulk went, and the oldest bulk samples first.
    const bulk = taken.filter((t) => t.prio === 'bulk').map((t) => t.seq);
    expect([...lost].every((q) => bulk.includes(q))).toBe(true);
    expect(bulk.slice(0, lost.size).every((q) => lost.has(q))).toBe(true);
    b.close();
  });

  it('never evicts rows the publisher has in flight (they are most likely delivered)', () => {
    const b = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 20, maxAgeS: 86_400 });
    b.open();
    b.protect([[0, 500]]);
    for (let i = 0; i < 1000; i++) b.append(Array.from({ length: 10 }, (_, k) => s(`b${i}-${k}`, 'bulk')));
    const events = b.pendingEvents(1000).map((e) => JSON.parse(e.body) as { ranges: [number, number][] });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.ranges.every(([from]) => from > 500))).toBe(true);
    expect(b.readAfter(0, 500).map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    b.close();
  });

  it('on a full disk (SQLITE_FULL) evicts by priority and keeps taking samples instead of crashing', () => {
    const b = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 2 ** 40, maxAgeS: 86_400, maxPageCount: 200 });
    b.open();
    for (let i = 0; i < 3000; i++) b.append([s(`c${i}`, 'critical'), s(`b${i}`, 'bulk'), s(`b2${i}`, 'bulk')]);
    const st = b.stats();
    expect(st.byPriority.critical).toBe(3000);
    expect(st.evicted).toBeGreaterThan(0);
    const events = b.pendingEvents(1000).map((e) => JSON.parse(e.body) as { reason: string; count: number; by_priority: Record<string, number> });
    expect(events.every((e) => e.reason === 'disk_full' && e.by_priority.critical === undefined)).toBe(true);
    expect(events.reduce((n, e) => n + e.count, 0)).toBe(st.evicted);
    b.close();
  });

  it('on a full disk with every priority on every page (1 critical, 1 bulk, 3 normal a poll): no append refused, critical evicted only when nothing lower is left', () => {
    // Deleting the bulk rows frees no whole page here; the eviction's own writes (its data_lost
    // event) need a page all the same. Before the fix every append was refused after the first round.
    const b = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 2 ** 40, maxAgeS: 86_400, maxPageCount: 300 });
    b.open();
    const prios: Priority[] = ['critical', 'bulk', 'normal', 'normal', 'normal'];
    let refused = 0;
    for (let i = 0; i < 6000; i++) {
      try {
        b.append(prios.map((p, k) => s(`${p}${k}`, p)));
      } catch {
        refused++;
      }
    }
    const st = b.stats();
    expect(refused).toBe(0);
    expect(st.unstored).toBe(0);
    expect(st.evicted).toBeGreaterThan(6000);
    const events = b.pendingEvents(100_000).map((e) => JSON.parse(e.body) as { reason: string; count: number; by_priority: Record<string, number> });
    expect(events.reduce((n, e) => n + e.count, 0)).toBe(st.evicted);
    // Lower priorities first: by the first event that names a critical sample, bulk and normal ones went before it.
    const firstCritical = events.findIndex((e) => e.by_priority.critical);
    const before = events.slice(0, firstCritical < 0 ? events.length : firstCritical);
    expect(before.some((e) => e.by_priority.bulk) && before.some((e) => e.by_priority.normal)).toBe(true);
    b.close();
  });

  it('a file of an older release (no auto_vacuum) is converted at open, keeping its rows, so freed pages can go back to the disk', () => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(
      'CREATE TABLE samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, prio INTEGER NOT NULL DEFAULT 1, body TEXT NOT NULL, kind INTEGER NOT NULL DEFAULT 0)',
    );
    old.prepare('INSERT INTO samples (ts, device, point, prio, body) VALUES (1, ?, ?, 1, ?)').run('d', 'p', '{"ts":1,"value":2}');
    expect(old.pragma('auto_vacuum', { simple: true })).toBe(0);
    old.close();
    const b = new SqliteBuffer(path, { synchronous: 'normal', maxBytes: 2 ** 40, maxAgeS: 2 ** 40 });
    b.open();
    expect(b.depth()).toBe(1);
    b.close();
    const after = new Database(path, { readonly: true });
    expect(after.pragma('auto_vacuum', { simple: true })).toBe(2);
    after.close();
    // A new file has it from the start (set before WAL mode, which would freeze it).
    const fresh = new SqliteBuffer(join(dir, 'new.db'), { synchronous: 'normal', maxBytes: 2 ** 40, maxAgeS: 2 ** 40 });
    fresh.open();
    fresh.close();
    const n = new Database(join(dir, 'new.db'), { readonly: true });
    expect(n.pragma('auto_vacuum', { simple: true })).toBe(2);
    n.close();
  });

  it('evicts samples older than max_age_s and says so', () => {
    let now = Date.UTC(2026, 0, 1);
    const b = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'normal', maxBytes: 1 << 30, maxAgeS: 3600, now: () => now });
    b.open();
    b.append([s('old', 'critical', now)]);
    now += 2 * 3600 * 1000;
    b.append([s('new', 'normal', now)]);
    b.evictAged();
    expect(b.readAfter(0, 10).map((r) => r.point)).toEqual(['new']);
    expect(JSON.parse(b.pendingEvents(10)[0]!.body)).toMatchObject({ event: 'data_lost', reason: 'max_age', count: 1, ranges: [[1, 1]] });
    // While running, the age check comes with the appends (every 100th), without being asked.
    now += 2 * 3600 * 1000;
    for (let i = 0; i < 100; i++) b.append([s(`live${i}`, 'normal', now)]);
    expect(b.readAfter(0, 200).map((r) => r.point)).not.toContain('new');
    expect(b.depth()).toBe(100);
    b.close();
  });

  it('moves a damaged file aside, keeps it, and continues with higher seqs', () => {
    const path = join(dir, 'b.db');
    writeFileSync(path, Buffer.alloc(8192, 0x42));
    const b = new SqliteBuffer(path, { synchronous: 'full', maxBytes: 1 << 30, maxAgeS: 86_400, now: () => 1_800_000_000_000 });
    b.open();
    expect(b.recovered?.movedTo).toMatch(/b\.db\.corrupt-/);
    expect(readdirSync(dir).some((f) => f.startsWith('b.db.corrupt-'))).toBe(true);
    expect(b.append([s('x', 'normal')])[0]).toBe(1_800_000_000_000_001);
    expect(JSON.parse(b.pendingEvents(10)[0]!.body)).toMatchObject({ event: 'buffer_recovered' });
    b.close();
  });

  it('edgeferry buffer stats / peek / export show depth, the next messages and dead letters', async () => {
    const path = join(dir, 'b.db');
    const b = new SqliteBuffer(path, { synchronous: 'full', maxBytes: 1 << 30, maxAgeS: 86_400 });
    b.open();
    b.append([s('a', 'normal'), s('b', 'bulk'), s('c', 'critical')]);
    b.reject([2], 'Not authorized');
    b.close();
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runBufferCli(args, {
        cwd: dir,
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        stopRequested: new Promise(() => undefined),
        version: 'test',
      });
      return { code, out, err };
    };
    const stats = await run('stats', '--file', 'b.db');
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.out.join('\n'))).toMatchObject({ depth: 2, by_priority: { critical: 1, normal: 1, bulk: 0 }, dead_letters: 1, last_seq: 3 });
    const empty = new SqliteBuffer(join(dir, 'empty.db'), { synchronous: 'full', maxBytes: 1 << 30, maxAgeS: 86_400 });
    empty.open();
    empty.close();
    const none = await run('peek', '--file', 'empty.db');
    expect(none.out).toEqual([]);
    expect(none.err.join('\n')).toMatch(/nothing waiting \(the buffer is empty\)/);
    const peek = await run('peek', '--file', 'b.db', '--limit', '1');
    expect(peek.out.map((l) => JSON.parse(l))).toMatchObject([{ seq: 1, device: 'd', point: 'a', quality: 'good' }]);
    const dead = await run('export', '--file', 'b.db', '--dead-letters');
    expect(dead.out.map((l) => JSON.parse(l))).toMatchObject([{ seq: 2, point: 'b', dead_letter_reason: 'Not authorized' }]);
    expect(existsSync(path)).toBe(true);
    expect((await run('stats')).code).toBe(2);
  });
});
