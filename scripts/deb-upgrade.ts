// An installer's upgrades, start to end, on a box with nothing but Debian 12 (a fresh minbase root):
//   1. apt-get install ./edgeferry_<v>.deb, the broker set, the example maps replaced by one OPC UA
//      device left at every default (Basic256Sha256 SignAndEncrypt, pki_dir in the state folder),
//      the gateway run as the unit runs it (its user, STATE_DIRECTORY), trust set up both ways as
//      its status says, data at the broker;
//   2. apt-get install ./edgeferry_<v>+1.deb with the edited config: no prompt, config untouched,
//      checked by the new release before the switch; the unit restarted → data again;
//   3. apt-get install ./edgeferry_<v>+2.deb, a release whose check refuses this config: the
//      configure step fails with the problems, the running release keeps running (and publishing);
//   4. edgeferry-release rollback: the package becomes what runs again (rebuilt from the kept
//      files), and once more: back to <v>;
//   5. systemd-analyze verify on the unit, then apt-get purge.
// The newer packages are the release's own .deb repacked under a higher version (the refusing one
// with a check that refuses what <v> accepts), so one `npm run release` is enough. systemd does not
// run in a chroot: where postinst would restart the unit, this script restarts its ExecStart.
// Needs root (debootstrap, chroot, mounts).
//
//   node dist/scripts/deb-upgrade.js [--deb release/edgeferry_0.1.0_amd64.deb] [--keep]
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { scriptArgs } from '../src/core/script-args.js';
import { freePort } from '../simulators/free-port.js';
import { startMosquitto } from '../simulators/mqtt-broker/mosquitto.js';
import { open62541Certificate, peersBin, startPeer, type Peer } from '../simulators/peers.js';
import { stopChild } from '../simulators/stop-child.js';
import { openDebianBox, pointAtBroker } from './lib/debian-box.js';
import { recipe } from './lib/doc-recipes.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const debArch = arch === 'arm64' ? 'arm64' : 'amd64';
const values = scriptArgs(
  'deb-upgrade',
  'Installs the .deb into a fresh Debian 12 minbase root, configures an OPC UA device with the defaults, upgrades (unattended), is refused by a newer release (the old one keeps running), rolls back (root only).',
  {
    deb: { type: 'string', default: join(root, 'release', `edgeferry_${pkg.version}_${debArch}.deb`) },
    mirror: { type: 'string', default: 'http://deb.debian.org/debian' },
    keep: { type: 'boolean', default: false },
  },
);
const say = (s: string) => console.log(`\ndeb-upgrade: ${s}`);
function fail(s: string): never {
  console.error(`deb-upgrade: ${s}`);
  process.exit(1);
}
function failed(s: string): never {
  throw new Error(s);
}
if (process.getuid?.() !== 0) fail('needs root (debootstrap, chroot, mounts)');
if (!existsSync(values.deb)) fail(`${values.deb}: no such .deb; build it with npm run release`);

