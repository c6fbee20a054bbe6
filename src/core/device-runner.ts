// Owns one device's link: connects with backoff, serialises reads, and on a link failure closes,
// reports offline and reconnects. The driver never reconnects by itself (DESIGN: the pool alone
// decides); this runner is that pool for a single-link device until channels and heartbeat probes
// arrive (issue 4).
import type { Logger } from 'pino';
import type { Driver, Reading } from './driver.js';
import type { DeviceState, DeviceStatus } from './sample.js';

export interface Backoff {
  minMs: number;
  maxMs: number;
}

export interface RunnerHooks {
  /** Called on every state change (not per poll). Must not throw. */
  onStatus(status: DeviceStatus): void;
}

export type PollOutcome = { kind: 'ok'; readings: Reading[]; ts: number } | { kind: 'skipped'; reason: string };

export class DeviceRunner {
  private state: DeviceState = 'connecting';
  private reason: string | undefined;
  private readonly abort = new AbortController();
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** Reads are serialised: one request on the wire per link at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly driver: Driver,
    private readonly hooks: RunnerHooks,
    private readonly log: Logger,
    private readonly backoff: Backoff,
  ) {}

  get status(): DeviceStatus {
    return { state: this.state, ts: Date.now(), reason: this.reason, endpoint: this.driver.endpoint };
  }

  start(): void {
    this.emit('connecting');
    void this.connect();
  }

  private emit(state: DeviceState, reason?: string): void {
    if (this.state === state && this.reason === reason && state !== 'connecting') return;
    const wasOnline = this.state === 'online';
    this.state = state;
    this.reason = reason;
    if (state === 'online') this.log.info({ endpoint: this.driver.endpoint }, 'device online');
    else if (state === 'offline' && wasOnline) this.log.warn({ endpoint: this.driver.endpoint, reason }, 'device offline');
    this.hooks.onStatus(this.status);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.driver.connect(this.abort.signal);
      if (this.stopped) return void (await this.driver.close());
      this.attempt = 0;
      this.emit('online');
    } catch (err) {
      if (this.stopped) return;
      this.emit('offline', (err as Error).message);
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    // Exponential backoff with ±20 % jitter so many devices behind one switch do not retry in step.
    const base = Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** this.attempt++);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.log.debug({ delay, attempt: this.attempt }, 'reconnect scheduled');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }

  /**
   * Reads a planned group. Called by the scheduler; never throws. While the device is not online
   * the poll is skipped (the status topic already says why).
   */
  poll(plan: unknown): Promise<PollOutcome> {
    const run = async (): Promise<PollOutcome> => {
      if (this.state !== 'online') return { kind: 'skipped', reason: this.state };
      const ts = Date.now();
      try {
        const readings = await this.driver.read(plan, this.abort.signal);
        return { kind: 'ok', readings, ts };
      } catch (err) {
        if (this.stopped) return { kind: 'skipped', reason: 'stopped' };
        // Drivers report device exceptions as bad readings; anything thrown means the link is
        // unusable (or the driver is confused): drop it and start over.
        this.emit('offline', (err as Error).message);
        await this.driver.close().catch(() => undefined);
        this.scheduleReconnect();
        return { kind: 'skipped', reason: 'link lost' };
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.abort.abort();
    await this.queue.catch(() => undefined);
    await this.driver.close().catch(() => undefined);
  }
}
