// A virtual serial line for tests and benchmarks: a socat pty pair whose two ends appear as
// symlinks A and B (the gateway opens one, a simulator the other).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stopChild } from './stop-child.js';

export interface PtyPair {
  a: string;
  b: string;
  stop(): Promise<void>;
  /** Starts socat again with the same link names (a USB adapter plugged back in). */
  restart(): Promise<void>;
}

/** Octets that crossed the pair: `from` is the end that wrote them, `at` socat's clock (ms since the epoch). */
export type TapHandler = (from: 'a' | 'b', at: number, octets: Buffer) => void;

/**
 * A plain pair (no pacing: octets cross as soon as they are written). With `tap`, socat also
 * reports every transfer with its own timestamp (`-x -v`), so a test sees the wire from outside
 * both ends, without slowing it down.
 */
export async function ptyPair(dir: string, name = 'tty', tap?: TapHandler): Promise<PtyPair> {
  const a = join(dir, `${name}A`);
  const b = join(dir, `${name}B`);
  let proc: ChildProcess | undefined;
  const launch = async () => {
    const args = [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`];
    const p = spawn('socat', tap ? ['-x', '-v', ...args] : args, { stdio: ['ignore', 'ignore', tap ? 'pipe' : 'ignore'] });
    if (tap) readTap(p, tap);
    proc = p;
    const failed = new Promise<never>((_, reject) =>
      p.once('exit', (code) => reject(new Error(`socat exited with ${code} (install it: apt-get install -y socat)`))),
    );
    failed.catch(() => undefined);
    // socat creates the links as soon as both ptys exist; poll the file system briefly.
    for (let i = 0; i < 200 && !(existsSync(a) && existsSync(b)); i++) await Promise.race([new Promise((r) => setTimeout(r, 10)), failed]);
    if (!existsSync(a) || !existsSync(b)) throw new Error('socat did not create the pty links');
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    await stopChild(p);
  };
  await launch();
  return { a, b, stop, restart: launch };
}

/** Reads socat's `-x -v` dump: a header per transfer (direction, local time, length), hex lines, "--". */
function readTap(p: ChildProcess, tap: TapHandler): void {
  let rest = '';
  let cur: { from: 'a' | 'b'; at: number; hex: string[] } | undefined;
  const flush = () => {
    if (cur) tap(cur.from, cur.at, Buffer.from(cur.hex.join(''), 'hex'));
    cur = undefined;
  };
  p.stderr!.setEncoding('latin1');
  p.stderr!.on('data', (text: string) => {
    const lines = (rest + text).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const h = /^([<>]) (\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d+)\s+length=/.exec(line);
      if (h) {
        flush();
        const [, dir, y, mo, d, hh, mi, ss, frac] = h;
        // socat 1.7 prints microseconds in a 9-digit field; a build that prints nanoseconds fills all 9.
        const f = Number(frac);
        const fracMs = frac!.length === 9 && f >= 1e6 ? f / 1e6 : f / 10 ** (frac!.length === 9 ? 3 : frac!.length - 3);
        const at = new Date(Number(y), Number(mo) - 1, Number(d), Number(hh), Number(mi), Number(ss)).getTime() + fracMs;
        cur = { from: dir === '>' ? 'a' : 'b', at, hex: [] };
        continue;
      }
      if (line === '--') {
        flush();
        continue;
      }
      const hex = /^((?: [0-9a-f]{2})+)/.exec(line);
      if (cur && hex) cur.hex.push(hex[1]!.replace(/ /g, ''));
    }
  });
}