// 1. The packages: this release, and two newer ones made from it.
const work = mkdtempSync(join(tmpdir(), 'edgeferry-debs-'));
const base = `edgeferry-${pkg.version}-linux-${arch}`;
const raw = join(work, 'raw');
execFileSync('dpkg-deb', ['-R', values.deb, raw]);
/** The release's .deb as version <v>+n (its release folder, scripts and control renamed); `refuse`: its check refuses every config. */
function newer(n: number, refuse: boolean): string {
  const version = `${pkg.version}+${n}`;
  const name = `edgeferry-${version}-linux-${arch}`;
  const d = join(work, `v${n}`);
  execFileSync('cp', ['-al', raw, d]); // hard links: quick; a file changed below is replaced, never written through
  renameSync(join(d, 'opt/edgeferry/releases', base), join(d, 'opt/edgeferry/releases', name));
  const rewrite = (f: string, change: (t: string) => string, mode: number) => {
    const text = change(readFileSync(f, 'utf8'));
    rmSync(f);
    writeFileSync(f, text, { mode });
  };
  for (const dir of [join(d, 'DEBIAN'), join(d, 'opt/edgeferry/releases', name, 'packaging/deb/DEBIAN')]) {
    for (const s of ['preinst', 'postinst']) rewrite(join(dir, s), (t) => t.replaceAll(base, name), 0o755);
    rewrite(join(dir, 'control'), (t) => t.replace(/^Version: .*$/m, `Version: ${version}`), 0o644);
  }
  if (refuse) {
    const main = join(d, 'opt/edgeferry/releases', name, 'dist/src/main.js');
    rewrite(
      main,
      // After the #! line: the check of this release refuses every config, with a problem line as check prints them.
      (t) =>
        t.replace(
          /\n/,
          `\nif (process.argv[2] === 'check') { process.stdout.write(process.argv[process.argv.length - 1] + ': mqtt: this release (${version}, made to refuse) expected a setting ${pkg.version} did not need\\n1 problem found\\n'); process.exit(3); }\n`,
        ),
      0o644,
    );
  }
  const out = join(work, `edgeferry_${version}_${debArch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', d, out], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(d, { recursive: true, force: true });
  return out;
}
const debs = { first: values.deb, next: newer(1, false), refused: newer(2, true) };
rmSync(raw, { recursive: true, force: true });

const box = openDebianBox(root, values.mirror, (s) => say(s));
const cleanup: (() => Promise<void> | void)[] = [];
let exitCode = 1;
try {
  for (const f of Object.values(debs)) copyFileSync(f, join(box.dir, 'tmp', basename(f)));
  const apt = box.apt;
  const install = (deb: string) => apt(`apt-get install -y -q ./${basename(deb)}`);
  const status = () => box.run('edgeferry-release status');

  say(`apt-get install ./${basename(debs.first)} (a fresh Debian ${readFileSync(join(box.dir, 'etc/debian_version'), 'utf8').trim()} minbase root)`);
  box.run('apt-get update -qq');
  if (install(debs.first).status !== 0) failed('the first install failed');
  status();

  // The plant: a broker and an OPC UA server (open62541, encrypting policies) on this machine's loopback.
  const broker = await startMosquitto();
  cleanup.push(() => broker.stop());
  const certs = open62541Certificate(mkdtempSync(join(work, 'ua-')));
  const uaPort = await freePort();
  let server: Peer | undefined;
  const startServer = async (trust?: string) => {
    await server?.stop();
    server = await startPeer(join(peersBin(), 'ref_server_sec_trust'), [String(uaPort), '127.0.0.1'], /New DiscoveryUrl added/, {
      env: { UA_CERT: certs.cert, UA_KEY: certs.key, ...(trust ? { UA_TRUST: trust } : {}) },
    });
  };
  await startServer();
  cleanup.push(() => server?.stop());

  // The installer's edits: the broker; the example maps replaced by their own OPC UA map, every default kept.
  const etc = join(box.dir, 'etc/edgeferry');
  pointAtBroker(etc, broker);
  for (const f of readdirSync(join(etc, 'devices'))) rmSync(join(etc, 'devices', f));
  writeFileSync(
    join(etc, 'devices/line2.yaml'),
    `version: 1\ndevices:\n  - name: line2\n    driver: opcua\n    poll_interval_ms: 500\n    connection: { endpoint: "opc.tcp://127.0.0.1:${uaPort}" }\n    points:\n      - { name: answer, node_id: "ns=1;s=the.answer" }\n`,
  );
  box.run('chown -R root:edgeferry /etc/edgeferry && chmod 0640 /etc/edgeferry/secrets/* /etc/edgeferry/devices/*');
  say('edgeferry check /etc/edgeferry/gateway.yaml (broker set; devices/line2.yaml: OPC UA, security and pki_dir left at their defaults)');
  if (box.run('edgeferry check /etc/edgeferry/gateway.yaml && echo "check: ok"').status !== 0) failed('check refused the edited config');
  const configSum = () =>
    createHash('sha256')
      .update(readFileSync(join(etc, 'gateway.yaml')))
      .digest('hex')
      .slice(0, 16);
  const edited = configSum();

  // The gateway as the unit runs it; data and statuses watched at the broker.
  const seen: { topic: string; json: Record<string, unknown>; at: number }[] = [];
  const sub = mqtt.connect(broker.url, {
    ca: readFileSync(broker.files.ca),
    cert: readFileSync(broker.files.clientCert),
    key: readFileSync(broker.files.clientKey),
    reconnectPeriod: 200,
  });
  cleanup.push(() => void sub.end(true));
  sub.on('connect', () => sub.subscribe('plant-a/gw-01/#', { qos: 1 }));
  sub.on('message', (topic, payload) => {
    try {
      seen.push({ topic, json: JSON.parse(payload.toString()) as Record<string, unknown>, at: Date.now() });
    } catch {
      // not JSON: not ours to judge here
    }
  });
  const waitFor = async (what: string, ok: (m: (typeof seen)[number]) => boolean, since: number, ms = 60_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const m = seen.find((x) => x.at >= since && ok(x));
      if (m) return m;
      if (Date.now() > end) failed(`${what}: not within ${ms} ms; the gateway's log:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const reading = (since: number) =>
    waitFor('a good OPC UA reading at the broker', (m) => m.topic === 'plant-a/gw-01/line2/answer' && m.json.quality === 'good', since);
  let gw: ChildProcess | undefined;
  let log = '';
  const startGateway = () => {
    gw = box.startUnit((t) => (log += t));
  };
  const stopGateway = () => stopChild(gw);
  cleanup.push(stopGateway);
  /** What systemctl restart does: stop, then the ExecStart of whatever release current is now. */
  const restartUnit = async () => {
    await stopGateway();
    startGateway();
  };

  say('the gateway started as the unit starts it (user edgeferry, STATE_DIRECTORY=/var/lib/edgeferry); trust set up as its status says');
  let t = Date.now();
  startGateway();
  const untrusted = await waitFor(
    'the untrusted-server advice',
    (m) => m.topic === 'plant-a/gw-01/status/line2' && String(m.json.reason).includes('is not trusted'),
    t,
  );
  console.log(`  status/line2: ${String(untrusted.json.reason)}`);
  const advice = /move (\S+) to (\S+) \(or set trust_unknown_server/.exec(String(untrusted.json.reason));
  if (!advice) failed('no "move … to …" advice in the status');
  renameSync(join(box.dir, advice[1]!), join(box.dir, advice[2]!, basename(advice[1]!)));
  t = Date.now();
  const refusedByServer = await waitFor(
    "the server's refusal of the gateway's certificate",
    (m) => m.topic === 'plant-a/gw-01/status/line2' && String(m.json.reason).includes('does not trust the gateway'),
    t,
  );
  console.log(`  status/line2: ${String(refusedByServer.json.reason)}`);
  const ownDer = join(work, 'gateway.der');
  execFileSync('openssl', ['x509', '-in', join(box.dir, 'var/lib/edgeferry/pki/opcua/own/certs/client_certificate.pem'), '-outform', 'der', '-out', ownDer], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  await startServer(ownDer);
  t = Date.now();
  console.log(`  ${JSON.stringify((await reading(t)).json)}`);
  box.run('ls -ld /var/lib/edgeferry/pki/opcua /var/lib/edgeferry/pki/opcua/*; stat -c "%U:%G %a %n" /var/lib/edgeferry/pki/opcua/own/private/*');
  if (/EACCES|EROFS/.test(log)) failed(`the gateway's log has a permission error:\n${log.slice(-2000)}`);

  // 2. The unattended upgrade: no prompt, config untouched, checked by the new release first.
  say(`apt-get install ./${basename(debs.next)} (stdin /dev/null: a prompt would fail it)`);
  if (install(debs.next).status !== 0) failed('the upgrade failed');
  if (configSum() !== edited) failed('the upgrade changed /etc/edgeferry/gateway.yaml');
  console.log(`  /etc/edgeferry/gateway.yaml unchanged (sha256 ${edited}…); devices/: ${readdirSync(join(etc, 'devices')).join(', ')}`);
  status();
  await restartUnit();
  t = Date.now();
  console.log(`  after the restart: ${JSON.stringify((await reading(t)).json)}`);

  // 3. A newer release that refuses this config: the configure step fails, the running one stays.
  say(`apt-get install ./${basename(debs.refused)} (its check refuses this config)`);
  const refusal = install(debs.refused);
  if (refusal.status === 0) failed('the refusing release was installed without complaint');
  if (!refusal.text.includes('made to refuse') || !refusal.text.includes('stays the running release'))
    failed("the configure step failed, but not with the check's problems");
  status();
  if (!/running:\s+edgeferry-[^ ]*\+1-/.test(box.run('edgeferry-release status', { quiet: true }).stdout))
    failed('current does not point at the release that was running');
  t = Date.now();
  console.log(`  still publishing after the refusal: ${JSON.stringify((await reading(t)).json)}`);
  await restartUnit(); // as a crash or a reboot would: it comes back on the kept release
  t = Date.now();
  console.log(`  and after a restart: ${JSON.stringify((await reading(t)).json)}`);

  // 4. Rollback: first the package back to what runs, then to the release before it.
  // The line docs/install.md gives for it, as written.
  const rollback = recipe('install.md', 'sh deb-rollback')
    .split('\n')[0]!
    .replace(/\s+#.*$/, '');
  say(`${rollback} (the package becomes what runs)`);
  if (apt(rollback).status !== 0) failed('rollback failed');
  status();
  say(`${rollback} (again: to the release before)`);
  if (apt(rollback).status !== 0) failed('rollback failed');
  status();
  if (
    !box.run("dpkg-query -W -f '${Version}' edgeferry", { quiet: true }).stdout.startsWith(pkg.version) ||
    box.run('dpkg -s edgeferry', { quiet: true }).stdout.includes('half')
  )
    failed(`dpkg does not say ${pkg.version}, installed`);
  await restartUnit();
  t = Date.now();
  console.log(`  after the rollback: ${JSON.stringify((await reading(t)).json)}`);
  await stopGateway();

  // 5. The unit on this box, and a purge.
  say('systemd-analyze verify /lib/systemd/system/edgeferry.service');
  const verify = box.run('systemd-analyze verify /lib/systemd/system/edgeferry.service && echo "verify: clean"');
  if (verify.status !== 0 || verify.text.split('\n').some((l) => l !== 'verify: clean')) failed('systemd-analyze verify is not clean');
  say('apt-get purge edgeferry');
  apt('apt-get purge -y -q edgeferry');
  box.run('ls /opt/edgeferry /etc/edgeferry 2>&1; ls -d /var/lib/edgeferry');
  exitCode = 0;
} catch (e) {
  console.error(`deb-upgrade: ${(e as Error).message}`);
} finally {
  for (const c of cleanup.reverse()) await c();
  say(box.close(values.keep));
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
