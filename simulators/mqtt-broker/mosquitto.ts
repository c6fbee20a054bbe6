// A real mosquitto (Debian package) on loopback with mutual TLS, for integration tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, type KeyPair } from '../../src/tls/certs.js';

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  /** Files the gateway and test clients use. */
  files: { ca: string; clientCert: string; clientKey: string };
  client: KeyPair;
  caPem: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export async function startMosquitto(): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-mosq-'));
  // Run as root, mosquitto drops to its own user, which must be able to read the throwaway certs.
  chmodSync(dir, 0o755);
  const ca = createCa('edgeferry test CA');
  const server = ca.issue('localhost', 'server');
  const client = ca.issue('edgeferry-test-gateway', 'client');
  const f = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o644 });
    return p;
  };
  const files = { ca: f('ca.pem', ca.cert), clientCert: f('client.pem', client.cert), clientKey: f('client.key', client.key) };
  f('server.pem', server.cert);
  f('server.key', server.key);

  let lastLog = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const conf = f(
      'mosquitto.conf',
      [
        'per_listener_settings false',
        'persistence false',
        'set_tcp_nodelay true',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        `listener ${port} 127.0.0.1`,
        `cafile ${join(dir, 'ca.pem')}`,
        `certfile ${join(dir, 'server.pem')}`,
        `keyfile ${join(dir, 'server.key')}`,
        'require_certificate true',
        'use_identity_as_username true',
        'tls_version tlsv1.2',
        'allow_anonymous false',
        '',
      ].join('\n'),
    );
    const proc: ChildProcess = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const ok = await new Promise<boolean>((resolve) => {
      proc.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        if (/running/.test(log)) resolve(true);
      });
      proc.once('exit', () => resolve(false));
      proc.once('error', () => resolve(false));
    });
    if (!ok) {
      lastLog = log;
      continue;
    }
    proc.stderr!.resume();
    return {
      port,
      url: `mqtts://127.0.0.1:${port}`,
      dir,
      files,
      client,
      caPem: ca.cert,
      stop: async () => {
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`mosquitto (${MOSQUITTO_BIN}) did not start (install it with: apt-get install -y mosquitto); its log:\n${lastLog}`);
}
