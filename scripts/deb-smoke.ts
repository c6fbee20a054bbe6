// An installer's first day on a box with nothing but Debian 12: a fresh minbase root (debootstrap,
// no Node.js anywhere), `apt-get install ./edgeferry_<version>_<arch>.deb`, the example's
// placeholders replaced in gateway.yaml and one device map pointed at a (simulated) PLC, `edgeferry
// check`, then the unit's ExecStart run by hand as the unit's user (systemd does not run in a
// chroot) → data at a broker on this machine's loopback. Needs root; takes the .deb from
// `npm run release`.
//
//   node dist/scripts/deb-smoke.js [--deb release/edgeferry_0.1.0_amd64.deb] [--keep]
//
// The debootstrapped root is cached as .cache/debian12-minbase.tar (a few minutes the first time);
// every run unpacks a fresh copy of it.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import mqtt from 'mqtt';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim } from '../simulators/modbus/index.js';
import { registersFromPoints } from '../simulators/modbus/from-device-map.js';
import { DRIVERS } from '../drivers/registry.js';
import type { ModbusPointConfig } from '../drivers/modbus/schema.js';
import { ConfigLoader } from '../src/config/load.js';
import { YamlFile } from '../src/config/yaml-file.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const debArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const values = scriptArgs(
  'deb-smoke',
  'Installs the .deb into a fresh Debian 12 minbase root and runs the gateway from it against a local broker (root only).',
  {
    deb: { type: 'string', default: join(root, 'release', `edgeferry_${pkg.version}_${debArch}.deb`) },
    mirror: { type: 'string', default: 'http://deb.debian.org/debian' },
    keep: { type: 'boolean', default: false },
  },
);
const say = (s: string) => console.log(`deb-smoke: ${s}`);
/** Before anything is mounted: say why and exit. */
function fail(s: string): never {
  console.error(`deb-smoke: ${s}`);
  process.exit(1);
}
/** Once the root is mounted: throw, so that the finally below always unmounts. */
function failed(s: string): never {
  throw new Error(s);
}
if (process.getuid?.() !== 0) fail('needs root (debootstrap, chroot, mounts)');
if (!existsSync(values.deb)) fail(`${values.deb}: no such .deb; build it with npm run release`);

