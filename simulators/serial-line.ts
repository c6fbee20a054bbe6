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

export async function ptyPair(dir: string, name = 'tty'): Promise<PtyPair> {
  const a = join(dir, `${name}A`);
  const b = join(dir, `${name}B`);
  let proc: ChildProcess | undefined;
  const launch = async () => {
    const p = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
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
