// Error boundaries report here. A component is either fine or degraded with a reason (the buffer on a
// full disk, a poll group that throws, the inference workers, …); the gateway is "up" while none is
// degraded. Each change is one log line, one gauge change and one update of the retained gateway
// status — never one per poll. Faults (exceptions caught at a boundary) are counted by component
// and logged at most once a minute per component, with how many were not logged.
import type { Logger } from 'pino';
import type { Metrics } from '../health/metrics.js';

export interface HealthState {
  health: 'up' | 'degraded';
  /** Reason per degraded component. */
  degraded: Record<string, string>;
}

const LOG_EVERY_MS = 60_000;

export class GatewayHealth {
  private readonly reasons = new Map<string, string>();
  private readonly lastLogged = new Map<string, { at: number; unlogged: number }>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly onChange: (state: HealthState) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): HealthState {
    return { health: this.reasons.size ? 'degraded' : 'up', degraded: Object.fromEntries(this.reasons) };
  }

  /** Marks `component` degraded with `reason`, or fine again with undefined. Safe to call often. */
  set(component: string, reason: string | undefined): void {
    if (reason === undefined) {
      if (!this.reasons.delete(component)) return;
      this.metrics.degraded.set({ component }, 0);
      this.log.info({ component, health: this.state.health }, `${component} recovered`);
    } else {
      if (this.reasons.get(component) === reason) return;
      const was = this.reasons.has(component);
      this.reasons.set(component, reason);
      this.metrics.degraded.set({ component }, 1);
      // A changed reason (e.g. a growing count) is an update, not a new state: debug only.
      if (was) this.log.debug({ component, reason }, `${component} still degraded`);
      else this.log.warn({ component, reason }, `${component} degraded`);
    }
    this.onChange(this.state);
  }

  /** Forgets every component whose name starts with `prefix` (a device left the configuration). */
  forget(prefix: string): void {
    for (const c of [...this.reasons.keys()]) if (c.startsWith(prefix)) this.set(c, undefined);
  }

  /** An exception caught at a boundary: counted, and logged with its code unless logged just now. */
  fault(component: string, err: unknown, fields: Record<string, unknown> = {}): void {
    this.metrics.faults.inc({ component });
    const t = this.now();
    const last = this.lastLogged.get(component);
    if (last && t - last.at < LOG_EVERY_MS) {
      last.unlogged++;
      return;
    }
    this.lastLogged.set(component, { at: t, unlogged: 0 });
    const e = err as { message?: string; code?: unknown; stack?: string };
    this.log.error(
      { component, ...fields, err: { message: e?.message ?? String(err), code: e?.code, stack: e?.stack }, not_logged_since_last: last?.unlogged ?? 0 },
      `fault in ${component}; carrying on`,
    );
  }
}
