import type { Value } from '../core/driver.js';
import type { Sample } from '../core/sample.js';

/** JSON for a value; 64-bit integers outside the double range are written as exact JSON numbers. */
function encodeValue(v: Value): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return 'null'; // NaN/Infinity are not JSON
  return JSON.stringify(v);
}

/**
 * The payload consumers get, minus `seq` (the buffer assigns it; the publisher prepends it):
 * {"ts":"…","value":…,"quality":"good"} plus reason, device_ts, unit and channel when known.
 */
export function encodeBody(s: Sample): string {
  let out = `{"ts":"${new Date(s.ts).toISOString()}","value":${encodeValue(s.value)},"quality":"${s.quality}"`;
  if (s.reason !== undefined) out += `,"reason":${JSON.stringify(s.reason)}`;
  if (typeof s.value === 'number' && !Number.isFinite(s.value)) out += `,"raw":"${String(s.value)}"`;
  if (s.deviceTs !== undefined) out += `,"device_ts":"${new Date(s.deviceTs).toISOString()}"`;
  if (s.serverTs !== undefined) out += `,"server_ts":"${new Date(s.serverTs).toISOString()}"`;
  if (s.unit !== undefined) out += `,"unit":${JSON.stringify(s.unit)}`;
  if (s.extra) for (const [k, v] of Object.entries(s.extra)) if (v !== undefined) out += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
  out += `,"channel":${JSON.stringify(s.channel)}}`;
  return out;
}

/** Adds seq as the first field of a stored body. */
export const withSeq = (seq: number, body: string): string => `{"seq":${seq},${body.slice(1)}`;
