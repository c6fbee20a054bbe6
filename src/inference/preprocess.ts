// Image → model input, exactly as the model card says: decode, greyscale, resize to the model's
// size with the named kernel (fit: fill), raw grey levels 0..255 as float32 NCHW. The worker and
// `edgeferry model eval` both use this, so what is measured is what runs.
import { GatewayError } from '../errors.js';
import { readFileSync } from 'node:fs';
import type { Manifest } from './model.js';
import { decodeGreyPng } from './png.js';

/** ONNX Runtime session options everywhere a model runs (stage worker, eval, bench). */
export const sessionOptions = (threads: number) =>
  ({ intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }) as const;

// sharp (libvips) is loaded only when an image needs it: a worker that only ever sees 8-bit grey
// PNGs of the model's size never maps libvips and its thread pool.
type Sharp = typeof import('sharp').default;
let sharpLoaded: Promise<Sharp> | undefined;
const loadSharp = () =>
  (sharpLoaded ??= import('sharp').then((m) => {
    m.default.cache(false);
    m.default.concurrency(1);
    return m.default;
  }));

/**
 * One image file → the model's input grey levels. An 8-bit grey PNG already at the model's size is
 * decoded by the fast path (no resize needed, so nothing the kernel could change); everything else
 * goes through sharp: greyscale, resize with the model card's kernel (fit: fill).
 */
export async function decodeCell(file: string, input: Manifest['input']): Promise<Buffer> {
  // A synchronous read: this runs on the inference worker's own thread (or in the eval command),
  // where a thread-pool hop costs more (0.35 ms median, ms-long tails) than the read itself.
  const bytes = readFileSync(file);
  const grey = decodeGreyPng(bytes);
  if (grey && grey.width === input.width && grey.height === input.height) return grey.data;
  const sharp = await loadSharp();
  const { data, info } = await sharp(bytes, { failOn: 'error' })
    .greyscale()
    .removeAlpha()
    .resize(input.width, input.height, { kernel: input.resize_kernel as 'linear', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || data.length !== input.width * input.height)
    throw new GatewayError('GW_ERR_EL_IMAGE', `decoded to ${info.width}x${info.height}x${info.channels}, expected ${input.width}x${input.height}x1`);
  return data;
}

/** Grey levels → the model's float32 input (values unchanged; the graph normalises). */
export const toInput = (img: Uint8Array): Float32Array => new Float32Array(img);
