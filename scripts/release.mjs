#!/usr/bin/env node
// Builds the release for one Linux architecture — everything a box needs but glibc and systemd:
//   release/edgeferry-<version>-linux-<arch>.tar.gz   for systemd/install.sh (any distribution)
//   release/edgeferry_<version>_<deb arch>.deb         for apt install ./edgeferry_*.deb
// Both hold the compiled gateway, the Node runtime it runs on (scripts/runtime.mjs: the current
// LTS from the npm registry's node-linux-<arch> package, so the native modules' ABI always
// matches), its production dependencies with that architecture's native modules only, config
// examples (inert: see docs/install.md), the systemd unit and sysusers file.
// The EL defect models are NOT in them: they are derived from a CC BY-NC-SA dataset, so each ships
// as its own artefact that an operator installs knowingly (one per models/<folder>):
//   release/edgeferry-model-<folder>-<model version>.tar.gz and edgeferry-model-<folder>_<v>_all.deb
//
//   npm run release -- --arch arm64     (cross-compiles: apt-get install g++-aarch64-linux-gnu)
//   npm run release -- --arch x64 [--no-deb] [--keep]
//
// Native modules: onnxruntime-node, sharp (@img/*), the serialport bindings and better-sqlite3 13
// (as better-sqlite3-napi) ship prebuilt Node-API binaries in their npm packages (the other
// platforms' are pruned); unix-dgram is compiled here against the bundled runtime's headers. No binary is downloaded
// from anywhere but the npm registry.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { compileNatives, crossCompiler, ensureRuntime } from './runtime.mjs';

const root = join(import.meta.dirname, '..');
const USAGE =
  'usage: npm run release -- [--arch x64|arm64] [--out DIR] [--no-deb] [--keep]\nBuilds the release tarball, the .deb and the EL model artefacts into release/.';
let values;
try {
  ({ values } = parseArgs({
    options: {
      arch: { type: 'string', default: process.arch },
      out: { type: 'string', default: join(root, 'release') },
      keep: { type: 'boolean', default: false },
      deb: { type: 'boolean', default: true },
      help: { type: 'boolean', short: 'h' },
    },
    allowNegative: true,
  }));
} catch (e) {
  console.error(`release: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const arch = values.arch;
const ELF_MACHINE = { x64: 62, arm64: 183 };
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' };
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = `edgeferry-${pkg.version}-linux-${arch}`;

function fail(msg) {
  console.error(`release: ${msg}`);
  process.exit(1);
}
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts }).trim();
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;

// The .deb's maintainer scripts. Installed inert: the user and the folders are made, the unit is
// known to systemd, nothing is enabled or started (the shipped config is an example that
// `edgeferry check` refuses until it is edited). preinst and postinst are systemd/install.sh's
// functions (the same steps as the tarball's installer) with a dispatch of their own: preinst
// keeps the running release's files before dpkg replaces them; postinst writes the config where
// there is none (it is never a conffile: no prompt on upgrade), checks it with the new release and
// only then switches and restarts — a refusal fails the configure step with the problems, and the
// release that was running keeps running. Purge removes the config, never the buffer.
const installSh = readFileSync(join(root, 'systemd', 'install.sh'), 'utf8');
const installFns = installSh.slice(0, installSh.indexOf('# ---- commands'));
const debPreinst = (rel) => `${installFns}
# ---- preinst ($1: install or upgrade, from dpkg) ----
case "\${1:-}" in install|upgrade) cmd_keep ${rel} ;; esac
exit 0
`;
const debPostinst = (rel) => `${installFns}
# ---- postinst ($1: configure, from dpkg) ----
case "\${1:-}" in configure) activate ${rel} no deb ;; esac
exit 0
`;
const DEB_PRERM = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now edgeferry || true
fi
`;
const DEB_POSTRM = `#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  # Not dpkg's: the link to the running release, the rollback target, the kept previous release.
  rm -rf /opt/edgeferry/current /opt/edgeferry/previous /opt/edgeferry/kept /opt/edgeferry/.current.new /opt/edgeferry/.rollback /opt/edgeferry/.rollback.deb
  rmdir /opt/edgeferry/releases /opt/edgeferry 2>/dev/null || true
fi
if [ "$1" = purge ]; then
  rm -rf /etc/edgeferry
  if [ -d /var/lib/edgeferry ] || [ -d /var/lib/private/edgeferry ]; then
    echo "edgeferry: kept the buffer in /var/lib/edgeferry (samples not yet delivered may be in it); remove it with: rm -rf /var/lib/edgeferry"
  fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
`;
// Every models/<folder> with a model.json ships as edgeferry-model-<folder>; a NOTICE file in the
// folder (the origin and licence of pretrained starting weights) is appended to its licence.
const modelLicence = (folder) => `edgeferry EL defect model (${folder})

This model is a work derived from the ELPV dataset (Buerhop-Lutz et al. 2018; Deitsch et al.
2019), (c) ZAE Bayern, https://github.com/zae-bayern/elpv-dataset, licensed under the Creative
Commons Attribution-NonCommercial-ShareAlike 4.0 International licence (CC BY-NC-SA 4.0,
https://creativecommons.org/licenses/by-nc-sa/4.0/). The model carries the same terms:
attribution, non-commercial use only, share-alike. Commercial use, such as running it in a
production plant, needs ZAE Bayern's permission.

The model card (${folder}/README.md) says how it was trained and measured.
edgeferry itself is Apache-2.0 and does not need this model; it is a separate artefact.
`;