// 1. A fresh Debian 12 minbase root.
const cache = join(root, '.cache', 'debian12-minbase.tar');
if (!existsSync(cache)) {
  if (spawnSync('debootstrap', ['--version']).error) execFileSync('apt-get', ['install', '-y', '-qq', 'debootstrap'], { stdio: 'inherit' });
  const boot = mkdtempSync(join(tmpdir(), 'edgeferry-debootstrap-'));
  say(`debootstrap --variant=minbase bookworm (once; cached as ${cache})`);
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', boot, values.mirror], { stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(join(root, '.cache'), { recursive: true });
  execFileSync('tar', ['-cf', cache, '-C', boot, '.']);
  rmSync(boot, { recursive: true, force: true });
}
const box = mkdtempSync(join(tmpdir(), 'edgeferry-box-'));
execFileSync('tar', ['-xf', cache, '-C', box]);
chmodSync(box, 0o755); // the root of a system (the tar's "." may say 0700): its users must be able to enter it
const mounts: string[] = [];
const mount = (args: string[], at: string) => {
  execFileSync('mount', [...args, join(box, at)]);
  mounts.unshift(join(box, at));
};
const inBox = (cmd: string, opts: { quiet?: boolean } = {}) => {
  const r = spawnSync('/usr/sbin/chroot', [box, '/bin/sh', '-c', cmd], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' },
  });
  const text = `${r.stdout}${r.stderr}`.trimEnd();
  if (!opts.quiet && text) console.log(text.replace(/^/gm, '  | '));
  return r;
};
const cleanup: (() => Promise<void> | void)[] = [];
let exitCode = 1;
try {
  mount(['-t', 'proc', 'proc'], 'proc');
  mount(['--bind', '/dev'], 'dev');
  copyFileSync('/etc/resolv.conf', join(box, 'etc/resolv.conf'));
  say(`fresh Debian ${readFileSync(join(box, 'etc/debian_version'), 'utf8').trim()} root in ${box}`);
  const nodeHere = inBox('command -v node nodejs; ls /usr/bin/node* /usr/local/bin/node* 2>/dev/null; true', { quiet: true }).stdout.trim();
  say(`Node.js in the root before installing: ${nodeHere || 'none'}`);
  if (nodeHere) failed('the root has a Node.js already: not the box this is meant to prove');

  // 2. apt install ./edgeferry_*.deb (its Depends come from the mirror).
  copyFileSync(values.deb, join(box, 'tmp', basename(values.deb)));
  say(`apt-get install ./${basename(values.deb)}`);
  if (
    inBox(
      'apt-get update -qq && apt-get install -y -qq ./tmp/' +
        basename(values.deb) +
        ' 2>&1 | grep -v "^debconf\\|^Selecting\\|^Preparing\\|^Unpacking\\|^Setting up\\|^Processing\\|^(Reading"',
    ).status !== 0
  )
    failed('apt-get install failed');
  inBox('edgeferry --version; ls -l /usr/bin/edgeferry /opt/edgeferry/current; id edgeferry');
  const shipped = inBox('edgeferry check /etc/edgeferry/gateway.yaml');
  say(`check on the installed example: exit ${shipped.status} (placeholders reported above)`);
  if (shipped.status !== 3) failed('expected check to refuse the unedited example (exit 3)');

  // 3. The plant: a broker and a PLC on this machine's loopback (shared with the chroot).
  const broker = await startMosquitto();
  cleanup.push(() => broker.stop());
  // The press of the shipped line1 map, simulated from that map's own points.
  const map = join(root, 'config/devices/line1.example.yaml');
  const press = new ConfigLoader(DRIVERS, root).loadDeviceMap(new YamlFile(map, map)).devices.find((d) => d.name === 'line1-press')!;
  const plc = await startSim({ registers: registersFromPoints(press.points as ModbusPointConfig[]) });
  cleanup.push(() => plc.stop());

  // 4. The first day's edits: broker, CA, client certificate, password; line1's press → the PLC.
  const etc = join(box, 'etc/edgeferry');
  const edit = (f: string, from: RegExp, to: string) => writeFileSync(join(etc, f), readFileSync(join(etc, f), 'utf8').replace(from, to));
  edit('gateway.yaml', /url: mqtts:\/\/broker\.plant-a\.example:8883/, `url: ${broker.url}`);
  edit('gateway.yaml', /# cert: \/etc\/edgeferry\/client\.pem/, 'cert: secrets/client.pem');
  edit('gateway.yaml', /# key: \/etc\/edgeferry\/client\.key/, 'key: secrets/client.key');
  copyFileSync(broker.files.ca, join(etc, 'secrets/ca.example.pem'));
  copyFileSync(broker.files.clientCert, join(etc, 'secrets/client.pem'));
  copyFileSync(broker.files.clientKey, join(etc, 'secrets/client.key'));
  writeFileSync(join(etc, 'secrets/mqtt-password.example'), 'issued-by-the-broker-admin\n');
  edit('devices/line1.example.yaml', /host: 192\.0\.2\.11[^\n]*\n(\s*)# port: 502/, `host: 127.0.0.1\n$1port: ${plc.port}`);
  // Only the press is on this bench: the second device of the map and the RS485 map are switched off.
  edit('devices/line1.example.yaml', /(- name: line1-energy\n)/, '$1    enabled: false\n');
  edit('devices/rs485-meters.example.yaml', /^(\s*)driver: modbus_rtu$/gm, '$1driver: modbus_rtu\n$1enabled: false');
  inBox('chown -R root:edgeferry /etc/edgeferry && chmod 0640 /etc/edgeferry/secrets/*');
  const checked = inBox('edgeferry check /etc/edgeferry/gateway.yaml && echo "check: ok"');
  if (checked.status !== 0) failed('check refused the edited config');

  // 5. The unit's ExecStart, by hand, as its user, in its working directory.
  const unit = readFileSync(join(box, 'lib/systemd/system/edgeferry.service'), 'utf8');
  const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  say(`ExecStart: ${execStart}`);
  inBox('mkdir -p /var/lib/edgeferry && chown edgeferry:edgeferry /var/lib/edgeferry && chmod 0700 /var/lib/edgeferry');
  const got = new Promise<string>((res) => {
    const c = mqtt.connect(broker.url, {
      ca: readFileSync(broker.files.ca),
      cert: readFileSync(broker.files.clientCert),
      key: readFileSync(broker.files.clientKey),
      reconnectPeriod: 200,
    });
    cleanup.push(() => void c.end(true));
    c.on('connect', () => c.subscribe('plant-a/gw-01/line1-press/#', { qos: 1 }));
    c.on('message', (topic, payload) => {
      const m = JSON.parse(payload.toString()) as { value?: unknown; quality?: string };
      if (m.quality === 'good' && typeof m.value === 'number') res(`${topic} ${payload.toString()}`);
    });
  });
  const gw = spawn('/usr/sbin/chroot', ['--userspec=edgeferry:edgeferry', box, '/bin/sh', '-c', `cd /var/lib/edgeferry && exec ${execStart}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin', NODE_ENV: 'production', MALLOC_ARENA_MAX: '2' },
  });
  let log = '';
  const spawnFailed = new Promise<never>((_, rej) => gw.once('error', rej));
  gw.stdout.on('data', (d: Buffer) => (log += d.toString()));
  gw.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const timeout = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error(`no data from the gateway in 60 s; its log:\n${log.slice(-3000)}`)), 60_000).unref(),
  );
  const first = await Promise.race([got, timeout, spawnFailed]);
  say(`data at the broker: ${first}`);
  gw.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => gw.once('exit', res));
  say(`gateway stopped on SIGTERM with exit ${code}`);
  exitCode = code === 0 ? 0 : 1;
} catch (e) {
  console.error(`deb-smoke: ${(e as Error).message}`);
} finally {
  for (const c of cleanup.reverse()) await c();
  for (const m of mounts) spawnSync('umount', [m]);
  // Never remove the root while anything is still mounted in it (a bind of /dev, say).
  const still = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.startsWith(box));
  if (still.length) say(`left ${box} in place: still mounted there: ${still.map((l) => l.split(' ')[1]).join(', ')}`);
  else if (values.keep) say(`root kept in ${box}`);
  else rmSync(box, { recursive: true, force: true });
}
process.exit(exitCode);
