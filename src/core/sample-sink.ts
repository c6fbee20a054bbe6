// The one hop from "we have readings" to "they are safe and on their way", for PLC samples and EL
// verdicts alike: append to the buffer (one transaction), count them, wake the publisher. A
// refused append throws to the caller, who decides: the poll path logs and goes on (the buffer
// accounts the loss), the EL stage keeps the images in its inbox.
import type { EncodedMessage } from '../buffer/body.js';
import type { Sample } from './sample.js';

export interface SampleSinkDeps {
  buffer: { append(rows: readonly (Sample | EncodedMessage)[]): unknown };
  /** Counts samples taken into the buffer (edgeferry_samples_buffered_total). */
  buffered(n: number): void;
  /** Tells the publisher there is something new to send. */
  wake(): void;
}

export type SampleSink = (rows: readonly (Sample | EncodedMessage)[], samples?: number) => void;

/** `samples`: how many samples the rows carry (a poll message holds a device's whole poll). */
export function sampleSink(deps: SampleSinkDeps): SampleSink {
  return (rows, samples = rows.length) => {
    deps.buffer.append(rows);
    deps.buffered(samples);
    deps.wake();
  };
}
