import { createServer } from 'node:net';

/**
 * A loopback port free right now, for servers that cannot listen on port 0 themselves (mosquitto,
 * node-opcua). Another process could take it before they bind; callers retry on failure.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
