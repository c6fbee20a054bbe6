// The MS/TP data link — the serial port and the Clause 9 master node — behind one small interface,
// run either on a worker thread of its own (the default) or on the caller's thread.
//
// On its own thread the node's timers and the octets from the line are handled within a
// millisecond or two even while the gateway's main thread is busy (SQLite commits, MQTT, garbage
// collection, a config reload): a token passed to the gateway must be used within Tusage_delay
// (15 ms), and a late node costs the whole line a token retry or a lost token. (Raising the
// thread's priority was measured too, nice −10 against bacnet-stack on a loaded box: it did not
// help — more tokens used late, not fewer — so the thread runs at the process's priority.)
import { NotConnectedError } from '../../src/errors.js';
import { Worker } from 'node:worker_threads';
import { workerScript } from '../../src/core/worker-script.js';
import { MstpNode, type MstpCounters, type MstpNodeOptions } from './node.js';
import { openMstpSerial } from './port.js';
import { openTty } from './tty.js';

export interface MstpStats {
  counters: MstpCounters;
  /** Lateness of the node's timers past their deadlines, ms (the most recent ones). */
  timerLateness: number[];
  soleMaster: boolean;
  nextStation: number;
}

export interface DataLinkHandlers {
  /** An NPDU for us; `replyId` is set when the sender waits for an answer (pass it to reply()). */
  onData(source: number, npdu: Buffer, replyId: number | undefined): void;
  /** A request to `dest` will get no reply (the node's 'no-reply'): resend it or give up. */
  onNoReply(dest: number, why: string): void;
  onSuccessor(next: number, soleMaster: boolean): void;
  /** The port went away (adapter unplugged); the link is closed. */
  onLost(reason: string): void;
}

export interface DataLinkOptions {
  port: string;
  node: MstpNodeOptions;
  /** How the port is opened: the serialport package (main thread only) or the tty directly. */
  opener?: 'serialport' | 'tty';
}

export interface MstpDataLink {
  /** Queues an NPDU for `dest` under `id`; it goes out while we hold the token. */
  send(id: number, dest: number, npdu: Buffer, expectReply: boolean): void;
  /** Takes a queued NPDU back if it has not gone out yet. */
  cancel(id: number): void;
  /** Answers a Data Expecting Reply (see DataLinkHandlers.onData). */
  reply(replyId: number, npdu: Buffer): void;
  stats(): Promise<MstpStats>;
  close(): Promise<void>;
}

/** The serial port and the node on this thread. */
export async function openInlineDataLink(o: DataLinkOptions, h: DataLinkHandlers): Promise<MstpDataLink> {
  let serial: Awaited<ReturnType<typeof openMstpSerial>> | undefined;
  const node = new MstpNode(o.node, { write: (f) => serial?.write(f) });
  const queued = new Map<number, { dest: number; npdu: Buffer }>();
  const replies = new Map<number, (npdu: Buffer) => void>();
  let nextReply = 1;
  node.onData = (source, npdu, reply) => {
    let id: number | undefined;
    if (reply) {
      id = nextReply++;
      replies.set(id, reply);
      // The node sends Reply Postponed on its own if we are slow; forget stale answer slots.
      if (replies.size > 64) replies.delete(replies.keys().next().value!);
    }
    h.onData(source, npdu, id);
  };
  node.on('no-reply', (dest, why) => h.onNoReply(dest, why));
  node.on('successor', (ns, sole) => h.onSuccessor(ns, sole));
  let closed = false;
  serial = await (o.opener === 'tty' ? openTty : openMstpSerial)(
    o.port,
    o.node.baudRate,
    (chunk) => node.receive(chunk),
    (reason) => {
      if (closed) return;
      closed = true;
      node.stop();
      h.onLost(reason);
    },
  );
  node.start();
  return {
    send: (id, dest, npdu, expectReply) => {
      queued.set(id, { dest, npdu });
      if (queued.size > 1024) queued.delete(queued.keys().next().value!);
      node.send(dest, npdu, expectReply);
    },
    cancel: (id) => {
      const q = queued.get(id);
      queued.delete(id);
      if (q) node.cancel(q.dest, q.npdu);
    },
    reply: (replyId, npdu) => {
      const r = replies.get(replyId);
      replies.delete(replyId);
      r?.(npdu);
    },
    stats: async () => ({
      counters: { ...node.counters },
      timerLateness: [...node.timerLateness],
      soleMaster: node.isSoleMaster,
      nextStation: node.nextStation,
    }),
    close: async () => {
      closed = true;
      node.stop();
      await serial?.close();
    },
  };
}

