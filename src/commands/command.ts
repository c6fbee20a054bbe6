// A command as it arrives, judged before anything is sent: its body, its deadline and the point's
// write settings (writable, min/max, allowed, the rate limit). Pure except for the rate limiter's
// memory; table-tested in test/unit/commands.test.ts.
import { timingSafeEqual } from 'node:crypto';
import type { CommonPoint } from '../config/schema.js';
import { valueText } from '../core/driver.js';

export interface Command {
  /** The request id from the body, echoed in the result. */
  id?: string | number;
  value: unknown;
  /** Not applied after this (ms since the epoch). */
  deadline: number;
}

export type Judged<T> = { ok: true; value: T } | { ok: false; outcome: 'refused' | 'expired'; reason: string };

const refuse = (reason: string) => ({ ok: false as const, outcome: 'refused' as const, reason });

export interface Arrival {
  payload: Buffer;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** MQTT 5 Message Expiry Interval as the broker delivered it (seconds left), if any. */
  expiryS?: number;
  /** MQTT 5 user property "token", if any. */
  token?: string;
  retained: boolean;
}

export interface CommandRules {
  defaultExpiryMs: number;
  /** The shared secret commands must carry (commands.token_file), if configured. */
  token?: string;
}

/** Reads a command's body and deadline. Does not look at the point. */
export function parseCommand(a: Arrival, rules: CommandRules): Judged<Command> {
  let body: unknown;
  try {
    body = JSON.parse(a.payload.toString('utf8'));
  } catch {
    return refuse('expected a JSON object such as {"value": 21.5, "id": "r1"}, got a body that is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return refuse('expected a JSON object such as {"value": 21.5}, got another JSON value');
  const b = body as Record<string, unknown>;
  const id = b.id;
  const goodId = id === undefined || (typeof id === 'string' && id.length <= 128) || (typeof id === 'number' && Number.isFinite(id));
  if (!goodId) return refuse('expected "id" to be a string of at most 128 characters or a number');
  const withId = (j: { ok: false; outcome: 'refused' | 'expired'; reason: string }) => ({ ...j, id: id });
  if (a.retained) return withId(refuse('a retained message is never applied as a command; publish commands without the retain flag'));
  if (rules.token !== undefined && !sameSecret(a.token ?? (typeof b.token === 'string' ? b.token : undefined), rules.token)) {
    return withId(refuse('missing or wrong token (commands.token_file is set)'));
  }
  if (!('value' in b)) return withId(refuse('expected a "value" field'));
  let deadline = a.at + rules.defaultExpiryMs;
  if (a.expiryS !== undefined) deadline = Math.min(deadline, a.at + a.expiryS * 1000);
  if (b.deadline !== undefined) {
    const d = typeof b.deadline === 'number' ? b.deadline : typeof b.deadline === 'string' ? Date.parse(b.deadline) : NaN;
    if (!Number.isFinite(d)) return withId(refuse('expected "deadline" as ISO 8601 time or milliseconds since the epoch'));
    // An explicit deadline may be later than the default: the sender says how long it stays valid.
    deadline = a.expiryS !== undefined ? Math.min(d, a.at + a.expiryS * 1000) : d;
  }
  if (deadline <= a.at)
    return withId({ ok: false, outcome: 'expired', reason: `deadline ${new Date(deadline).toISOString()} had passed when the command arrived` });
  return { ok: true, value: { id: id, value: b.value, deadline } };
}

function sameSecret(given: string | undefined, want: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The point's own limits on a value its driver already accepted. */
export function judgeValue(point: CommonPoint, value: unknown): Judged<unknown> {
  if (!point.writable) return refuse(`point "${point.name}" is not writable (writable: true in its device map allows writes)`);
  if (point.allowed && !point.allowed.some((a) => a === value)) return refuse(`expected one of ${JSON.stringify(point.allowed)}, got ${valueText(value)}`);
  if (typeof value === 'number') {
    if (point.min !== undefined && value < point.min) return refuse(`expected at least ${point.min} (min), got ${value}`);
    if (point.max !== undefined && value > point.max) return refuse(`expected at most ${point.max} (max), got ${value}`);
  } else if ((point.min !== undefined || point.max !== undefined) && typeof value !== 'bigint' && value !== null) {
    return refuse(`expected a number within min/max, got ${valueText(value)}`);
  }
  return { ok: true, value };
}

/** At most one write per point per write_min_interval_ms. */
export class WriteRateLimit {
  private readonly last = new Map<string, number>();

  /** Takes a turn for the point at `now`, or says how long until the next one. */
  take(key: string, point: CommonPoint, now: number): Judged<true> {
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < point.write_min_interval_ms) {
      return refuse(
        `rate limited: one write per ${point.write_min_interval_ms} ms to this point (write_min_interval_ms), next in ${point.write_min_interval_ms - (now - prev)} ms`,
      );
    }
    this.last.set(key, now);
    return { ok: true, value: true };
  }
}
