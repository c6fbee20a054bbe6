// A fresh Debian 12 minbase root to install the .deb into, as an installer's box would be (no
// Node.js, no procps until a package asks for it): debootstrapped once and cached as
// .cache/debian12-minbase.tar, unpacked fresh for every run, with /proc and /dev mounted and the
// host's resolver, so apt can fetch the .deb's Depends. Commands run in it with chroot; systemd
// does not run there, so the scripts run a unit's ExecStart themselves. Root only.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DebianBox {
  /** The root's path on this machine. */
  dir: string;
  /** Runs `cmd` with /bin/sh in the root; prints its output indented unless quiet. */
  run(cmd: string, opts?: { quiet?: boolean }): { status: number | null; stdout: string; stderr: string; text: string };
  /** An apt command line run in /tmp with no stdin (a prompt fails it), its progress lines left out; its exit code kept. */
  apt(cmd: string): { status: number | null; stdout: string; stderr: string; text: string };
  /**
   * The installed unit's ExecStart started as systemd would start it here: as its user, in its
   * state folder (made as StateDirectory= makes it), with STATE_DIRECTORY and the unit's
   * Environment= set. Its output goes to `log`.
   */
  startUnit(log: (text: string) => void): ChildProcess;
  /** Unmounts, then removes the root (unless keep, or something is still mounted there). */
  close(keep: boolean): string;
}

export function openDebianBox(root: string, mirror: string, say: (s: string) => void): DebianBox {
  const cache = join(root, '.cache', 'debian12-minbase.tar');
  if (!existsSync(cache)) {
    if (spawnSync('debootstrap', ['--version']).error) execFileSync('apt-get', ['install', '-y', '-qq', 'debootstrap'], { stdio: 'inherit' });
    const boot = mkdtempSync(join(tmpdir(), 'edgeferry-debootstrap-'));
    say(`debootstrap --variant=minbase bookworm (once; cached as ${cache})`);
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', boot, mirror], { stdio: ['ignore', 'ignore', 'inherit'] });
    mkdirSync(join(root, '.cache'), { recursive: true });
    execFileSync('tar', ['-cf', cache, '-C', boot, '.']);
    rmSync(boot, { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-box-'));
  execFileSync('tar', ['-xf', cache, '-C', dir]);
  chmodSync(dir, 0o755); // the root of a system (the tar's "." may say 0700): its users must be able to enter it
  const mounts: string[] = [];
  const mount = (args: string[], at: string) => {
    execFileSync('mount', [...args, join(dir, at)]);
    mounts.unshift(join(dir, at));
  };
  mount(['-t', 'proc', 'proc'], 'proc');
  mount(['--bind', '/dev'], 'dev');
  mount(['--bind', '/dev/pts'], 'dev/pts'); // apt logs through a pty
  copyFileSync('/etc/resolv.conf', join(dir, 'etc/resolv.conf'));
  const QUIET =
    '^debconf\\|^Selecting\\|^Preparing\\|^(Reading\\|^Reading\\|^Building\\|^Need to\\|^Get:\\|^Fetched\\|^After this\\|^The following\\|^  \\|^Processing\\|^Unpacking lib\\|^Setting up lib\\|^$\\|^WARNING: apt does not have';
  const box: DebianBox = {
    dir,
    startUnit(log) {
      const unit = readFileSync(join(dir, 'lib/systemd/system/edgeferry.service'), 'utf8');
      const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!;
      const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
      box.run('mkdir -p /var/lib/edgeferry && chown edgeferry:edgeferry /var/lib/edgeferry && chmod 0700 /var/lib/edgeferry');
      const p = spawn('/usr/sbin/chroot', ['--userspec=edgeferry:edgeferry', dir, '/bin/sh', '-c', `cd /var/lib/edgeferry && exec ${execStart}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: '/usr/bin:/bin', ...env, STATE_DIRECTORY: '/var/lib/edgeferry' },
      });
      p.stdout.on('data', (d: Buffer) => log(d.toString()));
      p.stderr.on('data', (d: Buffer) => log(d.toString()));
      return p;
    },
    apt: (cmd) => box.run(`cd /tmp && ${cmd} </dev/null >/tmp/apt.out 2>&1; rc=$?; grep -v "${QUIET}" /tmp/apt.out; exit $rc`),
    run(cmd, opts = {}) {
      const r = spawnSync('/usr/sbin/chroot', [dir, '/bin/sh', '-c', cmd], {
        encoding: 'utf8',
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8' },
      });
      const text = `${r.stdout}${r.stderr}`.replace(/\r/g, '').trimEnd();
      if (!opts.quiet && text) console.log(text.replace(/^/gm, '  | '));
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, text };
    },
    close(keep) {
      for (const m of mounts) spawnSync('umount', [m]);
      // Never remove the root while anything is still mounted in it (a bind of /dev, say).
      const still = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[1]?.startsWith(dir));
      if (still.length) return `left ${dir} in place: still mounted there: ${still.map((l) => l.split(' ')[1]).join(', ')}`;
      if (keep) return `root kept in ${dir}`;
      rmSync(dir, { recursive: true, force: true });
      return `removed ${dir}`;
    },
  };
  return box;
}

/** The first day's edits of the shipped gateway.yaml and secrets: this broker, its CA, a client certificate, a password. */
export function pointAtBroker(etc: string, broker: { url: string; files: { ca: string; clientCert: string; clientKey: string } }): void {
  const edit = (f: string, from: RegExp, to: string) => writeFileSync(join(etc, f), readFileSync(join(etc, f), 'utf8').replace(from, to));
  edit('gateway.yaml', /url: mqtts:\/\/broker\.plant-a\.example:8883/, `url: ${broker.url}`);
  edit('gateway.yaml', /# cert: \/etc\/edgeferry\/client\.pem/, 'cert: secrets/client.pem');
  edit('gateway.yaml', /# key: \/etc\/edgeferry\/client\.key/, 'key: secrets/client.key');
  copyFileSync(broker.files.ca, join(etc, 'secrets/ca.example.pem'));
  copyFileSync(broker.files.clientCert, join(etc, 'secrets/client.pem'));
  copyFileSync(broker.files.clientKey, join(etc, 'secrets/client.key'));
  writeFileSync(join(etc, 'secrets/mqtt-password.example'), 'issued-by-the-broker-admin\n');
}
