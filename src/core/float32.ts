// A float32 (Modbus registers, BACnet REAL) as people and JSON expect it: the shortest decimal that
// reads back as the same float32 — 21.78f is 21.78 whichever protocol carried it, not
// 21.780000686645508 (what the float32 is as a double).

/**
 * The shortest decimal that reads back as the same float32 (21.5f → "21.5", not 21.499999046325684),
 * written as JSON writes numbers; undefined for NaN and ±Infinity. The text comes with the search
 * for the shortest decimal, so a float32 is never converted to text twice (`Reading.json`).
 */
export function float32Text(v: number): string | undefined {
  if (!Number.isFinite(v)) return undefined;
  let s = '';
  for (let p = 6; p <= 9; p++) {
    s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) break;
  }
  // toPrecision's fixed notation minus the fraction's trailing zeros is exactly what String() gives
  // for a number of at most 9 significant digits; its exponent notation differs from String()'s.
  if (s.includes('e')) return String(Number(s));
  if (s.includes('.')) {
    let end = s.length;
    while (s.charCodeAt(end - 1) === 48) end--; // '0'
    if (s.charCodeAt(end - 1) === 46) end--; // '.'
    s = s.slice(0, end);
  }
  return s === '-0' ? '0' : s;
}

export function shortestFloat32(v: number): number {
  const text = float32Text(v);
  return text === undefined ? v : Number(text);
}
