// The buffer's shapes, shared by its parts (sqlite-buffer.ts, bounds.ts) and its readers.
import { statSync } from 'node:fs';
import type { Priority } from '../core/sample.js';

export type { BufferedRow, BufferEvent, BufferView, OutputBacklog } from './rows.js';

export interface BufferOptions {
  synchronous: 'normal' | 'full';
  maxBytes: number;
  maxAgeS: number;
  now?: () => number;
  /** Caps the database at this many pages (PRAGMA max_page_count): a full disk, for tests. */
  maxPageCount?: number;
  /** The outputs, each with a durable cursor (output-slots.ts); default ["mqtt"]. */
  outputs?: readonly string[];
  /** Every event the buffer records (data_lost, buffer_reset, buffer_recovered…), as it is recorded: the gateway logs the losses. */
  onEvent?: (body: Record<string, unknown>) => void;
}

/** ok, or degraded with the reasons (disk full, a failed append or acknowledgement, …). */
export interface BufferHealth {
  state: 'ok' | 'degraded';
  reasons: string[];
}

export type Problem = 'disk_full' | 'append' | 'ack' | 'seq_mark' | 'evict';

export interface BufferStats {
  depth: number;
  bytes: number;
  oldestTs: number | undefined;
  byPriority: Record<Priority, number>;
  evicted: number;
  /** Samples the disk refused even after eviction (each is also in a data_lost event). */
  unstored: number;
  deadLetters: number;
  pendingEvents: number;
  lastSeq: number;
}

export const PRIORITIES: readonly Priority[] = ['critical', 'normal', 'bulk'];

/**
 * Size of the write-ahead log beside the buffer file (0 when there is none). The buffer's "bytes"
 * — one meaning everywhere: stats, /healthz, /metrics, `edgeferry buffer stats`, what
 * buffer.max_bytes caps — is the pages in use plus this.
 */
export function walBytes(path: string): number {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0; // no WAL file right now
  }
}
export const prioOf = (p: Priority | undefined) => (p === 'critical' ? 0 : p === 'bulk' ? 2 : 1);

/** What keeps the buffer degraded now, one reason per kind; `changed` on every change. */
export class BufferProblems {
  private readonly reasons = new Map<Problem, string>();
  changed: ((h: BufferHealth) => void) | undefined;

  get health(): BufferHealth {
    return { state: this.reasons.size ? 'degraded' : 'ok', reasons: [...this.reasons.values()] };
  }

  get(kind: Problem): string | undefined {
    return this.reasons.get(kind);
  }

  /** Sets (or with undefined, clears) the reason of one kind. */
  set(kind: Problem, reason: string | undefined): void {
    if (reason === undefined ? !this.reasons.has(kind) : this.reasons.get(kind) === reason) return;
    if (reason === undefined) this.reasons.delete(kind);
    else this.reasons.set(kind, reason);
    this.changed?.(this.health);
  }
}
