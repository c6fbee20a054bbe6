// A real InfluxDB server (Debian's influxdb package, 1.6) for tests and benchmarks: loopback only, a port the
// kernel picks, its data in a temporary folder kept across stop()/restart() (same port), and
// optionally HTTPS with a certificate of a throwaway CA. Queried through its own HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { createCa } from '../../src/tls/certs.js';
import { stopChild } from '../stop-child.js';

export const INFLUXD_BIN = process.env.INFLUXD_BIN ?? '/usr/bin/influxd';

export interface InfluxServer {
  url: string;
  port: number;
  /** With tls: the CA file that signed its certificate. */
  caFile?: string;
  caPem?: string;
  /** Runs an InfluxQL statement (GET for SELECT/SHOW, POST otherwise) and returns the parsed answer. */
  query(q: string, db?: string): Promise<InfluxAnswer>;
  /** Every value of one field of one measurement (SELECT field FROM measurement). */
  values(db: string, measurement: string, field: string): Promise<unknown[]>;
  /** Stops the server (SIGTERM), keeping its data. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface InfluxAnswer {
  results?: { series?: { name: string; columns: string[]; values: unknown[][] }[]; error?: string }[];
  error?: string;
}

export async function startInfluxd(opts: { tls?: boolean } = {}): Promise<InfluxServer> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-influx-'));
  let caPem: string | undefined;
  let caFile: string | undefined;
  if (opts.tls) {
    const ca = createCa('edgeferry test influx CA');
    const server = ca.issue('localhost', 'server');
    caPem = ca.cert;
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    writeFileSync(join(dir, 'server.pem'), server.cert + server.key, { mode: 0o600 });
  }
  const conf = (port: number) => {
    const p = join(dir, 'influxdb.conf');
    writeFileSync(
      p,
      [
        'reporting-disabled = true',
        'bind-address = "127.0.0.1:0"',
        '[meta]',
        `  dir = "${dir}/meta"`,
        '[data]',
        `  dir = "${dir}/data"`,
        `  wal-dir = "${dir}/wal"`,
        '  query-log-enabled = false',
        '[http]',
        `  bind-address = "127.0.0.1:${port}"`,
        '  log-enabled = false',
        '  max-row-limit = 0',
        opts.tls ? `  https-enabled = true\n  https-certificate = "${dir}/server.pem"` : '',
        '[monitor]',
        '  store-enabled = false',
        '[subscriber]',
        '  enabled = false',
        '[continuous_queries]',
        '  enabled = false',
        '',
      ].join('\n'),
    );
    return p;
  };
  let proc: ChildProcess | undefined;
  let port = 0;
  const launch = async (want: number): Promise<number> => {
    const p = spawn(INFLUXD_BIN, ['-config', conf(want)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const got = await new Promise<number>((resolve) => {
      const onData = (d: Buffer) => {
        if (log.length < 65_536) log += d.toString();
        const m = /msg="Listening on HTTP" .*addr=127\.0\.0\.1:(\d+)/.exec(log);
        if (m) resolve(Number(m[1]));
      };
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
      p.once('exit', () => resolve(0));
      p.once('error', (err) => {
        log += `${INFLUXD_BIN}: ${err.message} (Debian package influxdb)`;
        resolve(0);
      });
      setTimeout(() => resolve(0), 30_000).unref();
    });
    if (!got) {
      await stopChild(p);
      throw new Error(`influxd did not start:\n${log.slice(-2000)}`);
    }
    proc = p;
    return got;
  };
  port = await launch(0);
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;

  const call = async (q: string, db?: string): Promise<InfluxAnswer> => {
    const u = new URL('/query', url);
    u.searchParams.set('q', q);
    if (db) u.searchParams.set('db', db);
    const method = /^\s*(SELECT|SHOW)/i.test(q) ? 'GET' : 'POST';
    if (!opts.tls) return (await (await fetch(u, { method })).json()) as InfluxAnswer;
    return new Promise((resolve, reject) => {
      const req = request(u, { method, ca: caPem, servername: 'localhost' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(JSON.parse(body) as InfluxAnswer));
      });
      req.on('error', reject);
      req.end();
    });
  };
  return {
    url,
    port,
    caFile,
    caPem,
    query: call,
    async values(db, measurement, field) {
      const a = await call(`SELECT "${field}" FROM "${measurement}"`, db);
      const err = a.error ?? a.results?.[0]?.error;
      if (err) throw new Error(`influx query: ${err}`);
      return (a.results?.[0]?.series?.[0]?.values ?? []).map((v) => v[1]);
    },
    async kill() {
      const p = proc;
      proc = undefined;
      await stopChild(p);
    },
    async restart() {
      await launch(port);
    },
    async stop() {
      const p = proc;
      proc = undefined;
      await stopChild(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
