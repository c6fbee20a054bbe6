// What a full disk costs: the same polls appended, interleaved, to a buffer on a file system with
// room and to one on a file system that is full (its database at the page cap below the free
// space, every append evicting the oldest bulk samples as needed). Prints throughput and per-poll
// latency (median and tail) for both and their ratio; then, on the full one, a spell in which
// another file takes every free block (the reserve is given back), and the time for the buffer
// to report itself healthy once an acknowledged backlog is deleted. Needs root (mounts two tmpfs).
//
//   npm run bench:disk -- --seconds 20 --size-mb 64
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import { SqliteBuffer } from '../src/buffer/sqlite-buffer.js';
import type { Sample } from '../src/core/sample.js';
import { machine, pct } from './lib.js';

const values = scriptArgs('bench:disk', 'The buffer on a genuinely full file system (root: mounts a tmpfs).', {
  seconds: { type: 'string', default: '20' },
  'size-mb': { type: 'string', default: '64' },
});
const SECONDS = Number(values.seconds);
const SIZE_MB = Number(values['size-mb']);
const POLL = 50; // one poll of a 50-point device: 1 critical, 9 normal, 40 bulk

const poll = (i: number): Sample[] =>
  Array.from({ length: POLL }, (_, k) => ({
    ts: Date.now(),
    device: `plc-${i % 20}`,
    point: `p${k}`,
    value: 20 + ((i + k) % 1000) / 10,
    quality: 'good',
    channel: 'tcp://127.0.0.1:502',
    priority: k === 0 ? 'critical' : k < 10 ? 'normal' : 'bulk',
  }));

function mount(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-bench-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', dir]);
  return dir;
}

function main(): void {
  if (process.getuid?.() !== 0) {
    console.log('bench/full-disk: needs root to mount the two tmpfs file systems; nothing measured');
    return;
  }
  const roomy = mount();
  const full = mount();
  try {
    console.log(`edgeferry full-disk bench — ${machine()}; two ${SIZE_MB} MiB tmpfs, synchronous=full, ${POLL}-sample polls`);
    const opts = { synchronous: 'full' as const, maxBytes: 2 ** 40, maxAgeS: 86_400 * 365 };
    const a = new SqliteBuffer(join(roomy, 'b.db'), opts);
    const b = new SqliteBuffer(join(full, 'b.db'), opts);
    a.open();
    b.open();
    // Fill the second one until the disk is full (it evicts from then on).
    let i = 0;
    const t0 = performance.now();
    const healthy = () => b.health.state === 'ok';
    while (healthy()) b.append(poll(i++));
    console.log(`filled ${SIZE_MB} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s (${b.depth()} samples, ${b.health.reasons.join('; ')})`);

    // Interleaved: A, B, A, B … so both see the same machine noise.
    const lat = { room: [] as number[], full: [] as number[] };
    const end = performance.now() + SECONDS * 1000;
    let n = 0;
    while (performance.now() < end) {
      for (const [buf, out] of [
        [a, lat.room],
        [b, lat.full],
      ] as const) {
        const t = performance.now();
        buf.append(poll(i++));
        out.push(performance.now() - t);
      }
      n++;
      // Keep the roomy one from filling up: the broker acknowledges it.
      if (n % 200 === 0) a.accept(a.readAfter(0, 100_000).map((r) => r.seq));
    }
    const secs = (x: number[]) => x.reduce((s, v) => s + v, 0) / 1000;
    const row = (name: string, x: number[]) =>
      `${name.padEnd(12)} ${((x.length * POLL) / secs(x)).toFixed(0).padStart(7)} samples/s of append time; per poll p50 ${pct(x, 50).toFixed(2)} ms, p99 ${pct(x, 99).toFixed(2)} ms, max ${Math.max(...x).toFixed(1)} ms`;
    console.log(row('disk room', lat.room));
    console.log(row('disk full', lat.full));
    console.log(
      `full / room: p50 ${(pct(lat.full, 50) / pct(lat.room, 50)).toFixed(2)}x, p99 ${(pct(lat.full, 99) / pct(lat.room, 99)).toFixed(2)}x; ${n} polls each, ${b.stats().evicted} samples evicted on the full disk (critical still buffered: ${b.stats().byPriority.critical})`,
    );

    // Another program takes every free block for a while.
    try {
      writeFileSync(join(full, 'filler'), Buffer.alloc(SIZE_MB << 20));
    } catch {
      /* ENOSPC: written as far as it would go */
    }
    const starved: number[] = [];
    let refused = 0;
    for (let k = 0; k < 2000; k++) {
      const t = performance.now();
      try {
        b.append(poll(i++));
      } catch {
        refused++;
      }
      starved.push(performance.now() - t);
    }
    unlinkSync(join(full, 'filler'));
    console.log(
      `no free block at all: 2000 polls, ${refused} refused (not stored, accounted), per poll p50 ${pct(starved, 50).toFixed(2)} ms, p99 ${pct(starved, 99).toFixed(2)} ms`,
    );

    // The broker is back: the backlog is acknowledged in batches of 500 while polls go on.
    const t1 = performance.now();
    let acked = 0;
    const backlogEnd = b.lastSeq();
    for (let from = 0; from < backlogEnd;) {
      const rows = b.readRange(from, backlogEnd, 500);
      if (!rows.length) break;
      b.accept(rows.map((r) => r.seq));
      acked += rows.length;
      from = rows.at(-1)!.seq;
      b.append(poll(i++));
    }
    for (let k = 0; k < 200 && !healthy(); k++) b.append(poll(i++));
    console.log(
      `recovery: ${acked} acknowledged samples deleted and the buffer healthy again in ${((performance.now() - t1) / 1000).toFixed(2)} s (state ${b.health.state})`,
    );
    a.close();
    b.close();
  } finally {
    for (const d of [roomy, full]) {
      execFileSync('umount', ['-l', d]);
      rmSync(d, { recursive: true, force: true });
    }
  }
}

main();
