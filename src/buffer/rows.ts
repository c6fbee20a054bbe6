// The shapes of buffered rows and of one output's view of the buffer. Nothing here imports
// anything: outputs (src/outputs/) and the config schema that names them can use these without
// reaching back into the gateway.

/**
 * Which topic a buffered message goes to, stored with it (the `kind` column): one point's value
 * (mqtt.topic_template), one whole poll (mqtt.poll_topic_template) or an EL verdict
 * (inference.topic_template, the station in `point`). The publisher routes by this alone.
 */
export type MessageKind = 'point' | 'poll' | 'el';
export const KIND_CODE: Readonly<Record<MessageKind, number>> = { point: 0, poll: 1, el: 2 };

export interface BufferedRow {
  seq: number;
  ts: number;
  device: string;
  point: string;
  prio: number;
  /** The topic it goes to, as KIND_CODE (point, poll or EL verdict). */
  kind: number;
  /** The JSON payload without seq: `{"ts":…,"value":…,…}` (rendered once, at append). */
  body: string;
  /** Bits of the outputs that have not acknowledged it yet (output-slots.ts). */
  pending: number;
}

/**
 * What one output sees of the buffer: its own rows (those it has not acknowledged), in seq order,
 * and its acknowledgements. Every output — MQTT, InfluxDB, … — reads through one of these
 * (SqliteBuffer.view), so none can delete what another still needs.
 */
export interface BufferView {
  readonly output: string;
  /** This output's rows with afterSeq < seq <= upTo, oldest first. */
  readRange(afterSeq: number, upTo: number, limit: number): BufferedRow[];
  /** Where this output starts on a new connection: the seq before its oldest row. */
  start(): number;
  /** Delivered: this output's bit is cleared; rows no output needs any more are deleted. Throws when the disk refuses. */
  accept(seqs: readonly number[]): void;
  /** Refused for good by this output: kept in dead_letter with the reason, and no longer this output's. */
  reject(seqs: readonly number[], reason: string): void;
  /** The seq ranges this output has in flight (never evicted), whenever they change. */
  protect(ranges: [number, number][]): void;
  /** Rows this output has not acknowledged. */
  depth(): number;
  lastSeq(): number;
  /** Loss and recovery events (the events topic): only the MQTT output sends them. */
  readonly hasEvents: boolean;
  pendingEvents(limit: number): BufferEvent[];
  ackEvent(id: number): void;
}

/** One output's share of the buffer, for /metrics, the status page and the gateway status. */
export interface OutputBacklog {
  /** Rows this output has not acknowledged. */
  backlog: number;
  /** Gateway timestamp of its oldest such row. */
  oldestTs: number | undefined;
}

export interface BufferEvent {
  id: number;
  body: string;
}
