// Modbus TCP framing (drivers/modbus/tcp-link.ts) against a device scripted byte by byte on a real
// socket: answers split across TCP segments or packed together, a late answer to a request that
// timed out, and frames that are not what was asked for.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusTcpLink } from '../../drivers/modbus/tcp-link.js';
import { BadFrameError, TimeoutError } from '../../src/errors.js';

const log = pino({ level: 'silent' });

interface Request {
  tid: number;
  unit: number;
  fc: number;
  start: number;
  qty: number;
}

/** A read answer with registers start, start+1, … as values (what the test expects back). */
function answer(r: Request, over: Partial<{ tid: number; unit: number; fc: number; protocol: number; bytes: number }> = {}): Buffer {
  const bytes = over.bytes ?? r.qty * 2;
  const f = Buffer.alloc(9 + r.qty * 2);
  f.writeUInt16BE(over.tid ?? r.tid, 0);
  f.writeUInt16BE(over.protocol ?? 0, 2);
  f.writeUInt16BE(3 + r.qty * 2, 4);
  f[6] = over.unit ?? r.unit;
  f[7] = over.fc ?? r.fc;
  f[8] = bytes;
  for (let i = 0; i < r.qty; i++) f.writeUInt16BE(r.start + i, 9 + i * 2);
  return f;
}

describe('Modbus TCP framing', () => {
  let server: Server | undefined;
  let link: ModbusTcpLink | undefined;
  afterEach(async () => {
    await link?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = link = undefined;
  });

  /** A device that hands each request to `on`; returns the open link and the reasons it was lost. */
  async function device(on: (r: Request, s: Socket) => void) {
    server = createServer((s) => {
      let rx = Buffer.alloc(0);
      s.on('data', (chunk) => {
        rx = Buffer.concat([rx, chunk]);
        while (rx.length >= 12) {
          on({ tid: rx.readUInt16BE(0), unit: rx[6]!, fc: rx[7]!, start: rx.readUInt16BE(8), qty: rx.readUInt16BE(10) }, s);
          rx = rx.subarray(12);
        }
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    link = new ModbusTcpLink({ host: '127.0.0.1', port, timeout_ms: 1000, keepalive_s: 10 }, log);
    const lost: string[] = [];
    await link.open(AbortSignal.timeout(5000), (why) => lost.push(why));
    return { link, lost };
  }
  const read = (l: ModbusTcpLink, start: number, qty: number, timeoutMs = 1000) => l.read(1, 'holding', start, qty, timeoutMs, new AbortController().signal);

  it('takes an answer split across segments, and two answers in one segment', async () => {
    const held: Buffer[] = [];
    const { link } = await device((r, s) => {
      const f = answer(r);
      if (r.start === 10) {
        // Three segments: inside the header, inside the data, the rest.
        s.write(f.subarray(0, 5));
        setTimeout(() => s.write(f.subarray(5, 12)), 20);
        setTimeout(() => s.write(f.subarray(12)), 40);
      } else if (r.start === 20) {
        held.push(f); // answered together with the next one
      } else {
        s.write(Buffer.concat([...held.splice(0), f]));
      }
    });
    expect(await read(link, 10, 8)).toEqual({ words: [10, 11, 12, 13, 14, 15, 16, 17] });
    // The first of the packed pair answers a request that timed out: dropped by its transaction id.
    await expect(read(link, 20, 2, 100)).rejects.toBeInstanceOf(TimeoutError);
    expect(await read(link, 30, 3)).toEqual({ words: [30, 31, 32] });
  });

  it('drops a late answer to a timed-out request instead of taking it for the next one', async () => {
    const { link } = await device((r, s) => {
      const delay = r.start === 1 ? 200 : 0;
      setTimeout(() => s.write(answer(r)), delay);
    });
    await expect(read(link, 1, 2, 50)).rejects.toBeInstanceOf(TimeoutError);
    await new Promise((r) => setTimeout(r, 250)); // the late answer arrives meanwhile
    expect(await read(link, 5, 2)).toEqual({ words: [5, 6] });
  });

  it('takes an answer that arrived while the event loop was held past the timeout (a starved CPU), instead of calling it late', async () => {
    // The device runs on its own thread and event loop, so it answers while this one is held; it
    // raises a flag once its answer is written. One register: 0x002a.
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { createServer } = require('node:net');
       const { parentPort, workerData } = require('node:worker_threads');
       const server = createServer((s) => s.on('data', (q) => {
         const a = Buffer.from([q[0], q[1], 0, 0, 0, 5, q[6], 3, 2, 0, 42]);
         s.write(a, () => { Atomics.store(workerData, 0, 1); Atomics.notify(workerData, 0); });
       }));
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
      { eval: true, workerData: flag },
    );
    try {
      const [port] = (await once(worker, 'message')) as [number];
      link = new ModbusTcpLink({ host: '127.0.0.1', port, timeout_ms: 1000, keepalive_s: 10 }, log);
      await link.open(AbortSignal.timeout(5000), () => undefined);
      const started = performance.now();
      const answer = read(link, 0, 1, 20);
      // Held until the answer is on its way and the 20 ms timeout is well past.
      Atomics.wait(flag, 0, 0, 10_000);
      while (performance.now() - started < 100);
      expect(Atomics.load(flag, 0)).toBe(1);
      expect(await answer).toEqual({ words: [42] });
    } finally {
      await link?.close();
      await worker.terminate();
    }
  });

  it('refuses an answer from another unit, with another function code or a wrong byte count, and goes on', async () => {
    const { link } = await device((r, s) => {
      if (r.start === 1) s.write(answer(r, { unit: 7 }));
      else if (r.start === 2) s.write(answer(r, { fc: 4 }));
      else if (r.start === 3) s.write(answer(r, { bytes: r.qty * 2 - 2 }));
      else s.write(answer(r));
    });
    await expect(read(link, 1, 2)).rejects.toThrow(BadFrameError);
    await expect(read(link, 2, 2)).rejects.toThrow(/function code 4/);
    await expect(read(link, 3, 2)).rejects.toThrow(/data length 2, expected 4/);
    expect(await read(link, 4, 1)).toEqual({ words: [4] });
  });

  it('gives exceptions as data', async () => {
    const { link } = await device((r, s) => {
      const f = Buffer.from([0, 0, 0, 0, 0, 3, r.unit, r.fc | 0x80, 2]);
      f.writeUInt16BE(r.tid, 0);
      s.write(f);
    });
    expect(await read(link, 0, 1)).toEqual({ exception: { code: 2, name: 'Illegal Data Address' } });
  });

  it('drops the connection on bytes that are not Modbus TCP, and says the link was lost', async () => {
    const { link, lost } = await device((r, s) => s.write(answer(r, { protocol: 0x4854 })));
    await expect(read(link, 0, 1)).rejects.toThrow(/not a Modbus TCP frame/);
    for (const until = Date.now() + 2000; !lost.length && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
    expect(lost).toEqual(['connection closed']);
  });
});
