#!/usr/bin/env node
// Runs the test suite (`npm test`, the README's command) on the Node runtime that releases bundle
// (scripts/runtime.mjs: the current LTS), as well as on the machine's Node. The modules compiled
// against Node's ABI are built for the runtime once (kept in .cache/native/<abi>/) and swapped
// in for the run; the machine's builds are put back afterwards, whatever happens.
//
//   node scripts/test-runtime.mjs [-- vitest arguments]
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { COMPILED_MODULES, compileNatives, ensureRuntime } from './runtime.mjs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(
    'usage: node scripts/test-runtime.mjs [-- vitest arguments]\nRuns npm test on the Node runtime that releases bundle (package.json "edgeferry.runtime").',
  );
  process.exit(0);
}
const root = join(import.meta.dirname, '..');
const nm = join(root, 'node_modules');
const rt = ensureRuntime();
const abi = execFileSync(rt.node, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim();
const built = (mod) => join(nm, mod, 'build', 'Release', `${mod.replace(/-/g, '_')}.node`);
const cached = (dir, mod) => join(root, '.cache', 'native', dir, `${mod}.node`);

// The machine's builds, to put back.
for (const mod of COMPILED_MODULES) {
  mkdirSync(join(root, '.cache', 'native', 'machine'), { recursive: true });
  copyFileSync(built(mod), cached('machine', mod));
}
let status = 1;
try {
  if (COMPILED_MODULES.every((m) => existsSync(cached(abi, m)))) {
    for (const mod of COMPILED_MODULES) copyFileSync(cached(abi, mod), built(mod));
  } else {
    compileNatives(nm, process.arch, rt.dir);
    mkdirSync(join(root, '.cache', 'native', abi), { recursive: true });
    for (const mod of COMPILED_MODULES) copyFileSync(built(mod), cached(abi, mod));
  }
  // npm itself is the machine's (the runtime package carries no npm), run by the runtime's node;
  // every `node` the scripts and tests start is the runtime's, first on PATH.
  const npmCli = process.env.npm_execpath ?? join(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  console.error(`npm test on Node ${rt.version} (${rt.node}, module ABI ${abi})`);
  const extra = process.argv.slice(2).filter((a) => a !== '--');
  const r = spawnSync(rt.node, [npmCli, 'test', ...(extra.length ? ['--', ...extra] : [])], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${join(rt.dir, 'bin')}:${process.env.PATH}`, npm_config_nodedir: rt.dir },
  });
  status = r.status ?? 1;
} finally {
  for (const mod of COMPILED_MODULES) copyFileSync(cached('machine', mod), built(mod));
}
process.exit(status);
