// Every loss the buffer records is also a log line (issue 33): the events topic tells consumers,
// the journal tells whoever looks at the box. Counts and seq bounds, not every range (the event
// has those): a line stays short however scattered the loss.
import type { Logger } from 'pino';

const LOSS = new Set(['data_lost', 'buffer_reset', 'buffer_recovered', 'seq_mark_refused']);

export function logLoss(log: Logger, e: Record<string, unknown>): void {
  if (!LOSS.has(String(e.event))) return;
  const ranges = (e.ranges as [number, number][] | undefined) ?? [];
  const { ranges: _r, unreadable_seqs: _u, ...rest } = e;
  const fields = { ...rest, ...(ranges.length ? { first_seq_lost: ranges[0]![0], last_seq_lost: ranges[ranges.length - 1]![1], ranges: ranges.length } : {}) };
  if (e.event === 'data_lost') {
    log.warn(fields, `${String(e.count)} samples lost (${String(e.reason)}); the events topic names every seq`);
  } else if (e.event === 'seq_mark_refused') {
    log.error(fields, `seq mark not believed (${String(e.reason)}): treated as damaged`);
  } else if (e.event === 'buffer_reset') {
    log.error(
      fields,
      `buffer file is not the one being written (${String(e.reason)}): seqs continue at ${String(e.first_seq)}; samples below it not yet delivered are lost`,
    );
  } else {
    const n = e.samples_in_file === null ? 'an unknown number of' : String(e.samples_in_file);
    log.error(fields, `buffer file was damaged: moved aside with ${n} samples in it; a fresh buffer continues at seq ${String(e.first_seq)}`);
  }
}
