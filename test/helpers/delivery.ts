// Checks what consumers rely on from the data topics: every seq, per-point order, duplicates.
import Database from '../../src/buffer/sqlite.js';
import type { Message } from './subscriber.js';

export interface Delivery {
  /** First arrival of each seq. */
  bySeq: Map<number, Message>;
  duplicates: number;
  /** Topics whose first arrivals are not in increasing seq order. */
  outOfOrder: string[];
}

export function analyse(messages: Message[], isData: (m: Message) => boolean): Delivery {
  const bySeq = new Map<number, Message>();
  const lastPerTopic = new Map<string, number>();
  const outOfOrder = new Set<string>();
  let duplicates = 0;
  for (const m of messages) {
    if (!isData(m)) continue;
    const seq = m.json.seq as number;
    if (bySeq.has(seq)) {
      duplicates++;
      continue;
    }
    bySeq.set(seq, m);
    if (seq < (lastPerTopic.get(m.topic) ?? 0)) outOfOrder.add(m.topic);
    lastPerTopic.set(m.topic, seq);
  }
  return { bySeq, duplicates, outOfOrder: [...outOfOrder] };
}

/** The highest seq the buffer ever assigned, and the seqs still stored, read from a closed buffer file. */
export function bufferFile(path: string): {
  lastSeq: number;
  stored: Set<number>;
  deadLetters: { seq: number; reason: string }[];
  evicted: number;
  /** Events not yet acknowledged by the broker. */
  pendingEvents: Record<string, unknown>[];
} {
  const db = new Database(path, { readonly: true });
  try {
    const lastSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").pluck().get() as number | undefined) ?? 0;
    const stored = new Set(db.prepare('SELECT seq FROM samples').pluck().all() as number[]);
    const deadLetters = db.prepare('SELECT seq, reason FROM dead_letter ORDER BY seq').all() as { seq: number; reason: string }[];
    const evicted = (db.prepare("SELECT value FROM counters WHERE name = 'evicted'").pluck().get() as number | undefined) ?? 0;
    const pendingEvents = (db.prepare('SELECT body FROM events ORDER BY id').pluck().all() as string[]).map((b) => JSON.parse(b) as Record<string, unknown>);
    return { lastSeq, stored, deadLetters, evicted, pendingEvents };
  } finally {
    db.close();
  }
}

/** Seqs in 1..last that are in none of the given sets. */
export function missing(last: number, ...sets: Set<number>[]): number[] {
  const out: number[] = [];
  for (let s = 1; s <= last; s++) if (!sets.some((x) => x.has(s))) out.push(s);
  return out;
}
