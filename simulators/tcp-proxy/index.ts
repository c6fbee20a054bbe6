// A fault-injecting TCP proxy between the gateway and a device: pass traffic, blackhole it
// silently (sockets stay open, bytes vanish: a firewall dropping an idle session), reset
// connections, refuse new ones (a service that is down), or delay every chunk. For tests and benchmarks.
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export type ProxyMode = { kind: 'pass' } | { kind: 'blackhole' } | { kind: 'refuse' } | { kind: 'delay'; ms: number };

export interface TcpProxy {
  readonly port: number;
  mode(m: ProxyMode): void;
  /** Resets every open connection (RST), as a rebooted NAT or PLC would. */
  reset(): void;
  readonly connections: number;
  stop(): Promise<void>;
}

export async function startProxy(target: { host?: string; port: number }, opts: { port?: number } = {}): Promise<TcpProxy> {
  let mode: ProxyMode = { kind: 'pass' };
  const pairs = new Set<[Socket, Socket]>();
  const timers = new Set<NodeJS.Timeout>();
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (mode.kind === 'blackhole') return;
      if (mode.kind === 'delay') {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!to.destroyed) to.write(chunk);
        }, mode.ms);
        timers.add(t);
      } else to.write(chunk);
    });
  };
  const server: Server = createServer((client) => {
    if (mode.kind === 'refuse') return void client.resetAndDestroy();
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    forward(client, upstream);
    forward(upstream, client);
    upstream.connect(target.port, target.host ?? '127.0.0.1');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    mode: (m) => (mode = m),
    reset: () => {
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.destroy();
      }
    },
    get connections() {
      return pairs.size;
    },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
