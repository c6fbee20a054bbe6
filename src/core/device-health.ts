// A device's link health as data: state with since-when, probe/request round-trip times, error,
// timeout and reconnect counts. Published on the device status topic and as metrics.

export type HealthState = 'connecting' | 'up' | 'degraded' | 'down' | 'disabled';

/** Which channel serves a device with a backup (src/core/failover.ts decides). */
export type Channel = 'primary' | 'backup';

export interface FailoverStatus {
  active: Channel;
  primary: string;
  backup: string;
  backup_state: HealthState;
  switches: number;
  since: number;
}

export interface HealthSnapshot {
  state: HealthState;
  since: number;
  reason?: string;
  endpoint: string;
  rtt_ms: { p50: number | null; p99: number | null };
  errors: number;
  timeouts: number;
  reconnects: number;
  /** The channel samples come through now (with a backup channel, it changes on failover). */
  channel?: string;
  /** Present when the device has a backup channel. */
  failover?: FailoverStatus;
}

const WINDOW = 256;

export class DeviceHealth {
  state: HealthState = 'connecting';
  since = Date.now();
  reason: string | undefined;
  consecutiveFailures = 0;
  errors = 0;
  timeouts = 0;
  reconnects = 0;
  lastOkAt = 0;
  private readonly rtts: number[] = [];
  private rttNext = 0;

  constructor(
    readonly endpoint: string,
    private readonly failuresBeforeDown: number,
  ) {}

  /** Returns true when the state changed, or a down device's cause did (worth a status and a log line). */
  private set(state: HealthState, reason?: string): boolean {
    if (state === this.state && reason === this.reason) return false;
    const changed = state !== this.state;
    const sameCause = cause(reason) === cause(this.reason);
    this.state = state;
    this.reason = reason;
    if (changed) this.since = Date.now();
    // A down device's reason is what an operator acts on (an advice such as "move this
    // certificate"): once the cause changes, so must the status and the log — not at a restart.
    // Texts that differ only in numbers (a connection counter, a station address) are one cause.
    return changed || (state === 'down' && !sameCause);
  }

  ok(rttMs: number): boolean {
    this.consecutiveFailures = 0;
    this.lastOkAt = Date.now();
    if (this.rtts.length < WINDOW) this.rtts.push(rttMs);
    else this.rtts[this.rttNext++ % WINDOW] = rttMs;
    return this.set('up');
  }

  /** A request failed (timeout, bad frame); down after failures_before_down in a row. */
  fail(kind: 'timeout' | 'error', reason: string): boolean {
    if (kind === 'timeout') this.timeouts++;
    else this.errors++;
    this.consecutiveFailures++;
    return this.set(this.consecutiveFailures >= this.failuresBeforeDown ? 'down' : 'degraded', reason);
  }

  /** The link under the device went away. */
  linkDown(reason: string): boolean {
    this.consecutiveFailures = Math.max(this.consecutiveFailures, this.failuresBeforeDown);
    return this.set('down', reason);
  }

  mark(state: HealthState, reason?: string): boolean {
    return this.set(state, reason);
  }

  snapshot(): HealthSnapshot {
    const sorted = [...this.rtts].sort((a, b) => a - b);
    const pick = (p: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 100) / 100 : null);
    return {
      state: this.state,
      since: this.since,
      ...(this.reason ? { reason: this.reason } : {}),
      endpoint: this.endpoint,
      rtt_ms: { p50: pick(0.5), p99: pick(0.99) },
      errors: this.errors,
      timeouts: this.timeouts,
      reconnects: this.reconnects,
    };
  }
}

/** A reason with its numbers blanked: what stays the same from one failed attempt to the next. */
const cause = (reason: string | undefined) => reason?.replace(/\d+/g, '#');
