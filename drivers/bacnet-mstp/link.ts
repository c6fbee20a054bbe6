// An MS/TP link: one RS485 port, the gateway's master node on it, and every BACnet device behind
// it. The link runner opens and closes it and sends one request at a time; this file matches
// answers to requests by (MAC, invoke id) and turns silence into TimeoutError.
import type { Logger } from 'pino';
import { withDeadline } from '../../src/core/deadline.js';
import type { Link } from '../../src/core/link.js';
import { NotConnectedError, TimeoutError } from '../../src/errors.js';
import { decode, encodeReject, encodeWhoIs, type Decoded } from './bacnet.js';
import { MstpNode } from './node.js';
import { openMstpSerial, type MstpSerial } from './port.js';
import type { MstpConnectionConfig } from './schema.js';

type Answer = Extract<Decoded, { kind: 'rp-ack' | 'rpm-ack' | 'error' | 'reject' | 'abort' }>;

interface Pending {
  dest: number;
  resolve: (d: Answer) => void;
  reject: (e: Error) => void;
}

export class MstpLink implements Link {
  readonly kind = 'bus' as const;
  readonly endpoint: string;
  private serial: MstpSerial | undefined;
  private node: MstpNode | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly iAmWaiters = new Map<number, ((instance: number) => void)[]>();
  private invokeId = Math.floor(Math.random() * 256);

  constructor(
    private readonly c: MstpConnectionConfig,
    private readonly log: Logger,
  ) {
    this.endpoint = `mstp:${c.port}@${c.baud_rate}`;
  }

  /** The node, for counters and timing figures (tests, bench). */
  get mstp(): MstpNode | undefined {
    return this.node;
  }

  async open(_signal: AbortSignal, onLost: (reason: string) => void): Promise<void> {
    await this.close();
    const node = new MstpNode(
      { address: this.c.station, maxMaster: this.c.max_master, maxInfoFrames: this.c.max_info_frames, baudRate: this.c.baud_rate, usageTimeoutMs: this.c.usage_timeout_ms },
      { write: (f) => this.serial?.write(f) },
    );
    node.onData = (source, npdu, reply) => this.onData(source, npdu, reply);
    node.on('reply-timeout', (dest) => this.failAll(dest, new TimeoutError(`${this.endpoint}: MAC ${dest} did not begin to reply within Treply_timeout (255 ms)`)));
    node.on('successor', (ns, sole) => this.log.debug({ next_station: ns, sole_master: sole }, 'MS/TP successor'));
    this.serial = await openMstpSerial(
      this.c.port,
      this.c.baud_rate,
      (chunk) => node.receive(chunk),
      (reason) => {
        this.shutdown(new NotConnectedError(`${this.endpoint}: ${reason}`));
        onLost(reason);
      },
    );
    this.node = node;
    node.start();
  }

  private shutdown(err: Error): void {
    this.node?.stop();
    this.node = undefined;
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      p.reject(err);
    }
  }

  async close(): Promise<void> {
    this.shutdown(new NotConnectedError(`${this.endpoint}: closed`));
    const s = this.serial;
    this.serial = undefined;
    await s?.close();
  }

  private failAll(dest: number, err: Error): void {
    for (const [key, p] of this.pending) {
      if (p.dest !== dest) continue;
      this.pending.delete(key);
      p.reject(err);
    }
  }

  private onData(source: number, npdu: Buffer, reply: ((npdu: Buffer) => void) | undefined): void {
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
    if (reply) {
      // The gateway is a client only: refuse services asked of it at once rather than let the
      // asker wait for its APDU timeout.
      if ('invokeId' in d) reply(encodeReject(d.invokeId, 9 /* unrecognized-service */));
      return;
    }
    if (d.kind === 'rp-ack' || d.kind === 'rpm-ack' || d.kind === 'error' || d.kind === 'reject' || d.kind === 'abort') {
      const key = `${source}:${d.invokeId}`;
      const p = this.pending.get(key);
      if (!p) return; // a late answer to a request we gave up on
      this.pending.delete(key);
      p.resolve(d);
    }
  }

  /** Sends a confirmed request to `dest` and waits for its answer (ack, error, reject or abort). */
  request(dest: number, build: (invokeId: number) => Buffer, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
    const node = this.node;
    if (!node) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    let id = this.invokeId;
    for (let i = 0; i < 256 && this.pending.has(`${dest}:${id}`); i++) id = (id + 1) & 0xff;
    this.invokeId = (id + 1) & 0xff;
    const key = `${dest}:${id}`;
    const npdu = build(id);
    const answer = new Promise<Answer>((resolve, reject) => this.pending.set(key, { dest, resolve, reject }));
    node.send(dest, npdu, true);
    return withDeadline(answer, timeoutMs, () => new TimeoutError(`${this.endpoint}: no answer from MAC ${dest} within ${timeoutMs} ms`), signal).finally(() => {
      // Answered, timed out or given up: forget it, and take it back if it never went out.
      this.pending.delete(key);
      node.cancel(dest, npdu);
    });
  }

  /** Who-Is to one MAC (or every node); resolves with the device instance from its I-Am. */
  whoIs(dest: number, timeoutMs: number, signal: AbortSignal): Promise<number> {
    const node = this.node;
    if (!node) return Promise.reject(new NotConnectedError(`${this.endpoint}: not open`));
    let waiter!: (instance: number) => void;
    const iAm = new Promise<number>((resolve) => (waiter = resolve));
    this.iAmWaiters.set(dest, [...(this.iAmWaiters.get(dest) ?? []), waiter]);
    node.send(dest, encodeWhoIs(), false);
    return withDeadline(iAm, timeoutMs, () => new TimeoutError(`${this.endpoint}: no I-Am from MAC ${dest} within ${timeoutMs} ms`), signal).finally(() => {
      const list = this.iAmWaiters.get(dest)?.filter((w) => w !== waiter) ?? [];
      if (list.length) this.iAmWaiters.set(dest, list);
      else this.iAmWaiters.delete(dest);
    });
  }
}
