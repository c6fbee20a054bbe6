import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';
import { STATUS_HTML, STATUS_JS } from './status-page.js';

/** The page may load its own script and ask its own origin; nothing else. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

export interface HealthSource {
  /** Snapshot for the status page (/status.json). */
  status(): unknown;
  /** Snapshot for /healthz; `ok` false turns the answer into 503. */
  health(): { ok: boolean } & Record<string, unknown>;
  /** Refreshes gauges that are read on demand (buffer depth and age). */
  refreshGauges(): void;
}

/**
 * /healthz (JSON), /metrics (Prometheus text) and a read-only status page (/, /status.json).
 * Meant for loopback (or behind a proxy that adds authentication); it has no auth of its own.
 */
export class HealthServer {
  private server: Server | undefined;
  constructor(
    private readonly metrics: Metrics,
    private readonly source: HealthSource,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (url === '/healthz') {
        let h: ReturnType<HealthSource['health']>;
        try {
          h = this.source.health();
        } catch (err) {
          // The snapshot itself failed (the buffer refused a query): say so, don't take the process down.
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: (err as Error).message }));
          return;
        }
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
      } else if (url === '/' || url === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS }).end(STATUS_HTML);
      } else if (url === '/status.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', ...PAGE_HEADERS }).end(STATUS_JS);
      } else if (url === '/status.json') {
        try {
          res.writeHead(200, { 'content-type': 'application/json', ...PAGE_HEADERS }).end(JSON.stringify(this.source.status()));
        } catch (err) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
        }
      } else if (url === '/metrics') {
        try {
          this.source.refreshGauges();
        } catch {
          /* the gauges keep their last values; the rest of the metrics are still worth serving */
        }
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      } else {
        res.writeHead(404).end();
      }
    });
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
