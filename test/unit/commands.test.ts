// Judging a command before anything is sent: its body, its deadline, its token, the point's
// limits and the rate limit; and the command topics.
import { describe, expect, it } from 'vitest';
import { judgeValue, parseCommand, WriteRateLimit, type Arrival } from '../../src/commands/command.js';
import { CommandTopics } from '../../src/commands/command-topics.js';
import type { CommonPoint } from '../../src/config/schema.js';

const AT = Date.parse('2026-11-29T10:00:00Z');
const arrival = (body: unknown, extra: Partial<Arrival> = {}): Arrival => ({
  payload: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  at: AT,
  retained: false,
  ...extra,
});
const rules = { defaultExpiryMs: 10_000 };
const point = (extra: Partial<CommonPoint> = {}): CommonPoint => ({
  name: 'sp',
  report: 'always',
  deadband: 0,
  priority: 'normal',
  writable: true,
  write_min_interval_ms: 1000,
  ...extra,
});

describe('parseCommand', () => {
  it('takes value and id, and a deadline default_expiry_ms after arrival', () => {
    expect(parseCommand(arrival({ value: 21.5, id: 'r1' }), rules)).toEqual({ ok: true, value: { id: 'r1', value: 21.5, deadline: AT + 10_000 } });
  });

  it.each([
    ['not JSON', '{value: 1', /not JSON/],
    ['an array', [1], /another JSON value/],
    ['no value', { id: 'x' }, /"value"/],
    ['a long id', { value: 1, id: 'x'.repeat(129) }, /"id"/],
    ['a bad deadline', { value: 1, deadline: 'tomorrow' }, /ISO 8601/],
  ])('refuses %s', (_what, body, why) => {
    const r = parseCommand(arrival(body), rules);
    expect(r).toMatchObject({ ok: false, outcome: 'refused', reason: expect.stringMatching(why) });
  });

  it('refuses a retained command, keeping its id for the answer', () => {
    expect(parseCommand(arrival({ value: 1, id: 'old' }, { retained: true }), rules)).toMatchObject({
      ok: false,
      id: 'old',
      reason: expect.stringMatching(/retained/),
    });
  });

  it('takes the earliest of MQTT 5 expiry and the body deadline; a deadline already passed is expired', () => {
    expect(parseCommand(arrival({ value: 1 }, { expiryS: 2 }), rules)).toMatchObject({ ok: true, value: { deadline: AT + 2000 } });
    expect(parseCommand(arrival({ value: 1, deadline: AT + 60_000 }), rules)).toMatchObject({ ok: true, value: { deadline: AT + 60_000 } });
    expect(parseCommand(arrival({ value: 1, deadline: new Date(AT + 60_000).toISOString() }, { expiryS: 5 }), rules)).toMatchObject({
      ok: true,
      value: { deadline: AT + 5000 },
    });
    expect(parseCommand(arrival({ value: 1, deadline: AT - 1 }), rules)).toMatchObject({ ok: false, outcome: 'expired' });
  });

  it('with a token configured, wants it as a user property or in the body', () => {
    const r = { ...rules, token: 's3cret' };
    expect(parseCommand(arrival({ value: 1 }), r)).toMatchObject({ ok: false, reason: expect.stringMatching(/token/) });
    expect(parseCommand(arrival({ value: 1, token: 'nope' }), r)).toMatchObject({ ok: false, reason: expect.stringMatching(/token/) });
    expect(parseCommand(arrival({ value: 1, token: 's3cret' }), r)).toMatchObject({ ok: true });
    expect(parseCommand(arrival({ value: 1 }, { token: 's3cret' }), r)).toMatchObject({ ok: true });
  });
});

describe('judgeValue and the rate limit', () => {
  it('applies writable, allowed, min and max', () => {
    expect(judgeValue(point({ writable: false }), 1)).toMatchObject({ ok: false, reason: expect.stringMatching(/not writable/) });
    expect(judgeValue(point({ allowed: [1, 2] }), 3)).toMatchObject({ ok: false, reason: 'expected one of [1,2], got 3' });
    expect(judgeValue(point({ allowed: [true] }), true)).toMatchObject({ ok: true });
    expect(judgeValue(point({ min: 0, max: 10 }), -1)).toMatchObject({ ok: false, reason: 'expected at least 0 (min), got -1' });
    expect(judgeValue(point({ min: 0, max: 10 }), 11)).toMatchObject({ ok: false, reason: 'expected at most 10 (max), got 11' });
    expect(judgeValue(point({ min: 0, max: 10 }), 'five')).toMatchObject({ ok: false });
    // null relinquishes a BACnet command; it has no range
    expect(judgeValue(point({ min: 0, max: 10 }), null)).toMatchObject({ ok: true });
  });

  it('allows one write per write_min_interval_ms per point', () => {
    const rate = new WriteRateLimit();
    const p = point();
    expect(rate.take('plc/sp', p, 0).ok).toBe(true);
    expect(rate.take('plc/sp', p, 400)).toMatchObject({ ok: false, reason: expect.stringMatching(/next in 600 ms/) });
    expect(rate.take('plc/other', p, 400).ok).toBe(true);
    expect(rate.take('plc/sp', p, 1000).ok).toBe(true);
    const free = point({ write_min_interval_ms: 0 });
    expect(rate.take('x', free, 5).ok && rate.take('x', free, 5).ok).toBe(true);
  });
});

describe('CommandTopics', () => {
  it('subscribes with single-level wildcards and reads device and point back', () => {
    const t = new CommandTopics('{site}/{gateway}/{device}/{point}/set', '{site}/{gateway}/{device}/{point}/set/result', { site: 's', gateway: 'g' });
    expect(t.filter).toBe('s/g/+/+/set');
    expect(t.parse('s/g/plc/sp/set')).toEqual({ device: 'plc', point: 'sp' });
    expect(t.parse('s/g/plc/sp/set/result')).toBeUndefined();
    expect(t.parse('s/x/plc/sp/set')).toBeUndefined();
    expect(t.result('plc', 'sp')).toBe('s/g/plc/sp/set/result');
    const other = new CommandTopics('cmd/{gateway}/{point}/{device}', 'res/{device}', { site: 's', gateway: 'g' });
    expect(other.filter).toBe('cmd/g/+/+');
    expect(other.parse('cmd/g/sp/plc')).toEqual({ device: 'plc', point: 'sp' });
  });
});
