// A synthetic electroluminescence camera for tests, the demo and benchmarks: it draws 300x300
// greyscale EL images of solar cells — bright active area with texture and noise, dark busbars,
// thin fingers, darker edges — and, for a chosen share of cells, defects: cracks (a dark line
// with a darker, partly disconnected side), dark areas and inactive corners. Files are written
// the way camera software does it: to a temporary name, then renamed into the inbox.
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export type Defect = 'none' | 'crack' | 'dark-area' | 'inactive';

export interface CellOptions {
  defect: Defect;
  seed: number;
  size?: number;
}

/** A small deterministic PRNG (mulberry32), so images are reproducible from a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Raw 8-bit grey pixels of one cell. */
export function drawCell(o: CellOptions): Uint8Array {
  const n = o.size ?? 300;
  const r = rng(o.seed);
  const px = new Float32Array(n * n);
  const base = 150 + r() * 50;
  const poly = r() < 0.5;
  // Active area with large-scale brightness variation (and grain for poly cells).
  const gx = r() * 0.4 - 0.2;
  const gy = r() * 0.4 - 0.2;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let v = base * (1 + gx * (x / n - 0.5) + gy * (y / n - 0.5));
      if (poly) v *= 0.9 + 0.2 * Math.abs(Math.sin((x * 0.11 + y * 0.07) * (1 + ((x ^ y) & 7) * 0.01)));
      const edge = Math.min(x, y, n - 1 - x, n - 1 - y);
      if (edge < 8) v *= 0.55 + edge * 0.05;
      px[y * n + x] = v;
    }
  }
  // Busbars (vertical, dark) and fingers (horizontal, faint).
  const bars = 2 + Math.floor(r() * 3);
  for (let b = 1; b <= bars; b++) {
    const cx = Math.round((b * n) / (bars + 1));
    for (let y = 0; y < n; y++) for (let x = cx - 3; x <= cx + 3; x++) px[y * n + x]! *= 0.35;
  }
  for (let y = 6; y < n; y += 6) for (let x = 0; x < n; x++) px[y * n + x]! *= 0.88;
  // Defects.
  if (o.defect === 'crack') {
    const x0 = r() * n;
    const y0 = r() * n;
    const angle = r() * Math.PI;
    const dx = Math.cos(angle);
    const dy = Math.sin(angle);
    const side = r() < 0.5 ? -1 : 1;
    const reach = 20 + r() * 60;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const d = (x - x0) * dy - (y - y0) * dx; // signed distance to the crack line
        const along = (x - x0) * dx + (y - y0) * dy;
        if (Math.abs(along) > n * 0.45) continue;
        if (Math.abs(d) < 1.5) px[y * n + x]! *= 0.2;
        else if (d * side > 0 && d * side < reach) px[y * n + x]! *= 0.55 + 0.4 * ((d * side) / reach);
      }
    }
  } else if (o.defect === 'dark-area') {
    const cx = r() * n;
    const cy = r() * n;
    const rad = 25 + r() * 45;
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if ((x - cx) ** 2 + (y - cy) ** 2 < rad * rad) px[y * n + x]! *= 0.3;
  } else if (o.defect === 'inactive') {
    const w = Math.floor(n * (0.2 + r() * 0.3));
    const left = r() < 0.5;
    for (let y = 0; y < n; y++) for (let x = 0; x < w; x++) px[y * n + (left ? x : n - 1 - x)]! *= 0.08;
  }
  const out = new Uint8Array(n * n);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(px[i]! + (r() - 0.5) * 18)));
  return out;
}

/** Writes one cell as an 8-bit greyscale PNG, as EL cameras do, at `path` (via a temporary name and a rename). */
export async function writeCell(path: string, o: CellOptions): Promise<void> {
  const n = o.size ?? 300;
  const tmp = `${path}.tmp`;
  await sharp(Buffer.from(drawCell(o)), { raw: { width: n, height: n, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(tmp);
  renameSync(tmp, path);
}

export interface ElCamera {
  readonly written: { file: string; defect: Defect }[];
  /** Resolves once `count` images are in the inbox (never without a count). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export interface CameraOptions {
  inbox: string;
  /** Images per second. */
  rate: number;
  /** Share of defective cells, 0..1. */
  defectShare?: number;
  /** Stop after this many images. */
  count?: number;
  line?: string;
  stations?: string[];
  seed?: number;
}

/** Writes images named `<line>_<station>_<n>.png` into the inbox at `rate` per second. */
export function startElCamera(o: CameraOptions): ElCamera {
  const written: { file: string; defect: Defect }[] = [];
  const r = rng(o.seed ?? 1);
  const stations = o.stations ?? ['S1', 'S2'];
  const defects: Defect[] = ['crack', 'dark-area', 'inactive'];
  let n = 0;
  let stopped = false;
  let busy: Promise<void> = Promise.resolve();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((r) => (finished = r));
  const tick = () => {
    if (stopped) return;
    if (o.count !== undefined && n >= o.count) {
      void busy.then(finished);
      return;
    }
    const due = Math.floor(((performance.now() - started) / 1000) * o.rate) + 1;
    while (n < due && (o.count === undefined || n < o.count)) {
      const i = n++;
      const defect: Defect = r() < (o.defectShare ?? 0.3) ? defects[Math.floor(r() * defects.length)]! : 'none';
      const file = join(o.inbox, `${o.line ?? 'L1'}_${stations[i % stations.length]}_${String(i).padStart(6, '0')}.png`);
      const seed = Math.floor(r() * 2 ** 31);
      busy = busy.then(() => writeCell(file, { defect, seed })).then(() => void written.push({ file, defect }));
    }
    timer = setTimeout(tick, Math.max(5, 1000 / o.rate));
  };
  tick();
  return {
    written,
    done,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await busy;
    },
  };
}
