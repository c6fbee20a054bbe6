// An in-process MQTT broker (aedes) over TLS, for the demo and tests where a broker in the same
// process is the point. Loopback only by default.
import { Aedes, type AedesOptions } from 'aedes';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';

export interface BrokerOptions {
  port?: number;
  host?: string;
  key: string;
  cert: string;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  clientCa?: string;
  /** aedes's own options: e.g. an authorizePublish that never answers, or that drops the connection. */
  aedes?: AedesOptions;
}

export interface EmbeddedBroker {
  readonly port: number;
  readonly aedes: Aedes;
  stop(): Promise<void>;
}

export async function start(opts: BrokerOptions): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker(opts.aedes);
  const sockets = new Set<Socket>();
  const server: Server = createServer(
    { key: opts.key, cert: opts.cert, ca: opts.clientCa, requestCert: !!opts.clientCa, rejectUnauthorized: !!opts.clientCa, minVersion: 'TLSv1.2' },
    (socket: TLSSocket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      aedes.handle(socket);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    aedes,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}
