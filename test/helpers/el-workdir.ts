// A scratch folder for EL tests: a private copy of the shipped model (so a test can replace it)
// and an empty inbox. The caller removes `work` when done.
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

export function elWorkdir(prefix: string): { work: string; modelDir: string; inbox: string } {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const modelDir = join(work, 'model');
  mkdirSync(modelDir);
  for (const f of ['model.onnx', 'model.json']) copyFileSync(join(root, 'models/el-defect', f), join(modelDir, f));
  const inbox = join(work, 'inbox');
  mkdirSync(inbox);
  return { work, modelDir, inbox };
}
