import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';
import { STATUS_HTML, STATUS_JS } from './status-page.js';

/** The page may load its own script and ask its own origin; nothing else. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/**
 * Each answer (/healthz, /status.json, /metrics) is built at most once per this many ms and shared
 * by every request meanwhile: the buffer's counts and the metrics text cost milliseconds at plant
 * size, and the poll loop shares the event loop with this port.
 */
export const ANSWER_FRESH_MS = 1000;
/** Connections beyond this are closed at once (monitors and a status page need a handful). */
export const MAX_CONNECTIONS = 256;
const MAX_HEADER_BYTES = 8192;

export interface HealthSource {
  /** Snapshot for the status page (/status.json). */
  status(): unknown;
  /** Snapshot for /healthz; `ok` false turns the answer into 503. */
  health(): { ok: boolean } & Record<string, unknown>;
  /** Refreshes gauges that are read on demand (buffer depth and age). */
  refreshGauges(): void;
}

interface Answer {
  code: number;
  headers: Record<string, string>;
  body: Buffer;
}

const json = (code: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  code,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(JSON.stringify(value)),
});

/** An answer built at most once per `ms`; requests meanwhile (or while it is being built) share it. */
class Cached {
  private value: Answer | undefined;
  private at = 0;
  private pending: Promise<Answer> | undefined;

  constructor(
    private readonly ms: number,
    private readonly build: () => Answer | Promise<Answer>,
  ) {}

  get(): Answer | Promise<Answer> {
    if (this.value && Date.now() - this.at < this.ms) return this.value;
    if (this.pending) return this.pending;
    const p = Promise.resolve()
      .then(this.build)
      .then((a) => {
        this.value = a;
        this.at = Date.now();
        return a;
      })
      .finally(() => (this.pending = undefined));
    this.pending = p;
    return p;
  }
}

/**
 * /healthz (JSON), /metrics (Prometheus text) and a read-only status page (/, /status.json).
 * Meant for loopback (or behind a proxy that adds authentication, docs/operations.md); it has no
 * auth of its own. Bounded: answers cached (ANSWER_FRESH_MS), at most MAX_CONNECTIONS, GET only
 * and without a body, small headers, slow clients timed out.
 */
export class HealthServer {
  private server: Server | undefined;
  private readonly answers: Record<'/healthz' | '/status.json' | '/metrics', Cached>;

  constructor(
    private readonly metrics: Metrics,
    private readonly source: HealthSource,
  ) {
    this.answers = {
      '/healthz': new Cached(ANSWER_FRESH_MS, () => {
        try {
          const h = this.source.health();
          return json(h.ok ? 200 : 503, h);
        } catch (err) {
          // The snapshot itself failed (the buffer refused a query): say so, don't take the process down.
          return json(503, { ok: false, error: (err as Error).message });
        }
      }),
      '/status.json': new Cached(ANSWER_FRESH_MS, () => {
        try {
          return json(200, this.source.status(), PAGE_HEADERS);
        } catch (err) {
          return json(503, { error: (err as Error).message });
        }
      }),
      '/metrics': new Cached(ANSWER_FRESH_MS, async (): Promise<Answer> => {
        try {
          this.source.refreshGauges();
        } catch {
          /* the gauges keep their last values; the rest of the metrics are still worth serving */
        }
        try {
          const text = await this.metrics.registry.metrics();
          return { code: 200, headers: { 'content-type': this.metrics.registry.contentType }, body: Buffer.from(text) };
        } catch (err) {
          return { code: 500, headers: {}, body: Buffer.from((err as Error).message) };
        }
      }),
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0]!;
    // Nothing here takes a body: a request with one is refused without reading it, and its connection closed.
    const body = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (req.method !== 'GET' || body) {
      res.shouldKeepAlive = false;
      res.writeHead(body ? 413 : 405, { connection: 'close' }).end();
      return;
    }
    const send = (a: Answer) => res.writeHead(a.code, a.headers).end(a.body);
    if (url === '/' || url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS }).end(STATUS_HTML);
    } else if (url === '/status.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', ...PAGE_HEADERS }).end(STATUS_JS);
    } else if (url === '/healthz' || url === '/status.json' || url === '/metrics') {
      const a = this.answers[url].get();
      if ('then' in a) a.then(send, (err: Error) => res.writeHead(500).end(err.message));
      else send(a);
    } else {
      res.writeHead(404).end();
    }
  }

  async listen(host: string, port: number): Promise<number> {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
