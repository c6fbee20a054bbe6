import type { Priority } from '../core/sample.js';

/** Most seq ranges in one loss event, so that one event stays a reasonable MQTT message. */
export const MAX_RANGES_PER_EVENT = 500;

export interface LossPart {
  count: number;
  by_priority?: Partial<Record<Priority, number>>;
  ranges: [number, number][];
}

/**
 * Lost rows as one or more event bodies of at most MAX_RANGES_PER_EVENT ranges each: every lost seq
 * is in exactly one of them, and their counts add up to the rows given. `prio` is the priority's
 * name per row (omitted: the events carry no by_priority).
 */
export function lossParts(rows: readonly { seq: number; prio?: Priority }[]): LossPart[] {
  const sorted = [...rows].sort((a, b) => a.seq - b.seq);
  const parts: LossPart[] = [];
  let part: LossPart | undefined;
  for (const r of sorted) {
    const last = part?.ranges[part.ranges.length - 1];
    if (part && last && r.seq === last[1] + 1) last[1] = r.seq;
    else if (part && last && r.seq === last[1]) continue;
    else {
      if (!part || part.ranges.length >= MAX_RANGES_PER_EVENT) parts.push((part = { count: 0, ranges: [] }));
      part.ranges.push([r.seq, r.seq]);
    }
    part.count++;
    if (r.prio) (part.by_priority ??= {})[r.prio] = (part.by_priority[r.prio] ?? 0) + 1;
  }
  return parts;
}

/** Seqs (any order, repeats allowed) as inclusive runs of consecutive seqs, ascending: one range delete each. */
export function seqRuns(seqs: readonly number[]): [number, number][] {
  const sorted = [...seqs].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const seq of sorted) {
    const last = runs[runs.length - 1];
    if (last && seq <= last[1] + 1) last[1] = Math.max(last[1], seq);
    else runs.push([seq, seq]);
  }
  return runs;
}
