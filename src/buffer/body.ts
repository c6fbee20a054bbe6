import type { CommonPoint } from '../config/schema.js';
import type { Reading, Value } from '../core/driver.js';
import { POLL_POINT, type MessageKind, type Priority, type Sample } from '../core/sample.js';
import type { RowSource } from './rows.js';

/** Names (devices, points, channels) as JSON strings, escaped once each: they repeat in every poll. */
const names = new Map<string, string>();
function jsonString(name: string): string {
  let out = names.get(name);
  if (out === undefined) {
    out = JSON.stringify(name);
    if (names.size < 1_000_000) names.set(name, out);
  }
  return out;
}

/** A poll's samples share one time: its ISO text is made once, not once per sample. */
let lastTs = NaN;
let lastIso = '';
function iso(ts: number): string {
  if (ts !== lastTs) {
    lastIso = new Date(ts).toISOString();
    lastTs = ts;
  }
  return lastIso;
}

/** JSON for a value; 64-bit integers outside the double range are written as exact JSON numbers. */
function encodeValue(v: Value): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v); // the same text as JSON, faster
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return 'null'; // NaN/Infinity are not JSON
  return JSON.stringify(v);
}

/** What a value's fields are written from: a Sample, or a Reading with its point's unit. */
interface ValueOf {
  value: Value;
  quality: Sample['quality'];
  reason?: string;
  deviceTs?: number;
  serverTs?: number;
}

/** "value" and "quality", then reason, raw, device_ts, server_ts and unit where there are any. */
function valueFields(s: ValueOf, unit: string | undefined): string {
  const v = s.value;
  // The common case first: a good finite number and nothing else (String() is JSON's text for it).
  if (typeof v === 'number' && s.quality === 'good' && s.reason === undefined && s.deviceTs === undefined && s.serverTs === undefined && Number.isFinite(v)) {
    return unit === undefined ? `"value":${v},"quality":"good"` : `"value":${v},"quality":"good","unit":${jsonString(unit)}`;
  }
  let out = `"value":${encodeValue(v)},"quality":"${s.quality}"`;
  if (s.reason !== undefined) out += `,"reason":${JSON.stringify(s.reason)}`;
  if (typeof v === 'number' && !Number.isFinite(v)) out += `,"raw":"${String(v)}"`;
  if (s.deviceTs !== undefined) out += `,"device_ts":"${new Date(s.deviceTs).toISOString()}"`;
  if (s.serverTs !== undefined) out += `,"server_ts":"${new Date(s.serverTs).toISOString()}"`;
  if (unit !== undefined) out += `,"unit":${jsonString(unit)}`;
  return out;
}

/**
 * The payload consumers get, minus `seq` (the buffer assigns it; the publisher prepends it):
 * {"ts":"…","value":…,"quality":"good"} plus reason, device_ts, unit and channel when known.
 */
export function encodeBody(s: Sample): string {
  let out = `{"ts":"${iso(s.ts)}",${valueFields(s, s.unit)}`;
  if (s.extra) for (const [k, v] of Object.entries(s.extra)) if (v !== undefined) out += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  out += `,"channel":${JSON.stringify(s.channel)}}`;
  return out;
}

/** Adds seq as the first field of a stored body. */
export const withSeq = (seq: number, body: string): string => `{"seq":${seq},${body.slice(1)}`;

/** A message ready for the buffer: its body is already rendered. */
export interface EncodedMessage {
  ts: number;
  device: string;
  /** POLL_POINT for a poll message (a label; the topic follows `kind`). */
  point: string;
  kind: MessageKind;
  priority?: Priority;
  body: string;
  /** What the body was rendered from (BufferedRow.source). */
  source?: RowSource;
}

/**
 * With `mqtt.payload: poll`, the samples of one poll (one device, one time, one channel) become one
 * message per priority present — usually one:
 * {"ts":"…","device":"…","channel":"…","points":{"p1":{"value":…,"quality":"good"},…}}.
 * Split by priority so eviction at the buffer cap still drops bulk data before critical data.
 */
export function encodePollMessages(samples: readonly Sample[]): EncodedMessage[] {
  if (!samples.length) return [];
  const byPrio = new Map<Priority | undefined, Sample[]>();
  for (const s of samples) {
    const key = s.priority === 'normal' ? undefined : s.priority;
    const list = byPrio.get(key);
    if (list) list.push(s);
    else byPrio.set(key, [s]);
  }
  const first = samples[0]!;
  const head = `{"ts":"${iso(first.ts)}","device":${jsonString(first.device)},"channel":${jsonString(first.channel)},"points":{`;
  const out: EncodedMessage[] = [];
  for (const [priority, list] of byPrio) {
    let body = head;
    // Each point: the per-sample fields minus what the whole poll shares (ts, device, channel).
    for (let i = 0; i < list.length; i++) body += `${i ? ',' : ''}${jsonString(list[i]!.point)}:{${valueFields(list[i]!, list[i]!.unit)}}`;
    out.push({
      ts: first.ts,
      device: first.device,
      point: POLL_POINT,
      kind: 'poll',
      priority,
      body: `${body}}}`,
      source: { values: list, channel: first.channel },
    });
  }
  return out;
}

/**
 * The same message straight from a poll's readings (the lean path: no Sample per point). `points`:
 * the device's points by name (unit and priority). The same text encodePollMessages writes.
 */
export function encodePollReadings(
  device: string,
  channel: string,
  ts: number,
  readings: readonly Reading[],
  points: ReadonlyMap<string, CommonPoint>,
): EncodedMessage[] {
  if (!readings.length) return [];
  const head = `{"ts":"${iso(ts)}","device":${jsonString(device)},"channel":${jsonString(channel)},"points":{`;
  // Usually every point has one priority: one body. Others, in the order they first appear.
  let firstPrio: Priority | undefined;
  let first = '';
  let more: { priority: Priority | undefined; body: string }[] | undefined;
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    const p = points.get(r.point);
    const priority = p?.priority === 'normal' ? undefined : p?.priority;
    const entry = `${jsonString(r.point)}:{${valueFields(r, p?.unit)}}`;
    if (i === 0) {
      firstPrio = priority;
      first = head + entry;
    } else if (priority === firstPrio) first += `,${entry}`;
    else {
      more ??= [];
      const m = more.find((x) => x.priority === priority);
      if (m) m.body += `,${entry}`;
      else more.push({ priority, body: head + entry });
    }
  }
  // The readings themselves are the source (one priority, the usual case), else each priority's share.
  const of = (prio: Priority | undefined): readonly Reading[] => (more ? readings.filter((r) => priorityOf(points, r) === prio) : readings);
  const out: EncodedMessage[] = [
    { ts, device, point: POLL_POINT, kind: 'poll', priority: firstPrio, body: `${first}}}`, source: { values: of(firstPrio), channel, units: points } },
  ];
  if (more)
    for (const m of more)
      out.push({
        ts,
        device,
        point: POLL_POINT,
        kind: 'poll',
        priority: m.priority,
        body: `${m.body}}}`,
        source: { values: of(m.priority), channel, units: points },
      });
  return out;
}

function priorityOf(points: ReadonlyMap<string, CommonPoint>, r: Reading): Priority | undefined {
  const p = points.get(r.point)?.priority;
  return p === 'normal' ? undefined : p;
}
