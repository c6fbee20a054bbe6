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
  /**
   * What the body was rendered from, while the row is in memory after its append: outputs that
   * need the values (Sparkplug, InfluxDB) take them from here with rowPoints() (body.ts) instead
   * of parsing the body: a point row's sample itself, a poll row's readings. Rows read back from
   * SQLite have none.
   */
  source?: RowSource | SourceValue;
}

/** A point's value as a row was rendered from it (a Reading or a Sample fits). */
export interface SourceValue {
  point: string;
  value: unknown;
  quality: 'good' | 'uncertain' | 'bad';
  reason?: string;
  unit?: string;
  channel?: string;
}

/**
 * The values of a row before rendering: one sample (a point row) or one poll's readings of one
 * priority (a poll row), with the poll's channel and the units of its device map (readings carry none).
 */
export interface RowSource {
  values: readonly SourceValue[];
  channel?: string;
  units?: ReadonlyMap<string, { unit?: string }>;
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
  /** An event for the events topic (kept until the broker acknowledged it). */
  addEvent(body: Record<string, unknown>): void;
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

/** One point of a buffered row, as its body says it: what JSON.parse of the body gives for it. */
export interface RowPoint {
  point: string;
  value: unknown;
  quality: SourceValue['quality'];
  unit?: string;
  reason?: string;
  /** The channel it came through (absent only in bodies written before channels were recorded). */
  channel?: string;
}

/**
 * The points of a point or poll row — from what it was rendered from while the row is in memory
 * after its append (no parse on the live path), else from its body (a row read back from SQLite).
 * Both give the same: values as the body's JSON has them (NaN and ±Infinity null, -0 as 0, 64-bit
 * integers as the nearest double).
 */
export function rowPoints(row: BufferedRow): RowPoint[] {
  const src = row.source;
  if (src && !('values' in src)) return [fromSource(src, undefined, undefined)];
  if (src) return src.values.map((v) => fromSource(v, src.channel, src.units));
  const body = JSON.parse(row.body) as Partial<RowPoint> & { points?: Record<string, Partial<RowPoint>> };
  const one = (point: string, b: Partial<RowPoint>, channel: unknown): RowPoint => {
    const p: RowPoint = { point, value: b.value ?? null, quality: b.quality ?? 'good' };
    if (typeof b.unit === 'string') p.unit = b.unit;
    if (typeof b.reason === 'string') p.reason = b.reason;
    if (typeof channel === 'string') p.channel = channel;
    return p;
  };
  if (row.kind === KIND_CODE.poll) return Object.entries(body.points ?? {}).map(([name, b]) => one(name, b, body.channel));
  return [one(row.point, body, body.channel)];
}

function fromSource(v: SourceValue, channel: string | undefined, units: RowSource['units']): RowPoint {
  const p: RowPoint = { point: v.point, value: asParsed(v.value), quality: v.quality };
  const unit = v.unit ?? units?.get(v.point)?.unit;
  if (unit !== undefined) p.unit = unit;
  if (v.reason !== undefined) p.reason = v.reason;
  const ch = channel ?? v.channel;
  if (ch !== undefined) p.channel = ch;
  return p;
}

/** A value as it reads back from its JSON text (encodeValue). */
function asParsed(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v + 0 : null; // -0 + 0 is 0
  if (typeof v === 'bigint') return Number(v);
  if (v !== null && typeof v === 'object') return JSON.parse(JSON.stringify(v)) as unknown; // arrays: NaN inside becomes null
  return v;
}
