// One device's requests waiting for their turn on its link (src/core/link-runner.ts): polls and
// probes in order, writes ahead of them in their own order, and writes parked while the device is
// down — each with the timer that answers it "expired" at its deadline, unsent.

/** `expired`: a write whose deadline passed before it could be sent (it never was). */
/** `ts`: when the request went out (ms since the epoch); absent on a failure where none did. */
export type ExecResult<T> = { ok: true; value: T; ts: number } | { ok: false; reason: string; expired?: true; ts?: number };

export interface Job {
  kind: 'poll' | 'probe' | 'write';
  fn: (signal: AbortSignal) => Promise<unknown>;
  resolve: (r: ExecResult<unknown>) => void;
  /** A write's deadline (ms since the epoch); the timer answers it expired then. */
  deadline?: number;
  timer?: NodeJS.Timeout;
}

export class DeviceQueue {
  private readonly jobs: Job[] = [];
  /** Writes waiting for the device to come back (until their deadline). */
  private readonly parked: Job[] = [];

  get length(): number {
    return this.jobs.length + this.parked.length;
  }

  get headIsWrite(): boolean {
    return this.jobs[0]?.kind === 'write';
  }

  shift(): Job | undefined {
    return this.jobs.shift();
  }

  push(job: Job): void {
    this.jobs.push(job);
  }

  /** A write, queued after the writes already there and ahead of everything else — or parked. */
  write(job: Job, deadline: number, ready: boolean): void {
    job.timer = setTimeout(() => {
      for (const list of [this.parked, this.jobs]) if (list.includes(job)) list.splice(list.indexOf(job), 1);
      job.resolve({ ok: false, reason: 'expired while waiting for the device', expired: true });
    }, deadline - Date.now());
    if (ready) this.queueWrite(job);
    else this.parked.push(job);
  }

  private queueWrite(job: Job): void {
    const i = this.jobs.findIndex((j) => j.kind !== 'write');
    if (i < 0) this.jobs.push(job);
    else this.jobs.splice(i, 0, job);
  }

  /** A write taken for its turn: true to send it now; else parked (device down) or answered expired. */
  sendNow(job: Job, deviceDown: boolean): boolean {
    if (deviceDown) {
      this.parked.push(job); // sent once the device answers again, if before its deadline
      return false;
    }
    clearTimeout(job.timer);
    if (Date.now() < job.deadline!) return true;
    job.resolve({ ok: false, reason: 'expired before it was sent', expired: true });
    return false;
  }

  /** The device answered again: the parked writes go first. */
  unpark(): void {
    for (const w of this.parked.splice(0)) this.queueWrite(w);
  }

  /** The link went down: writes wait for its return (until their deadline), the rest end here. */
  linkLost(reason: string): void {
    for (const j of this.jobs.splice(0)) j.kind === 'write' ? this.parked.push(j) : j.resolve({ ok: false, reason });
  }

  /** Stopping: everything is answered. */
  endAll(reason: string): void {
    for (const j of [...this.jobs.splice(0), ...this.parked.splice(0)]) {
      clearTimeout(j.timer);
      j.resolve({ ok: false, reason });
    }
  }
}
