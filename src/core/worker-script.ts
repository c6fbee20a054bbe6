// Where a worker thread's script is: the compiled .js of `name` beside the module that starts it.
// When that module runs from its TypeScript source (vitest), the worker is still the one
// `npm run build` put in dist/ — a worker thread cannot load .ts.
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export function workerScript(moduleUrl: string, name: string): string {
  const here = fileURLToPath(moduleUrl);
  const dir = dirname(here);
  if (!here.endsWith('.ts')) return join(dir, `${name}.js`);
  let root = dir;
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  return join(root, 'dist', relative(root, dir), `${name}.js`);
}
