// raceSignal: how drivers fail pending requests when a link is lost, without keeping anything
// per request alive on the link's long-lived signal (the Promise.race-with-a-forever-pending-
// promise pattern it replaced kept every result of a session's life in memory).
// withDeadline: a deadline that a starved event loop does not turn into a false timeout.
import { getEventListeners, once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../src/errors.js';
import { raceSignal, withDeadline } from '../../src/core/deadline.js';

describe('raceSignal', () => {
  it('settles with the promise and leaves no listener on the signal', async () => {
    const lost = new AbortController();
    for (let i = 0; i < 1000; i++) expect(await raceSignal(Promise.resolve(i), lost.signal)).toBe(i);
    await expect(raceSignal(Promise.reject(new Error('device said no')), lost.signal)).rejects.toThrow('device said no');
    expect(getEventListeners(lost.signal, 'abort')).toHaveLength(0);
  });

  it('rejects pending calls with the abort reason at once, and new calls too', async () => {
    const lost = new AbortController();
    const pending = raceSignal(new Promise(() => undefined), lost.signal);
    lost.abort(new Error('connection closed'));
    await expect(pending).rejects.toThrow('connection closed');
    await expect(raceSignal(new Promise(() => undefined), lost.signal)).rejects.toThrow('connection closed');
  });
});

/** Holds the event loop, as a starved CPU or a long synchronous step does. */
function hold(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('withDeadline', () => {
  it('a loopback connect that completed while the event loop was held past the deadline is taken, not called a timeout', async () => {
    const server = createServer((s) => s.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    try {
      const connected = withDeadline(once(socket, 'connect'), 20, () => new TimeoutError('connect: no answer after 20 ms'));
      // The kernel completes the handshake at once; the loop sees it only after the 20 ms timer is due.
      hold(200);
      await expect(connected).resolves.toBeDefined();
    } finally {
      socket.destroy();
      server.close();
    }
  });

  it('still times out when nothing arrives, and removes its abort listener', async () => {
    const ac = new AbortController();
    await expect(withDeadline(new Promise(() => undefined), 10, () => new TimeoutError('no answer after 10 ms'), ac.signal)).rejects.toThrow(
      'no answer after 10 ms',
    );
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});
