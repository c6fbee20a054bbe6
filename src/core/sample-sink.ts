// The one hop from "we have readings" to "they are safe and on their way", for PLC samples and EL
// verdicts alike: append to the buffer (one transaction), count them, wake the publisher.
//
// Group commit: the polls of many devices that finish within a few milliseconds of each other
// (the scheduler starts devices of one interval in a few phase slots) share one transaction and
// one fsync instead of one each. A sample counts as taken (buffered, counted, publishable) only
// once its transaction committed. A refused append is the buffer's to account (it counts the
// samples, gives them seqs and a data_lost event, and reports itself degraded); the sink logs it.
// EL verdicts use now(): the stage must know the commit happened before it moves the images.
import type { EncodedMessage } from '../buffer/body.js';
import type { Sample } from './sample.js';

type Row = Sample | EncodedMessage;

export interface SampleSinkDeps {
  buffer: { append(rows: readonly Row[]): unknown };
  /** Counts samples taken into the buffer (edgeferry_samples_buffered_total). */
  buffered(n: number): void;
  /** Tells the publisher there is something new to send. */
  wake(): void;
  /** Appends within this many ms share a transaction; 0 commits each on its own, at once. */
  groupMs?: number;
  /** A grouped append the buffer refused (it has accounted the samples). */
  refused?(err: unknown, samples: number): void;
}

export interface SampleSink {
  /** Queued and committed with whatever else arrives within groupMs. `samples`: how many samples the rows carry. */
  (rows: readonly Row[], samples?: number): void;
  /** Committed now, in its own transaction; throws when the buffer refuses. */
  now(rows: readonly Row[], samples?: number): void;
  /** Commits what is queued (before draining on stop). */
  flush(): void;
}

export function sampleSink(deps: SampleSinkDeps): SampleSink {
  const groupMs = deps.groupMs ?? 0;
  let queued: Row[] = [];
  let queuedSamples = 0;
  let timer: NodeJS.Timeout | undefined;
  const commit = (rows: readonly Row[], samples: number) => {
    deps.buffer.append(rows);
    deps.buffered(samples);
    deps.wake();
  };
  /** A grouped commit: a refusal is the buffer's to account, the sink goes on. */
  const commitGrouped = (rows: readonly Row[], samples: number) => {
    try {
      commit(rows, samples);
    } catch (err) {
      deps.refused?.(err, samples);
    }
  };
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!queued.length) return;
    const rows = queued;
    const samples = queuedSamples;
    queued = [];
    queuedSamples = 0;
    commitGrouped(rows, samples);
  };
  const sink = ((rows: readonly Row[], samples = rows.length) => {
    if (!rows.length) return;
    if (groupMs <= 0) return commitGrouped(rows, samples);
    for (const r of rows) queued.push(r);
    queuedSamples += samples;
    timer ??= setTimeout(flush, groupMs);
  }) as SampleSink;
  sink.now = (rows, samples = rows.length) => commit(rows, samples);
  sink.flush = flush;
  return sink;
}
