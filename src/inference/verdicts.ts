// What the EL stage publishes per image: a sample of kind "el" whose value is the defect
// probability, with the verdict against the model's threshold, the image's ids (station, line,
// cell from inference.id_pattern), the model that judged it and the timings. Pure.
import { basename } from 'node:path';
import { EL_DEVICE, type Priority, type Sample } from '../core/sample.js';
import type { Manifest } from './model.js';
import type { ImageResult } from './worker.js';

export interface ImageIds {
  station: string;
  line?: string;
  cell?: string;
}

/** Ids from the file name by inference.id_pattern's named groups; station "default" without one. */
export function imageIds(pattern: RegExp | undefined, file: string): ImageIds {
  const g = pattern?.exec(basename(file))?.groups;
  return { station: g?.station ?? 'default', line: g?.line, cell: g?.cell };
}

/** One sample per classified image (results with a probability), all stamped `now`. */
export function verdictSamples(
  results: readonly ImageResult[],
  model: { manifest: Manifest; sha256: string },
  opts: { pattern: RegExp | undefined; priority: Priority | undefined; now: number },
): Sample[] {
  const m = model.manifest;
  return results
    .filter((r) => r.probability !== undefined)
    .map((r) => {
      const id = imageIds(opts.pattern, r.file);
      const p = r.probability!;
      return {
        ts: opts.now,
        kind: 'el',
        device: EL_DEVICE,
        point: id.station,
        value: Math.round(p * 1e6) / 1e6,
        quality: 'good',
        priority: opts.priority,
        channel: 'el:inbox',
        extra: {
          image: basename(r.file),
          station: id.station,
          line: id.line,
          cell: id.cell,
          verdict: p >= m.threshold ? 'defective' : 'ok',
          threshold: m.threshold,
          model: { name: m.name, version: m.version, sha256: model.sha256 },
          preprocess_ms: Math.round(r.preprocessMs * 100) / 100,
          inference_ms: Math.round(r.inferenceMs * 100) / 100,
        },
      };
    });
}
