// Poll groups by interval, without drift: tick k of a group is due at start + k × interval, not
// "interval after the last poll ended". A poll still running when its next tick is due is an
// overrun: counted, the tick is skipped, polls are never stacked. Each group has its own timer, so
// one slow or dead device never delays another; groups start at staggered phases.

/** Narrowest spacing of the phase slots first ticks are spread over. */
const SLOT_MS = 50;
/**
 * What one phase slot may put out at once: this many messages and this many polls. Fewer slots mean
 * fewer wake-ups, commits and TLS writes (bench/FINDINGS.md 17, 21); more keep the burst small — the
 * messages a consumer sees at once, and the answers the gateway decodes at once, which is latency.
 * With one message per tag the seed plant (137 devices × 50 tags/s) gets 20 slots a second; with
 * one message per poll, 5 slots of about 28 devices.
 */
const MESSAGES_PER_SLOT = 350;
const POLLS_PER_SLOT = 32;

export interface PollGroup {
  /** For logs and metrics, e.g. "boiler-1@1000ms". */
  readonly id: string;
  readonly device: string;
  readonly intervalMs: number;
  /** Messages one poll of the group puts in the buffer (its share of a slot's burst); unset: a slot's worth. */
  readonly messages?: number;
  /**
   * Runs one poll. Should not throw (the link runner and the pipeline catch what they expect);
   * whatever still does is caught here and reported to onFault, and the group keeps its schedule.
   */
  run(): Promise<void>;
}

export interface SchedulerHooks {
  /** A tick came while the previous poll of the group was still running. */
  onOverrun(group: PollGroup, skippedTicks: number): void;
  /** A poll threw (err), or the group's first poll to succeed after one that threw (undefined). */
  onFault?(group: PollGroup, err: unknown): void;
}

export interface Clock {
  now(): number;
}

interface GroupState {
  group: PollGroup;
  start: number;
  tick: number;
  timer: NodeJS.Timeout | undefined;
  /** The poll in progress, if any. */
  current: Promise<void> | undefined;
  removed: boolean;
  /** The last poll threw. */
  faulted: boolean;
}

export class Scheduler {
  private readonly states: GroupState[] = [];
  private stopped = true;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly hooks: SchedulerHooks,
    private readonly clock: Clock = { now: () => performance.now() },
  ) {}

  /** Adds a poll group; while running (a config reload), its first poll is due at once. */
  add(group: PollGroup): void {
    const s: GroupState = { group, start: 0, tick: 0, timer: undefined, current: undefined, removed: false, faulted: false };
    this.states.push(s);
    if (!this.stopped) this.begin(s, this.clock.now(), 0);
  }

  /** Removes every group of `device` and waits for its polls in progress to finish. */
  async remove(device: string): Promise<void> {
    const gone = this.states.filter((s) => s.group.device === device);
    for (const s of gone) {
      s.removed = true;
      clearTimeout(s.timer);
      this.states.splice(this.states.indexOf(s), 1);
    }
    await Promise.allSettled(gone.map((s) => s.current ?? Promise.resolve()));
  }

  start(): void {
    this.stopped = false;
    const now = this.clock.now();
    const n = this.states.length;
    const messages = this.states.reduce((sum, s) => sum + (s.group.messages ?? MESSAGES_PER_SLOT), 0);
    // Spread first ticks over each group's interval so that devices with the same interval are
    // not all polled, decoded and published in one burst (which shows up as latency) — in phase
    // slots at least SLOT_MS apart, so that the few devices of one slot answer together and share
    // a buffer transaction and a TLS write (group commit) instead of waking the process each — and
    // no more slots than the messages need (MESSAGES_PER_SLOT).
    this.states.forEach((s, i) => {
      const interval = s.group.intervalMs;
      const needed = Math.max(Math.ceil(messages / MESSAGES_PER_SLOT), Math.ceil(n / POLLS_PER_SLOT));
      const slots = Math.max(1, Math.min(n, Math.floor(interval / SLOT_MS), needed));
      this.begin(s, now, Math.floor((Math.floor((i * slots) / n) * interval) / slots));
    });
  }

  private begin(s: GroupState, now: number, phase: number): void {
    s.start = now + phase;
    s.tick = 0;
    s.timer = setTimeout(() => this.fire(s), phase);
  }

  private fire(s: GroupState): void {
    if (this.stopped || s.removed) return;
    if (s.current) {
      this.hooks.onOverrun(s.group, 1);
    } else {
      // The error boundary of every poll: a throw (sync or async) never leaves the scheduler.
      let started: Promise<void>;
      try {
        started = s.group.run();
      } catch (err) {
        started = Promise.reject(err);
      }
      const p = started
        .then(
          () => {
            if (!s.faulted) return;
            s.faulted = false;
            this.report(s.group, undefined);
          },
          (err: unknown) => {
            s.faulted = true;
            this.report(s.group, err);
          },
        )
        .finally(() => {
          s.current = undefined;
          this.inFlight.delete(p);
        });
      s.current = p;
      this.inFlight.add(p);
    }
    this.arm(s);
  }

  private report(group: PollGroup, err: unknown): void {
    try {
      this.hooks.onFault?.(group, err);
    } catch {
      /* the reporter itself failed: the schedule goes on */
    }
  }

  private arm(s: GroupState): void {
    const now = this.clock.now();
    const interval = s.group.intervalMs;
    let next = s.tick + 1;
    // Ticks missed entirely (the process was stalled) are counted once, not fired in a burst.
    const due = Math.floor((now - s.start) / interval) + 1;
    if (due > next) {
      this.hooks.onOverrun(s.group, due - next);
      next = due;
    }
    s.tick = next;
    s.timer = setTimeout(() => this.fire(s), Math.max(0, s.start + next * interval - now));
  }

  /** Stops ticking and waits for polls in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.states) clearTimeout(s.timer);
    await Promise.allSettled([...this.inFlight]);
  }
}
