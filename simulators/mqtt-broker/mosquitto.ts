// A real mosquitto (Debian package) on loopback with mutual TLS, for integration tests and
// benchmarks. It can be stopped and started again on the same port (broker outages), keep
// sessions across restarts (persistence), and apply an ACL.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, type KeyPair } from '../../src/tls/certs.js';
import { freePort } from '../free-port.js';
import { stopChild } from '../stop-child.js';
import type { TestBroker } from './other-brokers.js';

export interface MosquittoOptions {
  /** Keep sessions and queued messages across restarts. */
  persistence?: boolean;
  /**
   * No limit on messages queued for, or in flight to, a subscriber (benchmarks: a subscriber that
   * lags for a moment must not make the broker drop what the gateway delivered).
   */
  unboundedQueues?: boolean;
  /** Contents of an acl_file; the client certificate's CN is the user name. */
  acl?: string;
  /**
   * A plaintext listener with anonymous clients instead of mutual TLS (benchmarks that compare
   * with and without TLS; never what a test of the gateway's defaults uses).
   */
  plaintext?: boolean;
}

/** What tests use of any broker (other-brokers.ts), and mosquitto's own. */
export interface Mosquitto extends Omit<TestBroker, 'crash'> {
  /** The user name the client certificate maps to (its CN). */
  user: string;
  /** A client certificate of the same CA for another user (its CN), e.g. a SCADA client under an ACL. */
  issueClient(cn: string): KeyPair;
  /** The client id of every CONNECT the broker accepted, in order, across restarts (from its log). */
  readonly connects: string[];
  /** Every CONNECT accepted and disconnect logged, with when the helper read it from the log (Date.now()). */
  readonly sessions: { id: string; event: 'connect' | 'disconnect'; at: number; line: string }[];
}

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const USER = 'edgeferry-test-gateway';

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-mosq-'));
  // Run as root, mosquitto drops to its own user, which must be able to read the throwaway certs
  // and write its persistence file.
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o777 });
  chmodSync(data, 0o777);
  const ca = createCa('edgeferry test CA');
  const server = ca.issue('localhost', 'server');
  const client = ca.issue(USER, 'client');
  const f = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o644 });
    return p;
  };
  const files = { ca: f('ca.pem', ca.cert), clientCert: f('client.pem', client.cert), clientKey: f('client.key', client.key) };
  f('server.pem', server.cert);
  f('server.key', server.key);
  if (opts.acl) f('acl', opts.acl);

  const conf = (port: number) =>
    f(
      'mosquitto.conf',
      [
        'per_listener_settings false',
        opts.persistence ? `persistence true\npersistence_location ${data}/\nautosave_interval 1\nmax_queued_messages 0` : 'persistence false',
        opts.unboundedQueues ? `max_inflight_messages 0${opts.persistence ? '' : '\nmax_queued_messages 0'}` : '',
        'set_tcp_nodelay true',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        `listener ${port} 127.0.0.1`,
        ...(opts.plaintext
          ? ['allow_anonymous true']
          : [
              `cafile ${join(dir, 'ca.pem')}`,
              `certfile ${join(dir, 'server.pem')}`,
              `keyfile ${join(dir, 'server.key')}`,
              'require_certificate true',
              'use_identity_as_username true',
              'tls_version tlsv1.2',
              'allow_anonymous false',
            ]),
        opts.acl ? `acl_file ${join(dir, 'acl')}` : '',
        '',
      ].join('\n'),
    );

  let proc: ChildProcess | undefined;
  let lastLog = '';
  const sessions: Mosquitto['sessions'] = [];
  const CONNECTED = /New client connected from \S+ as (\S+)/g;
  const DISCONNECTED = /Client (\S+) (?:disconnected|closed its connection|has exceeded timeout|already connected)/;
  const launch = async (port: number): Promise<boolean> => {
    const p = spawn(MOSQUITTO_BIN, ['-c', conf(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let pending = '';
    const ok = await new Promise<boolean>((resolve) => {
      p.stderr.on('data', (d: Buffer) => {
        const text = d.toString();
        if (log.length < 65_536) log += text;
        // Whole lines only: a chunk may end in the middle of one.
        const lines = (pending + text).split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          for (const m of line.matchAll(CONNECTED)) sessions.push({ id: m[1]!, event: 'connect', at: Date.now(), line });
          const d = DISCONNECTED.exec(line);
          if (d) sessions.push({ id: d[1]!, event: 'disconnect', at: Date.now(), line });
        }
        if (/ running/.test(log)) resolve(true);
      });
      p.once('exit', () => resolve(false));
      p.once('error', () => resolve(false));
      // Not running within 20 s (a starved machine once left a start hanging): killed, tried again.
      setTimeout(() => {
        if (!/ running/.test(log)) {
          log += `\n(not running after 20 s: killed)`;
          p.kill('SIGKILL');
          resolve(false);
        }
      }, 20_000).unref();
    });
    lastLog = log;
    if (ok) proc = p;
    return ok;
  };
  const kill = async () => {
    const p = proc;
    proc = undefined;
    await stopChild(p);
  };

  let port = 0;
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    port = await freePort();
    await launch(port);
  }
  if (!proc) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mosquitto (${MOSQUITTO_BIN}) did not start (install it with: apt-get install -y mosquitto); its log:\n${lastLog}`);
  }
  return {
    port,
    url: `${opts.plaintext ? 'mqtt' : 'mqtts'}://127.0.0.1:${port}`,
    dir,
    files,
    client,
    caPem: ca.cert,
    user: USER,
    get connects() {
      return sessions.filter((e) => e.event === 'connect').map((e) => e.id);
    },
    sessions,
    issueClient: (cn) => ca.issue(cn, 'client'),
    kill,
    restart: async () => {
      // The port was just freed by us; a few tries cover a slow socket teardown.
      for (let i = 0; i < 20; i++) {
        if (await launch(port)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`mosquitto did not restart on port ${port}:\n${lastLog}`);
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
