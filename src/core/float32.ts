// A float32 (Modbus registers, BACnet REAL) as people and JSON expect it: the shortest decimal that
// reads back as the same float32 — 21.78f is 21.78 whichever protocol carried it, not
// 21.780000686645508 (what the float32 is as a double).
//
// The shortest decimal is found with arithmetic on doubles instead of text: for p = 6…9 significant
// digits, m = |v| × 10^k rounded (k = p − 1 − exponent) is the p-digit decimal toPrecision(p) would
// write, and m / 10^k is exactly the double that text parses to (both operands are exact, and IEEE
// division rounds once — as parsing does). The first p whose double reads back as v is the answer;
// String() of that double is its text. Cases where double arithmetic could differ from decimal
// rounding (a product near a half, powers of ten beyond 10^22) take the text path (`textPath`).

/** Exact powers of ten as doubles (10^0 … 10^22). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** The shortest decimal by text (toPrecision), for the few values the arithmetic path hands over. */
function textPath(v: number): number {
  let s = '';
  for (let p = 6; p <= 9; p++) {
    s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) break;
  }
  return Number(s);
}

/**
 * The double nearest to the shortest decimal that reads back as the same float32 (21.5f → 21.5, not
 * 21.499999046325684); NaN and ±Infinity unchanged. `String()` of the result is that decimal as JSON
 * writes numbers. `v` must be a float32 value (Math.fround(v) === v).
 */
export function shortestFloat32(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v === 0 ? 0 : v;
  const a = v < 0 ? -v : v;
  let e = Math.floor(Math.log10(a));
  // log10 may be off by one next to a power of ten.
  if (e >= -22 && e <= 22) {
    if (e >= 0 ? POW10[e]! > a : 1 / POW10[-e]! > a) e--;
    else if (e + 1 >= 0 ? POW10[e + 1]! <= a : 1 / POW10[-e - 1]! <= a) e++;
  }
  for (let p = 6; p <= 9; p++) {
    const k = p - 1 - e;
    if (k > 22 || k < -22) return textPath(v);
    const scaled = k >= 0 ? a * POW10[k]! : a / POW10[-k]!;
    const floor = Math.floor(scaled);
    const frac = scaled - floor;
    // Near a half the double product may round the other way than the exact decimal would.
    if (frac > 0.4999 && frac < 0.5001) return textPath(v);
    const m = frac >= 0.5 ? floor + 1 : floor;
    const d = k >= 0 ? m / POW10[k]! : m * POW10[-k]!;
    if (Math.fround(d) === a) return v < 0 ? -d : d;
  }
  return textPath(v);
}

/**
 * The shortest decimal that reads back as the same float32, written as JSON writes numbers;
 * undefined for NaN and ±Infinity.
 */
export function float32Text(v: number): string | undefined {
  return Number.isFinite(v) ? String(shortestFloat32(v)) : undefined;
}
