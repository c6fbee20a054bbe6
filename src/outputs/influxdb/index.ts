// The InfluxDB output: rows → line protocol (line-protocol.ts) → POST /write (api v1) or
// /api/v2/write (api v2), gzip, TLS verified by default, keep-alive, each batch acknowledged in the
// buffer only after the server's 204. 400/422 (the data: a field type conflict, a bad line) is
// the data's fault: the runner narrows it down to the row and dead-letters it with the server's
// message. Everything else — 401/403/404 (credentials, database), 429, 5xx, a timeout, a refused
// connection — is retried with backoff and the output reported down with the reason; the rows
// wait in the buffer. Credentials are read from files at start and never logged.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { constants as zlibConstants, gzip as gzipCb } from 'node:zlib';
import type { BufferedRow } from '../../buffer/rows.js';
import { GatewayError } from '../../errors.js';
import { BatchOutput, Refused, type BatchWriter } from '../batch-output.js';
import { outputKind, type OutputContext } from '../types.js';
import { linesOf, type LineFormat } from './line-protocol.js';
import { InfluxDbSchema, type InfluxDbConfig } from './schema.js';

const gzip = promisify(gzipCb);
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/** A file named at outputs.influxdb.<key>, read at start: an unreadable one is an error naming the key and the path. */
function readNamed(baseDir: string, file: string, key: string): Buffer {
  const p = resolve(baseDir, file);
  try {
    return readFileSync(p);
  } catch (err) {
    const code = key.startsWith('tls.') ? 'GW_ERR_TLS_FILE' : 'GW_ERR_OUTPUT';
    throw new GatewayError(code, `outputs.influxdb.${key}: cannot read "${p}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const readSecret = (baseDir: string, file: string, key: string): string =>
  readNamed(baseDir, file, key)
    .toString('utf8')
    .replace(/\r?\n$/, '');

/** The write URL and headers of a config; throws naming the missing key. */
export function writeTarget(c: InfluxDbConfig, baseDir: string): { url: URL; headers: Record<string, string> } {
  const url = new URL(c.api === 'v1' ? '/write' : '/api/v2/write', c.url);
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
  const need = (v: string | undefined, key: string) => {
    if (!v) throw new GatewayError('GW_ERR_OUTPUT', `outputs.influxdb: api ${c.api} needs ${key}`);
    return v;
  };
  if (c.api === 'v1') {
    url.searchParams.set('db', need(c.database, 'database'));
    if (c.retention_policy) url.searchParams.set('rp', c.retention_policy);
    if (c.username) {
      const pw = c.password_file ? readSecret(baseDir, c.password_file, 'password_file') : '';
      headers.Authorization = `Basic ${Buffer.from(`${c.username}:${pw}`).toString('base64')}`;
    }
  } else {
    url.searchParams.set('org', need(c.org, 'org'));
    url.searchParams.set('bucket', need(c.bucket, 'bucket'));
  }
  if (c.token_file) headers.Authorization = `Token ${readSecret(baseDir, c.token_file, 'token_file')}`;
  url.searchParams.set('precision', 'ms');
  if (c.gzip) headers['Content-Encoding'] = 'gzip';
  return { url, headers };
}

class InfluxWriter implements BatchWriter {
  readonly target: string;
  private readonly agent: http.Agent;
  private readonly format: LineFormat;

  constructor(
    private readonly c: InfluxDbConfig,
    private readonly url: URL,
    private readonly headers: Record<string, string>,
    ctx: OutputContext,
  ) {
    this.target = `${url.origin}${url.pathname}`;
    this.format = { measurement: c.measurement, ...ctx.identity };
    const tls = c.tls;
    const file = (f: string | undefined, key: string) => (f ? readNamed(ctx.baseDir, f, `tls.${key}`) : undefined);
    this.agent =
      url.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            maxSockets: 1,
            ca: file(tls.ca, 'ca'),
            cert: file(tls.cert, 'cert'),
            key: file(tls.key, 'key'),
            rejectUnauthorized: tls.verify_server,
            servername: tls.server_name,
          })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
    if (url.protocol === 'https:' && !tls.verify_server)
      ctx.log.warn({ output: 'influxdb', url: url.origin }, 'outputs.influxdb.tls.verify_server is off: the server is not authenticated');
    if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname))
      ctx.log.warn(
        { output: 'influxdb', url: url.origin },
        'outputs.influxdb.url is plain http to another host (allow_plaintext): data and credentials travel unencrypted',
      );
  }

  async write(rows: readonly BufferedRow[], signal: AbortSignal): Promise<void> {
    const text = linesOf(this.format, rows);
    if (!text) return;
    // The fastest level: line protocol shrinks about 8× even so, for a fraction of the CPU of the default.
    const body = this.c.gzip ? await gzip(text, { level: zlibConstants.Z_BEST_SPEED }) : Buffer.from(text);
    const { status, answer } = await this.post(body, signal);
    if (status >= 200 && status < 300) return;
    const why = `HTTP ${status}${answer ? `: ${answer}` : ''}`;
    // The data's fault: a bad line, a field of another type than before. Narrowed down and dead-lettered.
    if (status === 400 || status === 422) throw new Refused(why);
    // Too large: halves are written (a single row too large is dead-lettered).
    if (status === 413) throw new Refused(why);
    throw new Error(why);
  }

  private post(body: Buffer, signal: AbortSignal): Promise<{ status: number; answer: string }> {
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise((ok, fail) => {
      const req = mod.request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { ...this.headers, 'Content-Length': String(body.length) }, timeout: this.c.timeout_ms, signal },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < 4096) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => ok({ status: res.statusCode ?? 0, answer: errorText(Buffer.concat(chunks).toString('utf8')) }));
          res.on('error', fail);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.c.timeout_ms} ms`)));
      req.on('error', fail);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** InfluxDB answers {"error":"…"} (v1) or {"code":…,"message":"…"} (v2); shown short. */
function errorText(s: string): string {
  try {
    const j = JSON.parse(s) as { error?: string; message?: string };
    s = j.error ?? j.message ?? s;
  } catch {
    /* not JSON: the text itself */
  }
  return s.trim().slice(0, 300);
}

export const influxdbOutput = outputKind({
  key: 'influxdb',
  schema: InfluxDbSchema,
  enabled: (c) => c.enabled,
  check(c) {
    const out: { path: string[]; message: string }[] = [];
    if (c.api === 'v1' && !c.database) out.push({ path: ['database'], message: 'expected database with api: v1' });
    if (c.api === 'v2' && !c.org) out.push({ path: ['org'], message: 'expected org with api: v2' });
    if (c.api === 'v2' && !c.bucket) out.push({ path: ['bucket'], message: 'expected bucket with api: v2' });
    const url = URL.canParse(c.url) ? new URL(c.url) : undefined;
    if (url?.protocol === 'http:' && !LOOPBACK.test(url.hostname) && !c.allow_plaintext)
      out.push({
        path: ['url'],
        message: `expected an https:// URL (TLS) for another host, got "${c.url}"; set allow_plaintext: true to send unencrypted on purpose`,
      });
    return out;
  },
  create(c, ctx) {
    const { url, headers } = writeTarget(c, ctx.baseDir);
    const writer = new InfluxWriter(c, url, headers, ctx);
    return new BatchOutput('influxdb', 'influx-line-protocol', writer, { batchSize: c.batch_size, flushMs: c.flush_ms, maxBackoffMs: c.max_backoff_ms }, ctx);
  },
});
