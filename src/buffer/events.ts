// The events topic's queue inside the buffer file: loss and recovery events (data_lost,
// buffer_reset, …) wait here until the broker acknowledged them, like samples. The count of
// pending ones is kept in memory so that the publisher asks without a query.
import type { Statements } from './statements.js';
import type { BufferEvent } from './types.js';

export class EventQueue {
  private pending = 0;

  constructor(
    private readonly s: () => Statements | undefined,
    private readonly now: () => number,
  ) {}

  /** After the file opened: what an earlier run left. */
  opened(): void {
    this.pending = this.s()!.eventCount.get() as number;
  }

  get any(): boolean {
    return this.pending > 0;
  }

  add(body: Record<string, unknown>): void {
    this.s()!.addEvent.run(this.now(), JSON.stringify({ ...body, ts: new Date(this.now()).toISOString() }));
    this.pending++;
  }

  list(limit: number): BufferEvent[] {
    return (this.s()?.events.all(limit) as BufferEvent[] | undefined) ?? [];
  }

  ack(id: number): void {
    if (this.s()!.delEvent.run(id).changes) this.pending = Math.max(0, this.pending - 1);
  }
}
