// A scratch folder for EL tests: a private copy of a shipped model (so a test can replace it) and
// an empty inbox. The caller removes `work` when done.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

/** The shipped model folders: 0.2.0, the fast one, and 0.3.0 (EfficientNet-Lite0), the accurate one. */
export const MODELS = ['el-defect', 'el-defect-lite'] as const;
export type ShippedModel = (typeof MODELS)[number];

/** A shipped model's folder, its manifest and the path of its model file. */
export function shippedModel(folder: ShippedModel): {
  dir: string;
  manifest: Record<string, unknown> & { file: string; version: string; threshold: number };
  file: string;
} {
  const dir = join(root, 'models', folder);
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { file: string; version: string; threshold: number };
  return { dir, manifest, file: join(dir, manifest.file) };
}

export function elWorkdir(prefix: string, folder: ShippedModel = 'el-defect'): { work: string; modelDir: string; inbox: string } {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const modelDir = join(work, 'model');
  mkdirSync(modelDir);
  const m = shippedModel(folder);
  copyFileSync(m.file, join(modelDir, m.manifest.file));
  copyFileSync(join(m.dir, 'model.json'), join(modelDir, 'model.json'));
  const inbox = join(work, 'inbox');
  mkdirSync(inbox);
  return { work, modelDir, inbox };
}
