import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Scheduler, type PollGroup } from '../../src/core/scheduler.js';

describe('scheduler', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const clock = { now: () => Date.now() };

  function group(id: string, intervalMs: number, pollMs: number, starts: number[]): PollGroup {
    return {
      id,
      device: id,
      intervalMs,
      run: async () => {
        starts.push(Date.now());
        await new Promise((r) => setTimeout(r, pollMs));
      },
    };
  }

  it('polls at start + k × interval without drift, even when each poll takes time', async () => {
    const starts: number[] = [];
    const s = new Scheduler({ onOverrun: () => undefined }, clock);
    const t0 = Date.now();
    s.add(group('a', 100, 30, starts));
    s.start();
    await vi.advanceTimersByTimeAsync(1000);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    expect(starts.map((t) => t - t0)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  });

  it('on reload: an added group polls at once and on its interval; a removed one stops after its poll in progress', async () => {
    const a: number[] = [];
    const b: number[] = [];
    const s = new Scheduler({ onOverrun: () => undefined }, clock);
    const t0 = Date.now();
    s.add(group('a', 100, 60, a));
    s.start();
    await vi.advanceTimersByTimeAsync(250);
    s.add(group('b', 100, 1, b));
    await vi.advanceTimersByTimeAsync(0);
    expect(b.map((t) => t - t0)).toEqual([250]);
    // a's poll started at 200 runs until 260: remove() resolves only then.
    let removed = false;
    const gone = s.remove('a').then(() => (removed = true));
    await vi.advanceTimersByTimeAsync(5);
    expect(removed).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    await gone;
    await vi.advanceTimersByTimeAsync(300);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    expect(a.map((t) => t - t0)).toEqual([0, 100, 200]);
    expect(b.map((t) => t - t0)).toEqual([250, 350, 450, 550]);
  });

  it('spreads the first polls of groups with one interval over that interval', async () => {
    const starts: number[][] = [[], [], [], []];
    const s = new Scheduler({ onOverrun: () => undefined }, clock);
    const t0 = Date.now();
    starts.forEach((list, i) => s.add(group(`g${i}`, 1000, 1, list)));
    s.start();
    await vi.advanceTimersByTimeAsync(1100);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
    expect(starts.map((l) => l.map((t) => t - t0))).toEqual([[0, 1000], [250], [500], [750]]);
  });

  it('counts an overrun and skips the tick instead of stacking polls', async () => {
    const starts: number[] = [];
    let overruns = 0;
    let running = 0;
    let maxRunning = 0;
    const s = new Scheduler({ onOverrun: (_g, n) => (overruns += n) }, clock);
    const t0 = Date.now();
    s.add({
      id: 'slow',
      device: 'slow',
      intervalMs: 100,
      run: async () => {
        starts.push(Date.now() - t0);
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((r) => setTimeout(r, 250));
        running--;
      },
    });
    s.start();
    await vi.advanceTimersByTimeAsync(1000);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(300);
    await stopped;
    expect(maxRunning).toBe(1);
    expect(starts).toEqual([0, 300, 600, 900]);
    // ticks at 100, 200, 400, 500, 700, 800 and 1000 found the previous poll still running
    expect(overruns).toBe(7);
  });

  it('keeps a fast device on time while another device hangs', async () => {
    const fast: number[] = [];
    const s = new Scheduler({ onOverrun: () => undefined }, clock);
    const t0 = Date.now();
    s.add(group('dead', 100, 10_000, []));
    s.add(group('fast', 100, 5, fast));
    s.start();
    await vi.advanceTimersByTimeAsync(500);
    const stopped = s.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    await stopped;
    // The second group starts half an interval later (phases are spread), then keeps its rhythm.
    expect(fast.map((t) => t - t0)).toEqual([50, 150, 250, 350, 450]);
  });

  it('spreads first polls over as many phase slots as their messages and polls need: five for a message per poll, twenty for one per tag', async () => {
    const firstPhases = async (messages: number) => {
      const starts = new Map<string, number>();
      const s = new Scheduler({ onOverrun: () => undefined }, clock);
      const t0 = Date.now();
      for (let i = 0; i < 137; i++) {
        const id = `plc-${i}`;
        s.add({ id, device: id, intervalMs: 1000, messages, run: async () => void (starts.has(id) || starts.set(id, Date.now() - t0)) });
      }
      s.start();
      await vi.advanceTimersByTimeAsync(1000);
      await s.stop();
      expect(starts.size).toBe(137);
      return new Set(starts.values());
    };
    // The seed plant with mqtt.payload poll (a message per poll): 5 slots of at most 32 polls, 200 ms apart.
    expect([...(await firstPhases(1))]).toEqual([0, 200, 400, 600, 800]);
    // With a message per tag (50 per poll): 20 slots 50 ms apart, about 340 messages each.
    const spread = await firstPhases(50);
    expect(spread.size).toBe(20);
    expect([...spread].every((t) => t % 50 === 0 && t < 1000)).toBe(true);
  });
});
