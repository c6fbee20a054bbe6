// The grey-PNG fast path of the EL stage decodes exactly what sharp decodes, refuses damaged files,
// and hands every other kind of image back to sharp.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeGreyPng } from '../../src/inference/png.js';
import { decodeCell } from '../../src/inference/preprocess.js';
import { writeCell } from '../../simulators/el-camera/index.js';

const chunk = (type: string, body: Buffer) => {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
};

/** A grey PNG whose rows use the filter types given, cycling — the encoder side of PNG's filters. */
function greyPng(w: number, h: number, pix: Uint8Array, filters: number[], idatParts = 1): Buffer {
  const raw = Buffer.alloc(h * (w + 1));
  const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : pix[y * w + x]!);
  for (let y = 0; y < h; y++) {
    const f = filters[y % filters.length]!;
    raw[y * (w + 1)] = f;
    for (let x = 0; x < w; x++) {
      const a = at(x - 1, y),
        b = at(x, y - 1),
        c = at(x - 1, y - 1);
      const p = a + b - c;
      const pred = [
        0,
        a,
        b,
        (a + b) >> 1,
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c,
      ][f]!;
      raw[y * (w + 1) + 1 + x] = (pix[y * w + x]! - pred) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // depth
  ihdr[9] = 0; // grey
  const z = deflateSync(raw);
  const step = Math.ceil(z.length / idatParts);
  const idats = Array.from({ length: idatParts }, (_, i) => chunk('IDAT', z.subarray(i * step, (i + 1) * step)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('tEXt', Buffer.from('Software\0test')),
    ...idats,
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const dir = mkdtempSync(join(tmpdir(), 'edgeferry-png-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const input = { name: 'image', width: 300, height: 300, resize_kernel: 'linear', values: 'grey levels 0-255 as float32' as const };

describe('grey PNG fast path', () => {
  const w = 37,
    h = 23;
  let s = 7;
  const pix = Uint8Array.from({ length: w * h }, () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s >> 16) & 0xff);

  it('undoes every row filter (None, Sub, Up, Average, Paeth) and joins split IDAT chunks, as sharp does', async () => {
    const png = greyPng(w, h, pix, [0, 1, 2, 3, 4, 4, 3, 2, 1], 3);
    const ours = decodeGreyPng(png)!;
    expect(ours).toMatchObject({ width: w, height: h });
    expect(Buffer.compare(ours.data, Buffer.from(pix))).toBe(0);
    const { data: theirs, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: w, height: h, channels: 1 });
    expect([...ours.data].findIndex((v, i) => v !== theirs[i])).toBe(-1);
  });

  it('decodes simulated EL cells to the same grey levels as sharp', async () => {
    for (const defect of ['none', 'crack', 'dark-area', 'inactive'] as const) {
      const file = join(dir, `${defect}.png`);
      await writeCell(file, { defect, seed: 3 });
      const ours = await decodeCell(file, input);
      const theirs = await sharp(file).greyscale().raw().toBuffer();
      expect(ours.length).toBe(300 * 300);
      expect(Buffer.compare(ours, theirs), defect).toBe(0);
    }
  });

  it('refuses damaged files with the reason', () => {
    const png = greyPng(w, h, pix, [4]);
    expect(() => decodeGreyPng(png.subarray(0, png.length - 30))).toThrow(/truncated/);
    const flipped = Buffer.from(png);
    flipped.writeUInt8(flipped[70]! ^ 0x40, 70); // inside IDAT data (signature 8 + IHDR 25 + tEXt 25 + IDAT head 8 = 66)
    expect(() => decodeGreyPng(flipped)).toThrow(/CRC mismatch/);
    const badFilter = greyPng(w, h, pix, [0]);
    // Re-encode with an illegal filter octet in row 0.
    const raw = Buffer.alloc(h * (w + 1));
    raw[0] = 9;
    const ihdr = badFilter.subarray(16, 29);
    const bad = Buffer.concat([badFilter.subarray(0, 8), chunk('IHDR', Buffer.from(ihdr)), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
    expect(() => decodeGreyPng(bad)).toThrow(/filter type 9/);
  });

  it('hands colour and resized images to sharp: decodeCell still returns the model size', async () => {
    expect(
      decodeGreyPng(
        await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
          .png()
          .toBuffer(),
      ),
    ).toBeUndefined();
    expect(decodeGreyPng(Buffer.from('not a png'))).toBeUndefined();
    const colour = join(dir, 'colour.png');
    await sharp({ create: { width: 600, height: 600, channels: 3, background: { r: 200, g: 100, b: 50 } } })
      .png()
      .toFile(colour);
    const grey = await decodeCell(colour, input);
    expect(grey.length).toBe(300 * 300);
    const small = join(dir, 'small.png');
    writeFileSync(small, greyPng(w, h, pix, [1]));
    expect((await decodeCell(small, input)).length).toBe(300 * 300);
  });
});
