// The connection pool's unit: one runner per link (endpoint), owning it alone. It opens the link
// with exponential backoff and full jitter, serialises every request on it (one outstanding at a
// time, devices served round-robin so one chatty device cannot starve the others on a bus),
// probes idle or down devices on a heartbeat, keeps each device's health, and drops and reopens a
// network link that went silent. Drivers only exchange requests on an open link.
import type { Logger } from 'pino';
import { NotConnectedError, TimeoutError } from '../errors.js';
import { DeviceHealth, type HealthSnapshot } from './device-health.js';
import type { Driver } from './driver.js';
import type { Link, LinkSettings } from './link.js';
import { DeviceQueue, type ExecResult, type Job } from './device-queue.js';

export interface LinkHooks {
  /** A device's state changed (or its periodic refresh is due). Must not throw. */
  onStatus(device: string, health: HealthSnapshot): void;
  /** One request finished: rtt in ms when answered, else the failure kind. Must not throw. */
  onExchange(device: string, outcome: { rttMs: number } | { failure: 'timeout' | 'error' | 'link' }): void;
  onReconnect(endpoint: string): void;
}

export type { ExecResult } from './device-queue.js';

interface Member {
  name: string;
  driver: Driver;
  health: DeviceHealth;
  probePending: boolean;
  queue: DeviceQueue;
  /** Its latest exchange on the link timed out (no answer at all). */
  silent: boolean;
  /** Set up again after every open of the link. */
  subscriptions: ((link: Link, signal: AbortSignal) => Promise<void>)[];
  /** Told when the link is lost (the subscriptions died with it). */
  onLinkLost: ((reason: string) => void)[];
}

const STATUS_REFRESH_MS = 60_000;

export class LinkRunner {
  private state: 'connecting' | 'up' | 'down' = 'connecting';
  private readonly members: Member[] = [];
  private rr = 0;
  private running = false;
  private stopped = false;
  private opened = false;
  private attempt = 0;
  private readonly abort = new AbortController();
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastStatusAt = 0;
  private active: Promise<void> = Promise.resolve();
  /** Why the link went down last (the status says the same). */
  private downReason: string | undefined;
  /** Timeouts in a row on the link, whichever device they were for; any answer ends the run. */
  private silentRun = 0;

  constructor(
    readonly link: Link,
    private readonly settings: LinkSettings,
    private readonly hooks: LinkHooks,
    private readonly log: Logger,
  ) {}

  add(name: string, driver: Driver): void {
    this.members.push({
      name,
      driver,
      health: new DeviceHealth(this.link.endpoint, this.settings.failures_before_down),
      probePending: false,
      queue: new DeviceQueue(),
      silent: false,
      subscriptions: [],
      onLinkLost: [],
    });
  }

  /**
   * Registers a subscription of `device`, (re)created on every open of the link; `lost` is called
   * (with the reason) each time the link is lost, so that the device's subscribed points can mark
   * the gap. Call before start().
   */
  subscribe(device: string, setup: (link: Link, signal: AbortSignal) => Promise<void>, lost?: (reason: string) => void): void {
    const m = this.members.find((x) => x.name === device)!;
    m.subscriptions.push(setup);
    if (lost) m.onLinkLost.push(lost);
  }

  health(name: string): HealthSnapshot | undefined {
    return this.members.find((m) => m.name === name)?.health.snapshot();
  }

  /** Requests queued or running; 0 after stop() (tests check nothing is left pending). */
  get pending(): number {
    return this.members.reduce((n, m) => n + m.queue.length, 0) + (this.running ? 1 : 0);
  }

  start(): void {
    for (const m of this.members) this.emit(m, true);
    void this.connect();
    this.heartbeat = setInterval(() => this.tick(), this.settings.probe_interval_ms);
  }