// 0. What the build needs, before anything is built: the target, the cross compiler, dpkg-deb.
if (!(arch in ELF_MACHINE)) fail(`--arch ${arch}: expected arm64 or x64`);
try {
  crossCompiler(arch);
} catch (e) {
  fail(e.message);
}
if (values.deb) {
  try {
    sh('dpkg-deb', ['--version']);
  } catch {
    fail('the .deb needs dpkg-deb (apt-get install dpkg), or build without it: --no-deb');
  }
}
const runtime = ensureRuntime(arch);

const work = mkdtempSync(join(tmpdir(), 'edgeferry-release-'));
try {
  // 1. Build.
  console.log(`building ${name} (Node ${runtime.version} bundled)`);
  run('npm', ['run', 'build', '--silent'], { cwd: root });

  // 2. Stage what ships.
  const stage = join(work, name);
  mkdirSync(stage);
  for (const d of ['src', 'drivers', 'simulators']) cpSync(join(root, 'dist', d), join(stage, 'dist', d), { recursive: true });
  for (const f of ['package.json', 'package-lock.json', 'README.md', 'LICENSE']) cpSync(join(root, f), join(stage, f));
  for (const d of ['config', 'systemd', 'docs']) cpSync(join(root, d), join(stage, d), { recursive: true });
  // The runtime: the node binary and its licence (the headers stay behind).
  mkdirSync(join(stage, 'runtime', 'bin'), { recursive: true });
  cpSync(runtime.node, join(stage, 'runtime', 'bin', 'node'));
  cpSync(join(runtime.dir, 'LICENSE'), join(stage, 'runtime', 'LICENSE'));
  // The command: runs the gateway on the bundled runtime, wherever the release is unpacked.
  mkdirSync(join(stage, 'bin'));
  cpSync(join(root, 'scripts', 'edgeferry.sh'), join(stage, 'bin', 'edgeferry'));
  chmodSync(join(stage, 'bin', 'edgeferry'), 0o755);

  // 3. Production dependencies for the target: optional platform packages (sharp's @img/*) are
  // chosen by --cpu/--os/--libc; no install scripts run (they would build for this machine).
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', `--cpu=${arch}`, '--os=linux', '--libc=glibc', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: stage,
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });

  // 4. The modules that compile, for the target and the bundled runtime.
  compileNatives(join(stage, 'node_modules'), arch, runtime.dir);

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
  // SQLite: the runtime loads better-sqlite3-napi (src/buffer/sqlite.ts); 12.x is for Node 20 checkouts only.
  prune('better-sqlite3');
  const bsq = 'better-sqlite3-napi/prebuilds';
  for (const f of readdirSync(join(stage, 'node_modules', bsq))) if (f !== `linux-${arch}.node`) prune(`${bsq}/${f}`);
  for (const d of ['deps', 'src']) prune(`better-sqlite3-napi/${d}`);
  for (const d of ['build/Release/obj.target', 'build/Release/.deps', 'build/Release/obj', 'src']) prune(`unix-dgram/${d}`);

  // 6. Every native file must be for the target.
  const natives = [join(stage, 'runtime', 'bin', 'node')];
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
  writeFileSync(
    join(stage, 'RELEASE'),
    `${name}\nbuilt ${new Date().toISOString()}\nruntime node v${runtime.version} (bundled: runtime/bin/node)\nnative files (${natives.length}):\n${natives.map((f) => `  ${relative(stage, f)}`).join('\n')}\n`,
  );

  // 7. Pack: the tarball.
  mkdirSync(values.out, { recursive: true });
  const tarball = join(values.out, `${name}.tar.gz`);
  run('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', work, name]);
  const unpacked = Number(sh('du', ['-sb', stage]).split(/\s/)[0]);
  console.log(
    `${tarball}: ${mb(statSync(tarball).size)} (${mb(unpacked)} unpacked, ${natives.length} native files, all linux-${arch}, Node ${runtime.version})`,
  );

  // 8. The .deb: the same layout as install.sh makes (/opt/edgeferry/releases/<name>, current → it).
  if (values.deb) {
    const deb = join(values.out, `edgeferry_${pkg.version}_${DEB_ARCH[arch]}.deb`);
    buildDeb({ stage, name, deb, installedKb: Math.ceil(unpacked / 1024) });
    console.log(`${deb}: ${mb(statSync(deb).size)}`);
  }

  // 9. The EL models, each on its own, with its licence.
  for (const folder of readdirSync(join(root, 'models')).filter((f) => existsSync(join(root, 'models', f, 'model.json')))) {
    const model = JSON.parse(readFileSync(join(root, 'models', folder, 'model.json'), 'utf8'));
    const mname = `edgeferry-model-${folder}-${model.version}`;
    const mstage = join(work, mname);
    mkdirSync(mstage);
    cpSync(join(root, 'models', folder), join(mstage, folder), { recursive: true });
    const notice = join(root, 'models', folder, 'NOTICE');
    writeFileSync(join(mstage, 'LICENSE'), modelLicence(folder) + (existsSync(notice) ? `\n${readFileSync(notice, 'utf8')}` : ''));
    const mtar = join(values.out, `${mname}.tar.gz`);
    run('tar', ['-czf', mtar, '--owner=0', '--group=0', '-C', work, mname]);
    console.log(`${mtar}: ${mb(statSync(mtar).size)} (CC BY-NC-SA 4.0: install it knowingly, see its LICENSE)`);
    if (values.deb) {
      const mdeb = join(values.out, `edgeferry-model-${folder}_${model.version}_all.deb`);
      buildModelDeb({ mstage, folder, version: model.version, deb: mdeb });
      console.log(`${mdeb}: ${mb(statSync(mdeb).size)}`);
    }
  }
  if (values.keep) console.log(`staging kept in ${work}`);
} finally {
  if (!values.keep) rmSync(work, { recursive: true, force: true });
}

