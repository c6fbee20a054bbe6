// An MS/TP link: one RS485 port, the gateway's master node on it, and every BACnet device behind
// it. The link runner opens and closes it and sends one request at a time; this file matches
// answers to requests by (MAC, invoke id) and turns silence into TimeoutError. The port and the
// node run on a data link thread of their own (datalink.ts) unless `thread` is false.
import type { Logger } from 'pino';
import { withDeadline } from '../../src/core/deadline.js';
import type { Link } from '../../src/core/link.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { decode, encodeReject, encodeWhoIs, type Decoded } from './bacnet.js';
import { openInlineDataLink, openThreadDataLink, type DataLinkHandlers, type MstpDataLink, type MstpStats } from './datalink.js';
import type { MstpConnectionConfig } from './schema.js';

type Answer = Extract<Decoded, { kind: 'rp-ack' | 'rpm-ack' | 'simple-ack' | 'error' | 'reject' | 'abort' }>;

interface Pending {
  dest: number;
  resolve: (d: Answer) => void;
  reject: (e: Error) => void;
  /** Sends the request (again) under a new data link id; how often it was sent again. */
  send: () => void;
  resent: number;
}

/**
 * How often a request whose reply was lost is sent again (BACnet's Number_Of_APDU_Retries
 * default) before it fails. A lost frame costs one turn of the token, not the APDU timeout.
 */
const RESENDS = 3;

export class MstpLink implements Link {
  readonly kind = 'bus' as const;
  readonly endpoint: string;
  private dl: MstpDataLink | undefined;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly iAmWaiters = new Map<number, ((instance: number) => void)[]>();
  private invokeId = Math.floor(Math.random() * 256);

  constructor(
    private readonly c: MstpConnectionConfig,
    private readonly log: Logger,
    /** Run the data link on its own thread (the default); false keeps it on this event loop (bench baseline). */
    private readonly thread = process.env.EDGEFERRY_MSTP_INLINE !== '1',
  ) {
    this.endpoint = `mstp:${c.port}@${c.baud_rate}`;
  }

  /** The node's counters and timer figures (tests, bench); undefined while closed. */
  stats(): Promise<MstpStats | undefined> {
    return this.dl ? this.dl.stats() : Promise.resolve(undefined);
  }

  async open(_signal: AbortSignal, onLost: (reason: string) => void): Promise<void> {
    await this.close();
    const handlers: DataLinkHandlers = {
      onData: (source, npdu, replyId) => this.onData(source, npdu, replyId),
      onNoReply: (dest, why) => this.noReply(dest, why),
      onSuccessor: (ns, sole) => this.log.debug({ next_station: ns, sole_master: sole }, 'MS/TP successor'),
      onLost: (reason) => {
        this.dl = undefined;
        this.rejectAll(new NotConnectedError(`${this.endpoint}: ${reason}`));
        onLost(reason);
      },
    };
    const options = {
      port: this.c.port,
      node: {
        address: this.c.station,
        maxMaster: this.c.max_master,
        maxInfoFrames: this.c.max_info_frames,
        baudRate: this.c.baud_rate,
        usageTimeoutMs: this.c.usage_timeout_ms,
      },
    };
    try {
      this.dl = this.thread ? await openThreadDataLink(options, handlers) : await openInlineDataLink(options, handlers);
    } catch (err) {
      throw err instanceof NotConnectedError ? err : new NotConnectedError(`${this.endpoint}: ${(err as Error).message}`, { cause: err });
    }
  }

  private rejectAll(err: Error): void {
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      p.reject(err);
    }
  }

  async close(): Promise<void> {
    this.rejectAll(new NotConnectedError(`${this.endpoint}: closed`));
    const dl = this.dl;
    this.dl = undefined;
    await dl?.close();
  }

  /** The data link says a request to `dest` will get no reply: send it again, or fail it once it was sent RESENDS times more. */
  private noReply(dest: number, why: string): void {
    for (const [key, p] of this.pending) {
      if (p.dest !== dest) continue;
      if (p.resent < RESENDS) {
        p.resent++;
        p.send();
        continue;
      }
      this.pending.delete(key);
      p.reject(new TimeoutError(`${this.endpoint}: MAC ${dest} did not answer (sent ${RESENDS + 1} times; last: ${why})`));
    }
  }

  private onData(source: number, npdu: Buffer, replyId: number | undefined): void {
    let d: Decoded;
    try {
      d = decode(npdu);
    } catch (err) {
      this.log.debug({ source, err: (err as Error).message }, 'undecodable NPDU');
      return;
    }
    if (d.kind === 'i-am') {
      const waiters = this.iAmWaiters.get(source);
      this.iAmWaiters.delete(source);
      for (const w of waiters ?? []) w(d.deviceInstance);
      return;
    }
    if (replyId !== undefined) {
      // The gateway is a client only: refuse services asked of it at once rather than let the
      // asker wait for its APDU timeout.
      if ('invokeId' in d) this.dl?.reply(replyId, encodeReject(d.invokeId, 9 /* unrecognized-service */));
      return;
    }
    if (d.kind === 'rp-ack' || d.kind === 'rpm-ack' || d.kind === 'simple-ack' || d.kind === 'error' || d.kind === 'reject' || d.kind === 'abort') {
      const key = `${source}:${d.invokeId}`;
      const p = this.pending.get(key);
      if (!p) return; // a late answer to a request we gave up on
      this.pending.delete(key);
      p.resolve(d);
    }
  }

  /** Sends a confirmed request to `dest` and waits for its answer (ack, error, reject or abort). */
  request(dest: number, build: (invokeId: number) => Buffer, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
    const dl = this.dl;
    if (!dl) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    let id = this.invokeId;
    for (let i = 0; i < 256 && this.pending.has(`${dest}:${id}`); i++) id = (id + 1) & 0xff;
    this.invokeId = (id + 1) & 0xff;
    const key = `${dest}:${id}`;
    const npdu = build(id);
    let sendId = 0;
    // The same invoke id each time: a device that did answer an earlier copy answers alike, and
    // only the first answer counts.
    const send = () => {
      sendId = this.nextId++;
      dl.send(sendId, dest, npdu, true);
    };
    const answer = new Promise<Answer>((resolve, reject) => this.pending.set(key, { dest, resolve, reject, send, resent: 0 }));
    send();
    return withDeadline(answer, timeoutMs, () => new TimeoutError(`${this.endpoint}: no answer from MAC ${dest} within ${timeoutMs} ms`), signal).finally(
      () => {
        // Answered, timed out or given up: forget it, and take it back if it never went out.
        this.pending.delete(key);
        dl.cancel(sendId);
      },
    );
  }

  /** Who-Is to one MAC (or every node); resolves with the device instance from its I-Am. */
  whoIs(dest: number, timeoutMs: number, signal: AbortSignal): Promise<number> {
    const dl = this.dl;
    if (!dl) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    let waiter!: (instance: number) => void;
    const iAm = new Promise<number>((resolve) => (waiter = resolve));
    this.iAmWaiters.set(dest, [...(this.iAmWaiters.get(dest) ?? []), waiter]);
    dl.send(this.nextId++, dest, encodeWhoIs(), false);
    return withDeadline(iAm, timeoutMs, () => new TimeoutError(`${this.endpoint}: no I-Am from MAC ${dest} within ${timeoutMs} ms`), signal).finally(() => {
      const list = this.iAmWaiters.get(dest)?.filter((w) => w !== waiter) ?? [];
      if (list.length) this.iAmWaiters.set(dest, list);
      else this.iAmWaiters.delete(dest);
    });
  }
}