  private emit(m: Member, changed: boolean): void {
    if (!changed) return;
    const s = m.health.snapshot();
    if (s.state === 'up') this.log.info({ device: m.name, endpoint: s.endpoint }, 'device up');
    else if (s.state === 'down' || s.state === 'degraded')
      this.log.warn({ device: m.name, endpoint: s.endpoint, state: s.state, reason: s.reason }, `device ${s.state}`);
    this.hooks.onStatus(m.name, s);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state = 'connecting';
    let lostOnce = false;
    try {
      await this.link.open(this.abort.signal, (reason) => {
        if (lostOnce) return;
        lostOnce = true;
        this.lost(reason);
      });
      if (this.stopped) return void (await this.link.close());
      if (this.opened) {
        for (const m of this.members) m.health.reconnects++;
        this.hooks.onReconnect(this.link.endpoint);
      }
      this.opened = true;
      // The backoff starts over only once a device has answered (see drain()): a server that
      // accepts and then never answers, or resets at once, would otherwise be reopened every few
      // hundred ms forever.
      this.state = 'up';
      this.log.info({ endpoint: this.link.endpoint }, 'link open');
      // A fresh link proves nothing about the devices behind it: probe each now, then recreate
      // the subscriptions, which died with the previous link.
      for (const m of this.members) {
        this.probe(m);
        for (const setup of m.subscriptions) void this.enqueue(m, 'poll', (signal) => setup(this.link, signal));
      }
    } catch (err) {
      if (this.stopped) return;
      this.state = 'down';
      this.downReason = (err as Error).message;
      this.log.debug({ endpoint: this.link.endpoint, attempt: this.attempt, reason: this.downReason }, 'link open failed');
      for (const m of this.members) this.emit(m, m.health.linkDown(this.downReason));
      this.scheduleReconnect();
    }
  }

  /** Why a request cannot go out now: the link is connecting, or down with the reason it went down. */
  private notUpReason(): string {
    if (this.state === 'connecting') return `link connecting${this.downReason ? ` (down: ${this.downReason})` : ''}`;
    return `link down: ${this.downReason ?? 'not open'}`;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    // Exponential backoff with full jitter: devices behind one switch do not retry in step.
    const cap = Math.min(this.settings.backoff_max_ms, this.settings.backoff_min_ms * 2 ** this.attempt++);
    const delay = Math.round(this.settings.backoff_min_ms / 2 + Math.random() * (cap - this.settings.backoff_min_ms / 2));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }

  /** The transport is gone or silent: every device behind it is down until it reopens. */
  private lost(reason: string): void {
    if (this.stopped || this.state !== 'up') return;
    this.state = 'down';
    this.downReason = reason;
    this.log.warn({ endpoint: this.link.endpoint, reason }, 'link lost');
    this.silentRun = 0;
    for (const m of this.members) {
      m.silent = false;
      this.emit(m, m.health.linkDown(reason));
      for (const tell of m.onLinkLost) {
        try {
          tell(reason);
        } catch (err) {
          this.log.error({ device: m.name, err: (err as Error).message }, 'link-lost handler failed');
        }
      }
      // Writes wait for the device's return until their deadline; polls and probes end here.
      m.queue.linkLost(`link down: ${reason}`);
      m.probePending = false;
    }
    void this.link.close().finally(() => this.scheduleReconnect());
  }

  private tick(): void {
    if (this.state !== 'up') return;
    const now = Date.now();
    for (const m of this.members) {
      if (m.health.state === 'down' || now - m.health.lastOkAt >= this.settings.probe_interval_ms) this.probe(m);
    }
    if (now - this.lastStatusAt >= STATUS_REFRESH_MS) {
      this.lastStatusAt = now;
      for (const m of this.members) this.hooks.onStatus(m.name, m.health.snapshot());
    }
  }

  private probe(m: Member): void {
    if (m.probePending) return;
    m.probePending = true;
    void this.enqueue(m, 'probe', (signal) => m.driver.probe(this.link, signal)).finally(() => (m.probePending = false));
  }

  /**
   * Runs one poll of `device` on the link, in its fair turn. Never throws; a device that is down
   * (or a link that is not up) is skipped at once, and the heartbeat's probes bring it back —
   * unless `whenDown`: a backup channel serving critical points tries every poll (each is its
   * own probe), so that it is back on the next poll, not the next heartbeat.
   */
  poll<T>(device: string, fn: (link: Link, signal: AbortSignal) => Promise<T>, whenDown = false): Promise<ExecResult<T>> {
    const m = this.members.find((x) => x.name === device)!;
    if (this.state !== 'up') return Promise.resolve({ ok: false, reason: this.notUpReason() });
    if (m.health.state === 'down' && !whenDown) return Promise.resolve({ ok: false, reason: 'device down' });
    return this.enqueue(m, 'poll', (signal) => fn(this.link, signal)) as Promise<ExecResult<T>>;
  }

