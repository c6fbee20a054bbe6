// Group commit (src/core/sample-sink.ts) on a real buffer file: polls within the window share one
// transaction, nothing counts as taken before its commit, a stop's flush commits what is queued,
// and a refused commit is the buffer's to account while the sink goes on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteBuffer } from '../../src/buffer/sqlite-buffer.js';
import { sampleSink } from '../../src/core/sample-sink.js';
import type { Sample } from '../../src/core/sample.js';

const sample = (device: string, point: string): Sample => ({ ts: Date.now(), device, point, value: 1, quality: 'good', channel: 'tcp://x' });

describe('sample sink (group commit)', () => {
  let dir: string;
  let buffer: SqliteBuffer;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgeferry-sink-'));
    buffer = new SqliteBuffer(join(dir, 'b.db'), { synchronous: 'full', maxBytes: 1 << 30, maxAgeS: 86_400 });
    buffer.open();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
    buffer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits polls that arrive within the window in one transaction, and counts them only then', () => {
    const appends: number[] = [];
    const counted: number[] = [];
    let wakes = 0;
    const sink = sampleSink({
      buffer: { append: (rows) => (appends.push(rows.length), buffer.append(rows)) },
      buffered: (n) => counted.push(n),
      wake: () => wakes++,
      groupMs: 2,
    });
    sink([sample('a', 'p1'), sample('a', 'p2')]);
    sink([sample('b', 'p1')]);
    expect(buffer.depth()).toBe(0); // not taken yet: nothing committed, nothing counted
    expect(counted).toEqual([]);
    vi.advanceTimersByTime(2);
    expect(appends).toEqual([3]);
    expect(counted).toEqual([3]);
    expect(wakes).toBe(1);
    expect(buffer.readAfter(0, 10).map((r) => `${r.device}.${r.point}`)).toEqual(['a.p1', 'a.p2', 'b.p1']);
    // The next poll opens a new window.
    sink([sample('c', 'p1')]);
    vi.advanceTimersByTime(2);
    expect(appends).toEqual([3, 1]);
  });

  it('flush() commits what is queued at once (a stop, before the drain)', () => {
    const sink = sampleSink({ buffer, buffered: () => undefined, wake: () => undefined, groupMs: 50 });
    sink([sample('a', 'p1')]);
    sink.flush();
    expect(buffer.depth()).toBe(1);
    vi.advanceTimersByTime(50);
    expect(buffer.depth()).toBe(1);
  });

  it('leaves a refused commit to the buffer and goes on; now() throws to its caller instead', () => {
    const refused: number[] = [];
    let fail = true;
    const sink = sampleSink({
      buffer: {
        append: (rows) => {
          if (fail) throw new Error('disk I/O error');
          return buffer.append(rows);
        },
      },
      buffered: () => undefined,
      wake: () => undefined,
      groupMs: 2,
      refused: (_err, n) => refused.push(n),
    });
    sink([sample('a', 'p1'), sample('a', 'p2')]);
    vi.advanceTimersByTime(2);
    expect(refused).toEqual([2]);
    expect(() => sink.now([sample('el', 'S1')])).toThrow(/disk I\/O error/);
    fail = false;
    sink([sample('a', 'p3')]);
    vi.advanceTimersByTime(2);
    expect(buffer.readAfter(0, 10).map((r) => r.point)).toEqual(['p3']);
  });
});
