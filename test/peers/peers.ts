// Running the independent peers: open62541 and bacnet-stack builds in ../shared/peers (found by
// simulators/peers.ts), pymodbus and libmodbus from Debian. Every developer and CI have them; a
// machine without them fails these tests with what to install.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../../simulators/stop-child.js';

const here = dirname(fileURLToPath(import.meta.url));

import { peersBin } from '../../simulators/peers.js';

export { peersBin };

export interface Peer {
  proc: ChildProcess;
  /** The first line that matched `ready`, split on blanks. */
  ready: string[];
  /** Everything it wrote, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a peer and waits until it writes a line matching `ready` (on stdout or stderr); fails
 * with its output if it exits or stays silent for `ms`.
 */
export function startPeer(cmd: string, args: string[], ready: RegExp, opts: { env?: Record<string, string>; stdin?: string; ms?: number } = {}): Promise<Peer> {
  const proc = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const peer = (line: string[]): Peer => ({ proc, ready: line, output: () => out, stop: () => stopChild(proc) });
  return new Promise<Peer>((resolvePeer, reject) => {
    const timer = setTimeout(() => {
      void stopChild(proc);
      reject(new Error(`${cmd} did not get ready within ${opts.ms ?? 10_000} ms:\n${out}`));
    }, opts.ms ?? 10_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
      const line = out.split('\n').find((l) => ready.test(l));
      if (line === undefined) return;
      clearTimeout(timer);
      resolvePeer(peer(line.trim().split(/\s+/)));
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code ?? sig}) before it was ready:\n${out}`));
    });
    proc.stdin.end(opts.stdin ?? '');
  });
}

export const PYTHON = '/usr/bin/python3';
export const PYMODBUS_SERVER = join(here, 'pymodbus_server.py');

/** Compiles the libmodbus server once per test process; returns its path and a cleanup. */
export function buildLibmodbusServer(): { bin: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-libmodbus-'));
  const bin = join(dir, 'libmodbus_server');
  try {
    execFileSync('gcc', ['-O2', '-o', bin, join(here, 'libmodbus_server.c'), '-I/usr/include/modbus', '-lmodbus'], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot build the libmodbus server (apt-get install gcc libc6-dev libmodbus-dev): ${e.stderr?.toString() ?? e.message}`);
  }
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** bacnet-stack's bacserv as device 1234 "refdev", an MS/TP master at MAC 5 (polling up to MAC 10) on `tty` at 38400 baud. */
export function startBacserv(tty: string): Promise<Peer> {
  return startPeer(join(peersBin(), 'bacserv'), ['1234', 'refdev'], /BACnet Device ID: 1234/, {
    env: { BACNET_IFACE: tty, BACNET_MSTP_BAUD: '38400', BACNET_MSTP_MAC: '5', BACNET_MAX_MASTER: '10' },
  });
}