  /**
   * Runs a write of `device` ahead of every poll on the link (writes in the order they came). A
   * device that is down, or a link that is not up, keeps it waiting for the device's return; a
   * write not sent by `deadline` is answered expired and never sent.
   */
  write<T>(device: string, deadline: number, fn: (link: Link, signal: AbortSignal) => Promise<T>): Promise<ExecResult<T>> {
    const m = this.members.find((x) => x.name === device)!;
    if (this.stopped) return Promise.resolve({ ok: false, reason: 'stopped' });
    if (deadline <= Date.now()) return Promise.resolve({ ok: false, reason: 'expired before it was sent', expired: true });
    return new Promise((resolve) => {
      const job: Job = { kind: 'write', fn: (signal) => fn(this.link, signal), resolve: resolve as Job['resolve'], deadline };
      const ready = this.state === 'up' && m.health.state !== 'down';
      m.queue.write(job, deadline, ready);
      if (ready && !this.running) this.active = this.drain();
    });
  }

  private enqueue(m: Member, kind: Job['kind'], fn: Job['fn']): Promise<ExecResult<unknown>> {
    if (this.stopped) return Promise.resolve({ ok: false, reason: 'stopped' });
    return new Promise((resolve) => {
      m.queue.push({ kind, fn, resolve });
      if (!this.running) this.active = this.drain();
    });
  }

  private next(): { m: Member; job: Job } | undefined {
    // Writes first, whichever device they are for; then every device in its fair turn.
    for (const m of this.members) if (m.queue.headIsWrite) return { m, job: m.queue.shift()! };
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[(this.rr + i) % this.members.length]!;
      const job = m.queue.shift();
      if (job) {
        this.rr = (this.rr + i + 1) % this.members.length;
        return { m, job };
      }
    }
    return undefined;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let item = this.next(); item; item = this.next()) {
        const { m, job } = item;
        if (this.state !== 'up' || this.stopped) {
          job.resolve({ ok: false, reason: this.stopped ? 'stopped' : this.notUpReason() });
          continue;
        }
        // A write for a device gone down meanwhile waits for it; one past its deadline is never sent.
        if (job.kind === 'write' && !m.queue.sendNow(job, m.health.state === 'down')) continue;
        const ts = Date.now();
        const t0 = performance.now();
        try {
          const value = await job.fn(this.abort.signal);
          const rtt = performance.now() - t0;
          this.attempt = 0;
          this.silentRun = 0;
          m.silent = false;
          this.hooks.onExchange(m.name, { rttMs: rtt });
          this.emit(m, m.health.ok(rtt));
          job.resolve({ ok: true, value, ts });
          m.queue.unpark();
        } catch (err) {
          job.resolve({ ok: false, reason: (err as Error).message, ts });
          this.failed(m, err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private failed(m: Member, err: unknown): void {
    if (this.stopped) return;
    const message = (err as Error).message;
    if (err instanceof NotConnectedError) {
      this.hooks.onExchange(m.name, { failure: 'link' });
      this.lost(message);
      return;
    }
    const kind = err instanceof TimeoutError ? 'timeout' : 'error';
    this.hooks.onExchange(m.name, { failure: kind });
    this.emit(m, m.health.fail(kind, message));
    // An error is an answer of sorts: the path carries octets.
    m.silent = kind === 'timeout';
    this.silentRun = kind === 'timeout' ? this.silentRun + 1 : 0;
    // On a network link, everyone silent means the path is dead (a firewall dropped the session
    // without a reset): drop it and reconnect rather than wait for TCP to notice. Silent means
    // failures_before_down timeouts in a row on the link with every device's latest one among
    // them — not failures_before_down for each device, which on a link shared by N devices would
    // take N times as long, each waiting its turn behind the others' timeouts.
    if (this.link.kind !== 'network') return;
    const everyoneSilent = this.silentRun >= this.settings.failures_before_down && this.members.every((x) => x.silent);
    if (everyoneSilent || this.members.every((x) => x.health.state === 'down')) this.lost(`no device answers: ${message}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    this.retryTimer = this.heartbeat = undefined;
    this.abort.abort();
    for (const m of this.members) m.queue.endAll('stopped');
    await this.active.catch(() => undefined);
    await this.link.close().catch(() => undefined);
  }
}
