// The link runner's writes: ahead of every queued poll, waiting for a device that is down until
// their deadline — then answered expired and never sent — and sent once the device answers again.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Driver } from '../../src/core/driver.js';
import type { Link } from '../../src/core/link.js';
import { LinkRunner, type ExecResult } from '../../src/core/link-runner.js';
import { TimeoutError } from '../../src/errors.js';

const runners: LinkRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
});

const link: Link = { endpoint: 'test://1', kind: 'bus', open: () => Promise.resolve(), close: () => Promise.resolve() };

/** A device whose probe answers while `alive` is true and times out otherwise. */
function device() {
  const d = { alive: true };
  const driver: Driver = {
    plan: (p) => p,
    read: () => Promise.resolve([]),
    probe: () => (d.alive ? Promise.resolve() : Promise.reject(new TimeoutError('no answer'))),
  };
  return { d, driver };
}

function runner(driver: Driver, probeMs = 50) {
  const states: string[] = [];
  const r = new LinkRunner(
    link,
    { probe_interval_ms: probeMs, failures_before_down: 1, backoff_min_ms: 10, backoff_max_ms: 20 },
    { onStatus: (_d, h) => states.push(h.state), onExchange: () => undefined, onReconnect: () => undefined },
    pino({ level: 'silent' }),
  );
  runners.push(r);
  return { r, states };
}

/** A runner whose only device is down (its probes time out). */
async function downRunner() {
  const { d, driver } = device();
  const { r, states } = runner(driver);
  r.add('plc', driver);
  d.alive = false;
  r.start();
  await until(() => states.includes('down'), 'plc down');
  return { d, r, states };
}

const until = async (cond: () => boolean, what: string) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 5));
  }
};

describe('link runner writes', () => {
  it('runs a write ahead of the polls queued before it', async () => {
    const { driver } = device();
    const { r, states } = runner(driver, 10_000);
    r.add('plc', driver);
    r.start();
    await until(() => states.includes('up'), 'plc up');
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    const first = r.poll('plc', async () => {
      await held;
      order.push('poll 1');
    });
    const second = r.poll('plc', () => Promise.resolve(order.push('poll 2')));
    const third = r.poll('plc', () => Promise.resolve(order.push('poll 3')));
    const write = r.write('plc', Date.now() + 5000, () => Promise.resolve(order.push('write')));
    release();
    await Promise.all([first, second, third, write]);
    expect(order).toEqual(['poll 1', 'write', 'poll 2', 'poll 3']);
  });

  it('keeps a write for a device that is down until its deadline, then answers expired without sending it', async () => {
    const { d, r, states } = await downRunner();
    let sent = false;
    const t0 = Date.now();
    const out: ExecResult<unknown> = await r.write('plc', Date.now() + 150, () => Promise.resolve((sent = true)));
    expect(out).toMatchObject({ ok: false, expired: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(sent).toBe(false);
    // Back again: the expired write stays unsent.
    d.alive = true;
    await until(() => states.at(-1) === 'up', 'plc up');
    expect(sent).toBe(false);
    expect(r.pending).toBe(0);
  });

  it('sends a waiting write once the device answers again, if before its deadline', async () => {
    const { d, r } = await downRunner();
    const write = r.write('plc', Date.now() + 10_000, () => Promise.resolve('done'));
    d.alive = true;
    expect(await write).toMatchObject({ ok: true, value: 'done' });
  });

  it('answers an already expired deadline at once, and waiting writes "stopped" on stop', async () => {
    const { d, driver } = device();
    const { r, states } = runner(driver);
    r.add('plc', driver);
    expect(await r.write('plc', Date.now() - 1, () => Promise.resolve())).toMatchObject({ ok: false, expired: true });
    d.alive = false;
    r.start();
    await until(() => states.includes('down'), 'plc down');
    const waiting = r.write('plc', Date.now() + 60_000, () => Promise.resolve());
    await r.stop();
    expect(await waiting).toMatchObject({ ok: false, reason: 'stopped' });
    expect(r.pending).toBe(0);
  });
});