function buildDeb({ stage, name, deb, installedKb }) {
  const d = join(work, 'deb');
  rmSync(d, { recursive: true, force: true });
  // The release under /opt/edgeferry/releases/<name>; current → it is made by postinst (never by
  // dpkg, so that a refused upgrade can leave it on the release that runs).
  const rel = join(d, 'opt', 'edgeferry', 'releases', name);
  mkdirSync(join(d, 'opt', 'edgeferry', 'releases'), { recursive: true });
  cpSync(stage, rel, { recursive: true });
  mkdirSync(join(d, 'usr', 'bin'), { recursive: true });
  symlinkSync('/opt/edgeferry/current/bin/edgeferry', join(d, 'usr', 'bin', 'edgeferry'));
  // edgeferry-release status|rollback: the running release's installer.
  mkdirSync(join(d, 'usr', 'sbin'), { recursive: true });
  symlinkSync('/opt/edgeferry/current/systemd/install.sh', join(d, 'usr', 'sbin', 'edgeferry-release'));
  mkdirSync(join(d, 'lib', 'systemd', 'system'), { recursive: true });
  cpSync(join(stage, 'systemd', 'edgeferry.service'), join(d, 'lib', 'systemd', 'system', 'edgeferry.service'));
  mkdirSync(join(d, 'usr', 'lib', 'sysusers.d'), { recursive: true });
  cpSync(join(stage, 'systemd', 'edgeferry.sysusers'), join(d, 'usr', 'lib', 'sysusers.d', 'edgeferry.conf'));
  // No /etc in the package: postinst writes the config from the release's examples where there is
  // none, so no file there is a conffile and an upgrade never asks.
  const control = [
    'Package: edgeferry',
    `Version: ${pkg.version}`,
    `Architecture: ${DEB_ARCH[arch]}`,
    'Maintainer: edgeferry developers <edgeferry@users.noreply.github.com>',
    `Installed-Size: ${installedKb}`,
    // procps: /bin/kill for the unit's ExecReload (a minbase Debian lacks it).
    'Depends: libc6 (>= 2.28), libstdc++6 (>= 8), systemd, procps',
    'Suggests: edgeferry-model-el-defect-lite | edgeferry-model-el-defect',
    'Section: net',
    'Priority: optional',
    'Homepage: https://github.com/edgeferry/edgeferry',
    `Description: ${pkg.description}`,
    ` Polls Modbus TCP/RTU, OPC UA and BACnet MS/TP devices from YAML device maps, keeps every`,
    ` reading in a SQLite store-and-forward buffer and publishes over MQTT/TLS. Bundles its own`,
    ` Node.js ${runtime.version} runtime. Installed inert: edit /etc/edgeferry, run`,
    ` "edgeferry check /etc/edgeferry/gateway.yaml", then "systemctl enable --now edgeferry".`,
    '',
  ].join('\n');
  const scripts = { control, preinst: debPreinst(name), postinst: debPostinst(name), prerm: DEB_PRERM, postrm: DEB_POSTRM };
  // DEBIAN/, and a copy in the release itself: `edgeferry-release rollback` rebuilds this .deb from
  // the kept files once a newer one has replaced it.
  for (const dir of [join(d, 'DEBIAN'), join(rel, 'packaging', 'deb', 'DEBIAN')]) {
    mkdirSync(dir, { recursive: true });
    for (const [n, text] of Object.entries(scripts)) {
      writeFileSync(join(dir, n), text);
      if (n !== 'control') chmodSync(join(dir, n), 0o755);
    }
  }
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z6', '--build', d, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function buildModelDeb({ mstage, folder, version, deb }) {
  const d = join(work, 'model-deb');
  const pkgName = `edgeferry-model-${folder}`;
  rmSync(d, { recursive: true, force: true });
  mkdirSync(join(d, 'opt', 'edgeferry', 'models'), { recursive: true });
  cpSync(join(mstage, folder), join(d, 'opt', 'edgeferry', 'models', folder), { recursive: true });
  mkdirSync(join(d, 'usr', 'share', 'doc', pkgName), { recursive: true });
  cpSync(join(mstage, 'LICENSE'), join(d, 'usr', 'share', 'doc', pkgName, 'copyright'));
  mkdirSync(join(d, 'DEBIAN'));
  writeFileSync(
    join(d, 'DEBIAN', 'control'),
    [
      `Package: ${pkgName}`,
      `Version: ${version}`,
      'Architecture: all',
      'Maintainer: edgeferry developers <edgeferry@users.noreply.github.com>',
      'Section: non-free/science',
      'Priority: optional',
      'Description: EL solar-cell defect model for edgeferry (CC BY-NC-SA 4.0, non-commercial)',
      ' A CNN that classifies electroluminescence images of solar cells, trained on the ELPV',
      " dataset (ZAE Bayern). Licensed CC BY-NC-SA 4.0: commercial use needs ZAE Bayern's permission.",
      ` Installs into /opt/edgeferry/models/${folder} (inference.model_dir).`,
      '',
    ].join('\n'),
  );
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', d, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
}
