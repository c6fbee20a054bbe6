// Buffer rows → InfluxDB line protocol. Point samples and poll messages become one line per point
// in <measurement>, tagged site, gateway, device, point and channel, with the value in a field
// named by its type (value: float, value_bool, value_str — InfluxDB fixes a field's type per
// measurement, and a plant's points mix them), quality, seq (integer, for consumers that count)
// and unit when there is one; the time is the gateway's in ms. EL verdicts go to <measurement>_el
// with their numbers and flags as fields. A value that is null (a bad reading) writes no value
// field, only its quality. Writing the same row twice writes the same point (same series, same
// time): a resend after a crash is not a duplicate in InfluxDB.
import { KIND_CODE, rowPoints, type BufferedRow, type RowPoint } from '../../buffer/rows.js';

const escMeasurement = (s: string) => s.replace(/[\\, ]/g, (c) => `\\${c}`);
const escTag = (s: string) => s.replace(/[\\,= ]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
const escStr = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;

/** Tags and their text, escaped once per name (they repeat on every poll). */
const tagCache = new Map<string, string>();
function tag(s: string): string {
  let t = tagCache.get(s);
  if (t === undefined) {
    t = escTag(s);
    if (tagCache.size < 100_000) tagCache.set(s, t);
  }
  return t;
}

export interface LineFormat {
  measurement: string;
  site: string;
  gateway: string;
}

function valueField(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? `value=${v}` : undefined;
  if (typeof v === 'boolean') return `value_bool=${v}`;
  if (typeof v === 'string') return `value_str=${escStr(v)}`;
  if (Array.isArray(v) || (v !== null && typeof v === 'object')) return `value_str=${escStr(JSON.stringify(v))}`;
  return undefined; // null: a bad reading, only its quality is written
}

function pointLine(f: LineFormat, device: string, p: RowPoint, seq: number, ts: number): string {
  let fields = valueField(p.value);
  fields = `${fields ? `${fields},` : ''}quality=${escStr(p.quality ?? 'good')},seq=${seq}i`;
  if (p.unit !== undefined) fields += `,unit=${escStr(p.unit)}`;
  if (p.reason !== undefined) fields += `,reason=${escStr(p.reason)}`;
  const ch = p.channel;
  return `${escMeasurement(f.measurement)},site=${tag(f.site)},gateway=${tag(f.gateway)},device=${tag(device)},point=${tag(p.point)}${ch ? `,channel=${tag(ch)}` : ''} ${fields} ${ts}`;
}

function elLine(f: LineFormat, row: BufferedRow, body: Record<string, unknown>): string {
  const fields: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    if (k === 'ts' || k === 'seq') continue;
    const key = escTag(k);
    if (typeof v === 'number' && Number.isFinite(v)) fields.push(`${key}=${v}`);
    else if (typeof v === 'boolean') fields.push(`${key}=${v}`);
    else if (typeof v === 'string') fields.push(`${key}=${escStr(v)}`);
  }
  fields.push(`seq=${row.seq}i`);
  return `${escMeasurement(`${f.measurement}_el`)},site=${tag(f.site)},gateway=${tag(f.gateway)},station=${tag(row.point)} ${fields.join(',')} ${row.ts}`;
}

/** The lines of one buffered row (several for a poll message). */
export function rowLines(f: LineFormat, row: BufferedRow): string[] {
  if (row.kind === KIND_CODE.el) return [elLine(f, row, JSON.parse(row.body) as Record<string, unknown>)];
  // Live rows without a parse: their points come from what they were rendered from (body.ts).
  return rowPoints(row).map((p) => pointLine(f, row.device, p, row.seq, row.ts));
}

/** A batch as one request body. */
export function linesOf(f: LineFormat, rows: readonly BufferedRow[]): string {
  let out = '';
  for (const row of rows) for (const line of rowLines(f, row)) out += `${line}\n`;
  return out;
}
