#!/usr/bin/env node
// Builds a release tarball for one Linux architecture: the compiled gateway, its production
// dependencies with that architecture's native modules only, the EL model, config examples, the
// systemd unit and the installer.
//
//   npm run release -- --arch arm64     # → release/edgeferry-<version>-linux-arm64.tar.gz
//   npm run release -- --arch x64
//
// Native modules: onnxruntime-node, sharp (@img/*) and the serialport bindings ship prebuilt
// binaries in their npm packages (the other platforms' are pruned). better-sqlite3 and
// unix-dgram are compiled here — for another architecture with Debian's cross compiler
// (apt-get install g++-aarch64-linux-gnu) — against this Node's headers; the box must run the same
// Node major version (20: module ABI 115), e.g. Debian 13's nodejs. No binary is downloaded.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { arch: { type: 'string', default: process.arch }, out: { type: 'string', default: join(root, 'release') }, keep: { type: 'boolean', default: false } } });
const arch = values.arch;
const ELF_MACHINE = { x64: 62, arm64: 183 };
const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };
if (!(arch in ELF_MACHINE)) fail(`--arch ${arch}: expected arm64 or x64`);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = `edgeferry-${pkg.version}-linux-${arch}`;

function fail(msg) {
  console.error(`release: ${msg}`);
  process.exit(1);
}
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts }).trim();

// 1. Build.
console.log(`building ${name}`);
run('npm', ['run', 'build', '--silent'], { cwd: root });

// 2. Stage what ships.
const work = mkdtempSync(join(tmpdir(), 'edgeferry-release-'));
const stage = join(work, name);
mkdirSync(stage);
for (const d of ['src', 'drivers', 'simulators']) cpSync(join(root, 'dist', d), join(stage, 'dist', d), { recursive: true });
for (const f of ['package.json', 'package-lock.json', '.npmrc', 'README.md']) cpSync(join(root, f), join(stage, f));
for (const d of ['config', 'systemd', 'docs']) cpSync(join(root, d), join(stage, d), { recursive: true });
mkdirSync(join(stage, 'models'));
cpSync(join(root, 'models', 'el-defect'), join(stage, 'models', 'el-defect'), { recursive: true });

// 3. Production dependencies for the target: optional platform packages (sharp's @img/*) are
// chosen by --cpu/--os/--libc; no install scripts run (they would build for this machine).
run('npm', ['ci', '--omit=dev', '--ignore-scripts', `--cpu=${arch}`, '--os=linux', '--libc=glibc', '--no-audit', '--no-fund'], { cwd: stage });

// 4. The modules that compile, for the target.
const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const cross = arch !== process.arch;
const env = { ...process.env };
if (cross) {
  const t = CROSS[arch];
  try {
    sh(`${t}-g++`, ['--version']);
  } catch {
    fail(`cross-compiling for ${arch} needs ${t}-g++: apt-get install g++-${t}`);
  }
  Object.assign(env, { CC: `${t}-gcc`, CXX: `${t}-g++`, AR: `${t}-ar`, LINK: `${t}-g++`, CC_host: 'gcc', CXX_host: 'g++' });
}
for (const mod of ['better-sqlite3', 'unix-dgram']) {
  console.log(`compiling ${mod} for linux-${arch}`);
  run(process.execPath, [nodeGyp, 'rebuild', `--arch=${arch}`, '--jobs=max'], { cwd: join(stage, 'node_modules', mod), env });
}

// 5. Prune: other platforms' binaries, build intermediates, sources of compiled modules.
const prune = (p) => rmSync(join(stage, 'node_modules', p), { recursive: true, force: true });
const ortBin = 'onnxruntime-node/bin/napi-v6';
for (const os of readdirSync(join(stage, 'node_modules', ortBin))) {
  if (os !== 'linux') prune(`${ortBin}/${os}`);
  else for (const a of readdirSync(join(stage, 'node_modules', ortBin, 'linux'))) if (a !== arch) prune(`${ortBin}/linux/${a}`);
}
const sp = '@serialport/bindings-cpp/prebuilds';
for (const d of readdirSync(join(stage, 'node_modules', sp))) if (d !== `linux-${arch}`) prune(`${sp}/${d}`);
for (const f of readdirSync(join(stage, 'node_modules', sp, `linux-${arch}`))) if (f.includes('.musl.')) prune(`${sp}/linux-${arch}/${f}`);
prune('better-sqlite3/build/Release/test_extension.node');
for (const mod of ['better-sqlite3', 'unix-dgram']) {
  prune(`${mod}/build/Release/obj.target`);
  prune(`${mod}/build/Release/.deps`);
  prune(`${mod}/build/Release/obj`);
  prune(`${mod}/build/deps`);
  prune(`${mod}/deps`);
  prune(`${mod}/src`);
}

// 6. Every native module must be for the target.
const natives = [];
const walk = (d) => {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.node') || /\.so(\.\d+)*$/.test(e.name)) natives.push(p);
  }
};
walk(join(stage, 'node_modules'));
const wrong = [];
for (const f of natives) {
  const fd = openSync(f, 'r');
  const head = Buffer.alloc(20);
  readSync(fd, head, 0, 20, 0);
  closeSync(fd);
  if (head.readUInt32BE(0) !== 0x7f454c46 || head.readUInt16LE(18) !== ELF_MACHINE[arch]) wrong.push(relative(stage, f));
}
if (wrong.length) fail(`native files not for linux-${arch}:\n  ${wrong.join('\n  ')}`);
writeFileSync(join(stage, 'RELEASE'), `${name}\nbuilt ${new Date().toISOString()} with node ${process.version}\nnative modules (${natives.length}):\n${natives.map((f) => `  ${relative(stage, f)}`).join('\n')}\n`);

// 7. Pack.
mkdirSync(values.out, { recursive: true });
const tarball = join(values.out, `${name}.tar.gz`);
run('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', work, name]);
const unpacked = Number(sh('du', ['-sb', stage]).split(/\s/)[0]);
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
console.log(`${tarball}: ${mb(statSync(tarball).size)} (${mb(unpacked)} unpacked, ${natives.length} native files, all linux-${arch})`);
if (!values.keep) rmSync(work, { recursive: true, force: true });
else console.log(`staging kept in ${stage}`);
if (!existsSync(tarball)) fail('no tarball written');
