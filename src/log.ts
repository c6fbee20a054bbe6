import { fstatSync } from 'node:fs';
import pino, { type DestinationStream, type Logger } from 'pino';

/** `auto`: text on a terminal and under journald, JSON lines otherwise (a pipe, a file, a collector). */
export type LogFormat = 'auto' | 'text' | 'json';

/** syslog priorities of pino's levels, for journald's `<N>` line prefix (sd-daemon(3)). */
const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
/** A line's level as pino's number, whether the line carries the number or the name. */
const levelOf = (l: { level: number | string }) => (typeof l.level === 'number' ? l.level : (pino.levels.values[l.level] ?? 30));
/** Identical warnings and errors within this window are counted, not printed again. */
export const REPEAT_WINDOW_MS = 60_000;

/** True when fd's stream is the one systemd connected to the journal (JOURNAL_STREAM is "dev:ino"). */
export function underJournald(fd = 1, env = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fstatSync(fd);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

interface Line {
  level: number | string;
  time?: string | number;
  msg?: string;
  component?: string;
  err?: { message?: string; code?: string };
  [k: string]: unknown;
}

const OMIT = new Set(['level', 'time', 'msg', 'service', 'component', 'pid', 'hostname']);

/** One readable line: `2026-11-29T08:40:01.123Z WARN  publisher: mqtt error err="connect ECONNREFUSED …" device=plc`. */
export function textLine(l: Line, withTime: boolean): string {
  const level = levelOf(l);
  const parts: string[] = [];
  if (withTime) parts.push(typeof l.time === 'number' ? new Date(l.time).toISOString() : String(l.time ?? new Date().toISOString()));
  parts.push((pino.levels.labels[level] ?? 'info').toUpperCase().padEnd(5));
  parts.push(`${l.component ? `${l.component}: ` : ''}${l.msg ?? ''}`);
  for (const [k, v] of Object.entries(l)) {
    if (OMIT.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: string; code?: string };
      parts.push(`err=${JSON.stringify(e.message ?? '')}${e.code ? ` code=${e.code}` : ''}`);
      continue;
    }
    parts.push(`${k}=${typeof v === 'string' && /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v)}`);
  }
  return parts.join(' ');
}

export interface LogSinkOptions {
  format: 'text' | 'json';
  /** Prefix each line with its journald priority. */
  journald: boolean;
  write: (s: string) => void;
  now?: () => number;
}

/**
 * pino's JSON lines in, the chosen format out — with each line's journald priority when the
 * journal is listening, and identical warnings/errors (same component, message, error, device,
 * link) printed once per REPEAT_WINDOW_MS with a count of those held back. Never held back: audit
 * lines (a field `audit`: every write attempt, every reload's outcome). The counts still held are
 * printed by flush() (pino's logger.flush(), at stop).
 */
export class LogSink implements DestinationStream {
  private seen = new Map<string, { since: number; held: number; last?: Line }>();
  constructor(private o: LogSinkOptions) {}

  write(raw: string): void {
    let l: Line;
    try {
      l = JSON.parse(raw) as Line;
    } catch {
      this.o.write(raw.endsWith('\n') ? raw : `${raw}\n`);
      return;
    }
    const level = levelOf(l);
    if (level >= 40 && l.audit === undefined) {
      const now = (this.o.now ?? Date.now)();
      const key = JSON.stringify([level, l.component, l.msg, l.err?.message, l.err?.code, l.device, l.link, l.point, l.reason]);
      const s = this.seen.get(key);
      if (s && now - s.since < REPEAT_WINDOW_MS) {
        s.held++;
        s.last = l;
        return;
      }
      if (s?.held) l.repeated = `${s.held} more like it in the ${Math.round((now - s.since) / 1000)} s before`;
      this.seen.set(key, { since: now, held: 0 });
      if (this.seen.size > 1000) {
        const [oldKey, old] = this.seen.entries().next().value!;
        this.seen.delete(oldKey);
        this.summary(old, now);
      }
    }
    this.print(l);
  }

  /** Prints what is still held back (a count per kind of line, with the last of them), e.g. at stop. */
  flush(cb?: (err?: Error) => void): void {
    const now = (this.o.now ?? Date.now)();
    for (const s of this.seen.values()) this.summary(s, now);
    this.seen.clear();
    cb?.();
  }

  private summary(s: { since: number; held: number; last?: Line }, now: number): void {
    if (s.held && s.last)
      this.print({ ...s.last, repeated: `${s.held} more like it in the last ${Math.round((now - s.since) / 1000)} s (this is the last of them)` });
  }

  private print(l: Line): void {
    const level = levelOf(l);
    const body = this.o.format === 'text' ? textLine(l, !this.o.journald) : JSON.stringify(l);
    this.o.write(`${this.o.journald ? `<${PRIORITY[level] ?? 6}>` : ''}${body}\n`);
  }
}

/** The one root logger; components get children with bindings (STYLE rule 11). To stdout. */
export function createLogger(level: string, dest?: DestinationStream, format: LogFormat = 'auto'): Logger {
  const journald = underJournald(1);
  const text = format === 'text' || (format === 'auto' && (journald || process.stdout.isTTY === true));
  let sink = dest;
  if (!sink) {
    const out = pino.destination(1);
    sink = new LogSink({ format: text ? 'text' : 'json', journald, write: (s) => void out.write(s) });
  }
  return pino(
    {
      level,
      base: { service: 'edgeferry' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Secrets must never reach logs, even if someone logs a whole options object.
      redact: { paths: ['password', '*.password', '*.key', 'key', 'opts.password'], censor: '[redacted]' },
    },
    sink,
  );
}
