// Image → model input, exactly as the model card says: decode, greyscale, resize to the model's
// size with the named kernel (fit: fill), raw grey levels 0..255 as float32 NCHW. The worker and
// `edgeferry model eval` both use this, so what is measured is what runs.
import sharp from 'sharp';
import type { Manifest } from './model.js';

sharp.cache(false);

/** ONNX Runtime session options everywhere a model runs (stage worker, eval, bench). */
export const sessionOptions = (threads: number) =>
  ({ intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }) as const;

export async function decodeCell(file: string, input: Manifest['input']): Promise<Buffer> {
  const { data, info } = await sharp(file, { failOn: 'error' })
    .greyscale()
    .removeAlpha()
    .resize(input.width, input.height, { kernel: input.resize_kernel as 'linear', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || data.length !== input.width * input.height) throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${input.width}x${input.height}x1`);
  return data;
}

/** Grey-level images of one size → one float32 batch. */
export function toBatch(images: Buffer[], pixels: number): Float32Array {
  const out = new Float32Array(images.length * pixels);
  images.forEach((img, i) => {
    const base = i * pixels;
    for (let k = 0; k < pixels; k++) out[base + k] = img[k]!;
  });
  return out;
}
