// The switching rule: down → backup at once; back to the primary only after it stayed up for the
// hold time; any failure during the hold starts it over (no flapping).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HealthSnapshot, HealthState } from '../../src/core/device-health.js';
import { Failover, type Channel } from '../../src/core/failover.js';

const h = (state: HealthState): HealthSnapshot => ({
  state,
  since: Date.now(),
  endpoint: 'tcp://x',
  rtt_ms: { p50: null, p99: null },
  errors: 0,
  timeouts: 0,
  reconnects: 0,
  reason: state === 'down' ? 'timeout' : undefined,
});

describe('failover rule', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('switches to the backup when the primary is down and back after the hold', () => {
    const switches: [Channel, string][] = [];
    const f = new Failover('tcp://x', 'mstp:y', 1000, (to, why) => switches.push([to, why]));
    f.primary(h('up'));
    expect(f.active).toBe('primary');
    f.primary(h('degraded'));
    expect(f.active).toBe('primary');
    f.primary(h('down'));
    expect(f.active).toBe('backup');
    expect(f.endpoint).toBe('mstp:y');
    f.primary(h('up'));
    vi.advanceTimersByTime(999);
    expect(f.active).toBe('backup');
    vi.advanceTimersByTime(1);
    expect(f.active).toBe('primary');
    expect(switches).toEqual([
      ['backup', 'primary down: timeout'],
      ['primary', 'primary up for 1000 ms'],
    ]);
    expect(f.status()).toMatchObject({ active: 'primary', switches: 2 });
  });

  it('does not go back while the primary flaps within the hold', () => {
    const f = new Failover('tcp://x', 'mstp:y', 1000, () => undefined);
    f.primary(h('down'));
    for (let i = 0; i < 5; i++) {
      f.primary(h('up'));
      vi.advanceTimersByTime(600);
      f.primary(i % 2 ? h('down') : h('degraded'));
    }
    expect(f.active).toBe('backup');
    expect(f.switches).toBe(1);
    // A periodic 'up' refresh during the hold does not restart it.
    f.primary(h('up'));
    vi.advanceTimersByTime(600);
    f.primary(h('up'));
    vi.advanceTimersByTime(400);
    expect(f.active).toBe('primary');
    f.stop();
  });
});
