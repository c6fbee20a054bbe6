#!/usr/bin/env node
// The Node runtime that releases bundle and that CI also runs the tests on: the current LTS, taken
// from the npm registry's node-linux-<arch> packages (official Node builds: bin/node and the
// headers the native modules compile against — nothing downloaded from anywhere else). npm checks
// the tarball against the registry's integrity hash; it is unpacked once into .cache/runtime/.
//
//   node scripts/runtime.mjs [--arch x64|arm64]   # prints the runtime's folder (bin/node, include/node)
//
// The version is package.json's "edgeferry.runtime" (one version for both architectures: the
// registry does not always carry the newest patch for both).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
export const RUNTIME_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).edgeferry.runtime;
const ARCHES = ['x64', 'arm64'];
/**
 * The dependencies compiled against Node's own ABI (not Node-API): rebuilt for each runtime. (The
 * runtime's SQLite binding is better-sqlite3-napi, prebuilt for Node-API: see src/buffer/sqlite.ts.)
 */
export const COMPILED_MODULES = ['unix-dgram'];
const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };

/** The cross compiler needed to build for `arch` on this machine, or null when none is needed; throws when missing. */
export function crossCompiler(arch) {
  if (arch === process.arch) return null;
  const t = CROSS[arch];
  try {
    execFileSync(`${t}-g++`, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`building for ${arch} needs the cross compiler ${t}-g++: apt-get install g++-${t}`);
  }
  return { CC: `${t}-gcc`, CXX: `${t}-g++`, AR: `${t}-ar`, LINK: `${t}-g++`, CC_host: 'gcc', CXX_host: 'g++' };
}

/**
 * Compiles COMPILED_MODULES under `nodeModules` for `arch` against the runtime's headers
 * (--nodedir: nothing downloaded), with the machine's npm's node-gyp.
 */
export function compileNatives(nodeModules, arch, runtimeDir) {
  const nodeGyp =
    process.env.npm_config_node_gyp ?? join(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const env = { ...process.env, ...crossCompiler(arch) };
  for (const mod of COMPILED_MODULES) {
    console.error(`compiling ${mod} for linux-${arch}, Node ${runtimeDir.match(/node-v([\d.]+)/)?.[1] ?? runtimeDir}`);
    execFileSync(process.execPath, [nodeGyp, 'rebuild', `--arch=${arch}`, `--nodedir=${runtimeDir}`, '--jobs=max'], {
      cwd: join(nodeModules, mod),
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
}

/** The unpacked runtime for `arch` (fetched on first use): { dir, node, version }. */
export function ensureRuntime(arch = process.arch, version = RUNTIME_VERSION) {
  if (!ARCHES.includes(arch)) throw new Error(`runtime: no Node runtime for ${arch} (expected ${ARCHES.join(' or ')})`);
  const cache = process.env.EDGEFERRY_RUNTIME_CACHE ?? join(root, '.cache', 'runtime');
  const dir = join(cache, `node-v${version}-linux-${arch}`);
  if (!existsSync(join(dir, 'bin', 'node')) || !existsSync(join(dir, 'include', 'node', 'node.h'))) {
    mkdirSync(cache, { recursive: true });
    const tmp = mkdtempSync(join(cache, '.fetch-'));
    try {
      const spec = `node-linux-${arch}@${version}`;
      console.error(`runtime: fetching ${spec} from the npm registry`);
      const file = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', tmp], { encoding: 'utf8', cwd: tmp }).trim().split('\n').pop();
      execFileSync('tar', ['-xzf', join(tmp, file), '-C', tmp]);
      rmSync(dir, { recursive: true, force: true });
      renameSync(join(tmp, 'package'), dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { dir, node: join(dir, 'bin', 'node'), version };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const usage = 'usage: node scripts/runtime.mjs [--arch x64|arm64]\nFetches (once) and prints the folder of the Node runtime that releases bundle.';
  let values;
  try {
    ({ values } = parseArgs({ options: { arch: { type: 'string', default: process.arch }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    console.error(`runtime: ${e.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  try {
    console.log(ensureRuntime(values.arch).dir);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
