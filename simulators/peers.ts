// Where the independent peers are: implementations of our protocols that nobody on the team wrote
// (open62541 and bacnet-stack builds, with their sources and build notes), which every developer
// and CI have at ../shared/peers. Tests and benchmarks run them; nothing of them enters the repo.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild } from './stop-child.js';

/** The checkout's root, from here (simulators/ in the sources, dist/simulators/ when built). */
const repo = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
})();

/** The folder with the peers' binaries: $EDGEFERRY_PEERS/bin, or shared/peers/bin beside the checkout or above it. */
export function peersBin(): string {
  const tried = [process.env.EDGEFERRY_PEERS, join(repo, '../shared/peers'), join(repo, '../../shared/peers'), '/work/shared/peers']
    .filter((p): p is string => !!p)
    .map((p) => resolve(p));
  for (const p of tried) if (existsSync(join(p, 'bin', 'ref_server')) && existsSync(join(p, 'bin', 'bacserv'))) return join(p, 'bin');
  throw new Error(`the independent peers (shared/peers/bin/ref_server, bacserv, …) are not at ${tried.join(', ')}; set EDGEFERRY_PEERS to their folder`);
}

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

/** A server certificate for open62541 (PEM, and DER certificate and key as it wants them). */
export function open62541Certificate(dir: string): { pem: string; cert: string; key: string } {
  // node-opcua leaves OPENSSL_CONF set to "undefined" in this process; openssl must not read it.
  const { OPENSSL_CONF: _, ...env } = process.env;
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', env });
  // The server's certificate; open62541 1.4 wants this application URI in it.
  const pem = join(dir, 'server.pem');
  const keyPem = join(dir, 'server.key');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '30',
    '-subj',
    '/CN=open62541-peer',
    '-keyout',
    keyPem,
    '-out',
    pem,
    '-addext',
    'subjectAltName=URI:urn:open62541.server.application,DNS:localhost,IP:127.0.0.1',
    '-addext',
    'keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment',
    '-addext',
    'extendedKeyUsage=serverAuth,clientAuth',
  ]);
  const cert = join(dir, 'server_cert.der');
  const key = join(dir, 'server_key.der');
  openssl(['x509', '-in', pem, '-outform', 'der', '-out', cert]);
  openssl(['rsa', '-in', keyPem, '-outform', 'der', '-out', key]);
  return { pem, cert, key };
}
