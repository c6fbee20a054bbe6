// Text and values that come from outside (a command's payload, a device's answer, a config file)
// are bounded wherever the gateway repeats them — results, statuses, log lines — and the cut is
// visible: a 1 MiB string sent to a uint16 point is refused with its first characters and its size,
// not echoed twice over.

/** Characters of an outside value repeated in a result, status or log line. */
export const ECHO_CHARS = 200;
/** Characters of a reason (which may quote outside text) in a result or log line. */
export const REASON_CHARS = 500;

/** `text` with control characters escaped, at most `max` characters, "…" and the full length when cut. */
export function excerpt(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}… (${text.length} characters)` : clean;
}

/** A value as JSON text (bigint as digits), bounded. */
export const valueText = (v: unknown): string => {
  const text = typeof v === 'bigint' ? v.toString() : (JSON.stringify(v) ?? String(v));
  return text.length > ECHO_CHARS ? excerpt(text, ECHO_CHARS) : text;
};

/** The value itself when its JSON text is short, otherwise that text cut (a string, so a reader sees it is not the value). */
export function echo(v: unknown): unknown {
  if (v === undefined || v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  const text = JSON.stringify(v) ?? String(v);
  return text.length > ECHO_CHARS ? excerpt(text, ECHO_CHARS) : v;
}
