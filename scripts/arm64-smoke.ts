// The arm64 release on an x86-64 machine: every native file in it is aarch64 (`file`), and the
// gateway runs from it — its bundled aarch64 Node and native modules — under qemu-aarch64-static
// (user-mode emulation, the aarch64 glibc from Debian's cross packages), polling a simulated PLC
// and publishing to a broker on loopback. Also tries to load onnxruntime-node there and says what
// happened. Needs: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross.
//
//   node dist/scripts/arm64-smoke.js [--tarball release/edgeferry-<version>-linux-arm64.tar.gz]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import mqtt from 'mqtt';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim } from '../simulators/modbus/index.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const values = scriptArgs('arm64-smoke', 'Runs the arm64 release under qemu-aarch64-static against a local broker and simulated PLC.', {
  tarball: { type: 'string', default: join(root, 'release', `edgeferry-${pkg.version}-linux-arm64.tar.gz`) },
  sysroot: { type: 'string', default: '/usr/aarch64-linux-gnu' },
});
const say = (s: string) => console.log(`arm64-smoke: ${s}`);
const qemu = '/usr/bin/qemu-aarch64-static';
if (spawnSync(qemu, ['--version']).error) {
  console.error('arm64-smoke: needs qemu-aarch64-static: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'edgeferry-arm64-'));
const stops: (() => Promise<void> | void)[] = [() => rmSync(work, { recursive: true, force: true })];
let exitCode = 1;
try {
  execFileSync('tar', ['-xzf', values.tarball, '-C', work]);
  const rel = join(work, basename(values.tarball, '.tar.gz'));
  const natives = readFileSync(join(rel, 'RELEASE'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());
  let aarch64 = 0;
  for (const f of natives) {
    const kind = execFileSync('file', ['-b', join(rel, f)], { encoding: 'utf8' }).trim();
    const ok = /ARM aarch64/.test(kind);
    if (ok) aarch64++;
    say(`${ok ? 'aarch64' : 'NOT aarch64'}: ${f} (${kind.split(',').slice(0, 2).join(',')})`);
  }
  if (aarch64 !== natives.length) throw new Error(`${natives.length - aarch64} native files are not aarch64`);
  const node = (args: string[], opts: { cwd?: string } = {}) =>
    spawn(qemu, ['-L', values.sysroot, join(rel, 'runtime/bin/node'), ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const run = (args: string[]) => spawnSync(qemu, ['-L', values.sysroot, join(rel, 'runtime/bin/node'), ...args], { encoding: 'utf8', cwd: rel });
  say(`bundled runtime under qemu: ${run(['-p', 'process.arch + " " + process.version']).stdout.trim()}`);
  const ort = run(['-e', 'require("onnxruntime-node"); console.log("onnxruntime-node loaded")']);
  say(
    `onnxruntime-node under qemu: ${ort.status === 0 ? ort.stdout.trim() : `did not load (exit ${ort.status ?? ort.signal}): ${(ort.stderr || '').trim().split('\n').slice(-2).join(' / ')}`}`,
  );

  const broker = await startMosquitto();
  stops.unshift(() => broker.stop());
  const plc = await startSim({ registers: [{ area: 'holding', address: 0, type: 'float32', generator: { kind: 'sine', min: 10, max: 20, period_s: 30 } }] });
  stops.unshift(() => plc.stop());
  writeFileSync(
    join(work, 'devices.yaml'),
    `version: 1\ndevices:\n  - name: press\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: ${plc.port} }\n    points:\n      - { name: pressure, address: 0, type: float32, unit: bar }\n`,
  );
  writeFileSync(
    join(work, 'gateway.yaml'),
    `version: 1\nsite: plant\ngateway_id: arm\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nhealth: { enabled: false }\n`,
  );
  const check = run([join(rel, 'dist/src/main.js'), 'check', join(work, 'gateway.yaml')]);
  say(`check under qemu: exit ${check.status} ${check.stdout.trim()}`);
  const got = new Promise<string>((res) => {
    const c = mqtt.connect(broker.url, {
      ca: readFileSync(broker.files.ca),
      cert: readFileSync(broker.files.clientCert),
      key: readFileSync(broker.files.clientKey),
    });
    stops.unshift(() => void c.end(true));
    c.on('connect', () => c.subscribe('plant/arm/press/pressure', { qos: 1 }));
    c.on('message', (t, p) => res(`${t} ${p.toString()}`));
  });
  const started = performance.now();
  const gw = node([join(rel, 'dist/src/main.js'), 'run', '--config', join(work, 'gateway.yaml')], { cwd: work });
  let log = '';
  gw.stdout.on('data', (d: Buffer) => (log += d.toString()));
  gw.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no data in 120 s; log:\n${log.slice(-3000)}`)), 120_000).unref());
  const first = await Promise.race([got, timeout]);
  say(`data from the emulated arm64 gateway after ${((performance.now() - started) / 1000).toFixed(1)} s: ${first}`);
  gw.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => gw.once('exit', r));
  say(`stopped on SIGTERM with exit ${code}`);
  exitCode = code === 0 ? 0 : 1;
} catch (e) {
  console.error(`arm64-smoke: ${(e as Error).message}`);
} finally {
  for (const s of stops) await s();
}
process.exit(exitCode);