// ── the worker thread ────────────────────────────────────────────────────────────────────────────

/** Messages to the data link thread. */
export type ToThread =
  | { t: 'send'; id: number; dest: number; npdu: Uint8Array; expectReply: boolean }
  | { t: 'cancel'; id: number }
  | { t: 'reply'; id: number; npdu: Uint8Array }
  | { t: 'stats'; req: number }
  | { t: 'close' };

/** Messages from it. */
export type FromThread =
  | { t: 'open' }
  | { t: 'open-failed'; message: string }
  | { t: 'data'; source: number; npdu: Uint8Array; replyId?: number }
  | { t: 'no-reply'; dest: number; why: string }
  | { t: 'successor'; ns: number; sole: boolean }
  | { t: 'lost'; reason: string }
  | { t: 'stats'; req: number; stats: MstpStats }
  | { t: 'closed' };

/** A Buffer over what postMessage delivered (Buffers arrive as plain Uint8Arrays). */
export const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** The serial port and the node on a worker thread of their own. */
export function openThreadDataLink(o: DataLinkOptions, h: DataLinkHandlers): Promise<MstpDataLink> {
  const w = new Worker(workerScript(import.meta.url, 'datalink-worker'), { workerData: { ...o, opener: 'tty' }, name: `mstp ${o.port}` });
  let state: 'opening' | 'open' | 'closing' | 'closed' = 'opening';
  const stats = new Map<number, { res: (s: MstpStats) => void; rej: (e: Error) => void }>();
  let nextReq = 1;
  let closedWaiters: (() => void)[] = [];
  const post = (m: ToThread) => {
    if (state === 'open') w.postMessage(m);
  };
  return new Promise<MstpDataLink>((resolve, reject) => {
    const link: MstpDataLink = {
      send: (id, dest, npdu, expectReply) => post({ t: 'send', id, dest, npdu, expectReply }),
      cancel: (id) => post({ t: 'cancel', id }),
      reply: (id, npdu) => post({ t: 'reply', id, npdu }),
      stats: () =>
        new Promise<MstpStats>((res, rej) => {
          if (state !== 'open') return rej(new NotConnectedError('the MS/TP data link is closed'));
          const req = nextReq++;
          stats.set(req, { res, rej });
          w.postMessage({ t: 'stats', req } satisfies ToThread);
        }),
      close: () =>
        new Promise<void>((res) => {
          if (state === 'closed') return res();
          closedWaiters.push(res);
          if (state === 'closing') return;
          state = 'closing';
          w.postMessage({ t: 'close' } satisfies ToThread);
          // The thread closes the port and ends by itself; terminate only one that hangs.
          const force = setTimeout(() => void w.terminate(), 5000);
          force.unref();
          w.once('exit', () => clearTimeout(force));
        }),
    };
    w.on('message', (m: FromThread) => {
      switch (m.t) {
        case 'open':
          state = 'open';
          return resolve(link);
        case 'open-failed':
          state = 'closing';
          return reject(new Error(m.message));
        case 'data':
          return h.onData(m.source, asBuffer(m.npdu), m.replyId);
        case 'no-reply':
          return h.onNoReply(m.dest, m.why);
        case 'successor':
          return h.onSuccessor(m.ns, m.sole);
        case 'lost':
          if (state === 'open') {
            state = 'closing';
            h.onLost(m.reason);
          }
          return;
        case 'stats':
          stats.get(m.req)?.res(m.stats);
          stats.delete(m.req);
          return;
        case 'closed':
          return;
      }
    });
    w.on('error', (err) => {
      if (state === 'opening') reject(err);
      else if (state === 'open') h.onLost(`the MS/TP data link thread failed: ${err.message}`);
      state = 'closing';
    });
    w.on('exit', (code) => {
      const was = state;
      state = 'closed';
      if (was === 'opening') reject(new NotConnectedError(`the MS/TP data link thread ended (code ${code}) before the port was open`));
      else if (was === 'open') h.onLost(`the MS/TP data link thread ended (code ${code})`);
      for (const r of stats.values()) r.rej(new NotConnectedError('the MS/TP data link is closed'));
      stats.clear();
      const waiters = closedWaiters;
      closedWaiters = [];
      for (const c of waiters) c();
    });
  });
}
