// The buffer's figures: one scan of the table by priority (the depth is their sum), the loss
// counters and the dead letters and pending events.
import type { Priority } from '../core/sample.js';
import type { Statements } from './statements.js';
import { PRIORITIES, type BufferStats } from './types.js';

export function readStats(s: Statements, known: { bytes: number; oldestTs: number | undefined; unstored: number; lastSeq: number }): BufferStats {
  const byPriority: Record<Priority, number> = { critical: 0, normal: 0, bulk: 0 };
  let depth = 0;
  for (const r of s.byPrio.all() as { prio: number; n: number }[]) {
    byPriority[PRIORITIES[r.prio]!] = r.n;
    depth += r.n;
  }
  const counter = (name: string) => (s.counter.get(name) as number | undefined) ?? 0;
  return {
    depth,
    bytes: known.bytes,
    oldestTs: known.oldestTs,
    byPriority,
    evicted: counter('evicted'),
    // Accounted ones (with their data_lost event) and those still waiting for an append to succeed.
    unstored: counter('lost_unstored') + known.unstored,
    deadLetters: s.deadCount.get() as number,
    pendingEvents: s.eventCount.get() as number,
    lastSeq: known.lastSeq,
  };
}
