// An installer's first day on a box with nothing but Debian 12: a fresh minbase root (debootstrap,
// no Node.js anywhere), `apt-get install ./edgeferry_<version>_<arch>.deb`, the example's
// placeholders replaced in gateway.yaml and one device map pointed at a (simulated) PLC, `edgeferry
// check`, then the unit's ExecStart run by hand as the unit's user (systemd does not run in a
// chroot) → data at a broker on this machine's loopback; then the default EL model's package as
// docs/install.md installs it, inference.md's `inference:` block, and a verdict on the EL topic for
// an image dropped into the inbox. Needs root; takes the .debs from `npm run release`.
//
//   node dist/scripts/deb-smoke.js [--deb release/edgeferry_0.1.0_amd64.deb] [--keep]
//
// The debootstrapped root is cached as .cache/debian12-minbase.tar (a few minutes the first time);
// every run unpacks a fresh copy of it.
import { appendFileSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import { openDebianBox, pointAtBroker } from './lib/debian-box.js';
import { recipe } from './lib/doc-recipes.js';
import mqtt from 'mqtt';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { start as startSim } from '../simulators/modbus/index.js';
import { registersFromPoints } from '../simulators/modbus/from-device-map.js';
import { DRIVERS } from '../drivers/registry.js';
import type { ModbusPointConfig } from '../drivers/modbus/schema.js';
import { ConfigLoader } from '../src/config/load.js';
import { writeCell } from '../simulators/el-camera/index.js';
import { YamlFile } from '../src/config/yaml-file.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const debArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const model = JSON.parse(readFileSync(join(root, 'models/el-defect-lite/model.json'), 'utf8')) as { version: string };
const values = scriptArgs(
  'deb-smoke',
  'Installs the .deb into a fresh Debian 12 minbase root and runs the gateway from it against a local broker (root only).',
  {
    deb: { type: 'string', default: join(root, 'release', `edgeferry_${pkg.version}_${debArch}.deb`) },
    'model-deb': { type: 'string', default: join(root, 'release', `edgeferry-model-el-defect-lite_${model.version}_all.deb`) },
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
if (!existsSync(values['model-deb'])) fail(`${values['model-deb']}: no such .deb; build it with npm run release`);

// 1. A fresh Debian 12 minbase root.
const box = openDebianBox(root, values.mirror, say);
const inBox = box.run;
const cleanup: (() => Promise<void> | void)[] = [];
let exitCode = 1;
try {
  say(`fresh Debian ${readFileSync(join(box.dir, 'etc/debian_version'), 'utf8').trim()} root in ${box.dir}`);
  const nodeHere = inBox('command -v node nodejs; ls /usr/bin/node* /usr/local/bin/node* 2>/dev/null; true', { quiet: true }).stdout.trim();
  say(`Node.js in the root before installing: ${nodeHere || 'none'}`);
  if (nodeHere) failed('the root has a Node.js already: not the box this is meant to prove');

  // 2. docs/install.md's steps (its ```sh deb-install block) as written, but for the .deb's real
  // name: apt install, the edits (step 4 below), check, and — systemd does not run in a chroot — the
  // unit's ExecStart instead of systemctl enable --now (step 5).
  const steps = recipe('install.md', 'sh deb-install')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
  const step = (re: RegExp) => steps.find((l) => re.test(l)) ?? failed(`docs/install.md deb-install: no step matching ${re}: ${steps.join(' | ')}`);
  const aptLine = step(/^apt install /).replace(/\.\/edgeferry_\S+\.deb/, `./${basename(values.deb)}`);
  const checkLine = step(/^edgeferry check /);
  step(/^systemctl enable --now edgeferry$/);
  copyFileSync(values.deb, join(box.dir, 'tmp', basename(values.deb)));
  say(aptLine);
  if (box.apt(`apt-get update -qq && ${aptLine}`).status !== 0) failed('apt install failed');
  inBox('edgeferry --version; ls -l /usr/bin/edgeferry /opt/edgeferry/current; id edgeferry');
  const shipped = inBox(checkLine);
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
  const etc = join(box.dir, 'etc/edgeferry');
  const edit = (f: string, from: RegExp, to: string) => writeFileSync(join(etc, f), readFileSync(join(etc, f), 'utf8').replace(from, to));
  pointAtBroker(etc, broker);
  edit('devices/line1.example.yaml', /host: 192\.0\.2\.11[^\n]*\n(\s*)# port: 502/, `host: 127.0.0.1\n$1port: ${plc.port}`);
  // Only the press is on this bench: the second device of the map and the RS485 map are switched off.
  edit('devices/line1.example.yaml', /(- name: line1-energy\n)/, '$1    enabled: false\n');
  edit('devices/rs485-meters.example.yaml', /^(\s*)driver: modbus_rtu$/gm, '$1driver: modbus_rtu\n$1enabled: false');
  // The default EL model, as docs/install.md installs it (its ```sh deb-model block, for the .deb's
  // real name), and inference.md's `inference:` block added to the gateway file.
  const modelLine = recipe('install.md', 'sh deb-model')
    .trim()
    .replace(/\.\/edgeferry-model-el-defect-lite_\S+\.deb/, `./${basename(values['model-deb'])}`);
  copyFileSync(values['model-deb'], join(box.dir, 'tmp', basename(values['model-deb'])));
  say(modelLine);
  if (box.apt(`cd /tmp && ${modelLine}`).status !== 0) failed('apt install of the model failed');
  inBox('ls -l /opt/edgeferry/models/el-defect-lite');
  appendFileSync(join(etc, 'gateway.yaml'), `\n${recipe('inference.md', 'yaml inference-config')}`);
  inBox('chown -R root:edgeferry /etc/edgeferry && chmod 0640 /etc/edgeferry/secrets/*');
  const checked = inBox(`${checkLine} && echo "check: ok"`);
  if (checked.status !== 0) failed('check refused the edited config');

  // 5. The unit's ExecStart, by hand, as systemd would start it (its user, its state folder).
  say(`ExecStart: ${/^ExecStart=(.*)$/m.exec(readFileSync(join(box.dir, 'lib/systemd/system/edgeferry.service'), 'utf8'))![1]}`);
  let verdict: (v: string) => void = () => undefined;
  const gotVerdict = new Promise<string>((res) => (verdict = res));
  const got = new Promise<string>((res) => {
    const c = mqtt.connect(broker.url, {
      ca: readFileSync(broker.files.ca),
      cert: readFileSync(broker.files.clientCert),
      key: readFileSync(broker.files.clientKey),
      reconnectPeriod: 200,
    });
    cleanup.push(() => void c.end(true));
    c.on('connect', () => c.subscribe(['plant-a/gw-01/line1-press/#', 'plant-a/gw-01/el/+'], { qos: 1 }));
    c.on('message', (topic, payload) => {
      const m = JSON.parse(payload.toString()) as { value?: unknown; quality?: string; verdict?: string; model?: { version?: string } };
      if (topic.startsWith('plant-a/gw-01/el/') && m.verdict && m.model?.version === model.version) verdict(`${topic} ${payload.toString()}`);
      if (m.quality === 'good' && typeof m.value === 'number') res(`${topic} ${payload.toString()}`);
    });
  });
  let log = '';
  const gw = box.startUnit((t) => (log += t));
  const spawnFailed = new Promise<never>((_, rej) => gw.once('error', rej));
  const timeout = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error(`no data from the gateway in 60 s; its log:\n${log.slice(-3000)}`)), 60_000).unref(),
  );
  const first = await Promise.race([got, timeout, spawnFailed]);
  say(`data at the broker: ${first}`);
  // 6. An EL image into the inbox the gateway made (its user's), written and renamed as cameras do.
  const inbox = join(box.dir, 'var/lib/edgeferry/el-inbox');
  await writeCell(join(inbox, 'L1_S2_000001.png'), { defect: 'crack', seed: 7 });
  const elTimeout = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error(`no EL verdict in 60 s; the gateway's log:\n${log.slice(-3000)}`)), 60_000).unref(),
  );
  say(`EL verdict at the broker: ${await Promise.race([gotVerdict, elTimeout, spawnFailed])}`);
  gw.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => gw.once('exit', res));
  say(`gateway stopped on SIGTERM with exit ${code}`);
  exitCode = code === 0 ? 0 : 1;
} catch (e) {
  console.error(`deb-smoke: ${(e as Error).message}`);
} finally {
  for (const c of cleanup.reverse()) await c();
  say(box.close(values.keep));
}
process.exit(exitCode);
