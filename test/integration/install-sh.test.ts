// systemd/install.sh into a scratch root (DESTDIR): a fresh install, an upgrade that keeps an
// edited config, a release refused because the config has problems (nothing switched), a
// rollback, a repeat install (idempotent), and uninstall with and without --purge.
// The "releases" are the real build (dist/, config/, systemd/) packed as release.mjs names them,
// with node_modules linked to this checkout's instead of installed (that part is release.mjs's).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'edgeferry-install-'));
const root = join(work, 'root');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';

function release(version: string): string {
  const name = `edgeferry-${version}-linux-${arch}`;
  const dir = join(work, 'build', name);
  mkdirSync(dir, { recursive: true });
  for (const d of ['src', 'drivers', 'simulators']) cpSync(join(repo, 'dist', d), join(dir, 'dist', d), { recursive: true });
  for (const d of ['config', 'systemd']) cpSync(join(repo, d), join(dir, d), { recursive: true });
  cpSync(join(repo, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  // The bundled runtime: this machine's node stands in for it (release.mjs copies the real one).
  mkdirSync(join(dir, 'runtime', 'bin'), { recursive: true });
  symlinkSync(process.execPath, join(dir, 'runtime', 'bin', 'node'));
  mkdirSync(join(dir, 'bin'));
  cpSync(join(repo, 'scripts', 'edgeferry.sh'), join(dir, 'bin', 'edgeferry'));
  writeFileSync(join(dir, 'RELEASE'), `${name}\nbuilt 2026-11-25T00:00:00.000Z\nruntime node ${process.version} (bundled: runtime/bin/node)\n`);
  const tarball = join(work, `${name}.tar.gz`);
  const t = spawnSync('tar', ['-czf', tarball, '-C', join(work, 'build'), name]);
  expect(t.status).toBe(0);
  return tarball;
}

const sh = (...args: string[]) => {
  const r = spawnSync('sh', [join(repo, 'systemd/install.sh'), ...args], { encoding: 'utf8', env: { ...process.env, DESTDIR: root } });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};
const current = () => readlinkSync(join(root, 'opt/edgeferry/current'));
const v1 = release('1.0.0');
const v2 = release('1.0.1');
const v3 = release('1.0.2');

describe('install.sh (DESTDIR scratch root)', () => {
  it('installs fresh: release, current link, unit on the bundled runtime, user, the inert example config private', () => {
    const r = sh('install', v1);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/gateway\.yaml is the shipped example: .* refuses to start until its placeholders are replaced/);
    expect(readFileSync(join(root, 'etc/edgeferry/schema/device-map.schema.json'), 'utf8')).toContain('"$schema"');
    expect(current()).toBe(`releases/edgeferry-1.0.0-linux-${arch}`);
    const unit = readFileSync(join(root, 'etc/systemd/system/edgeferry.service'), 'utf8');
    expect(unit).toContain(
      'ExecStart=/opt/edgeferry/current/runtime/bin/node /opt/edgeferry/current/dist/src/main.js run --config /etc/edgeferry/gateway.yaml',
    );
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toMatch(/^edgeferry:/m);
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^dialout:.*edgeferry/m);
    const gid = Number(/^edgeferry:x:(\d+):/m.exec(readFileSync(join(root, 'etc/group'), 'utf8'))![1]);
    const cfg = statSync(join(root, 'etc/edgeferry/gateway.yaml'));
    expect(cfg.mode & 0o777).toBe(0o640);
    expect(cfg.gid).toBe(gid);
    expect(statSync(join(root, 'etc/edgeferry/secrets')).mode & 0o777).toBe(0o750);
    expect(readlinkSync(join(root, 'usr/local/bin/edgeferry'))).toBe('/opt/edgeferry/current/bin/edgeferry');
  });

  it('upgrades: an edited config is kept (the new one goes beside it), a deleted example map stays deleted, current switches, the old release stays', () => {
    const file = join(root, 'etc/edgeferry/gateway.yaml');
    // What an installer does on the first day: the placeholders replaced with the plant's values.
    const edit = (f: string, from: RegExp, to: string) =>
      writeFileSync(join(root, 'etc/edgeferry', f), readFileSync(join(root, 'etc/edgeferry', f), 'utf8').replace(from, to));
    edit('gateway.yaml', /gateway_id: gw-01/, 'gateway_id: gw-07');
    edit('gateway.yaml', /broker\.plant-a\.example/, 'broker.plant-a.lan');
    writeFileSync(join(root, 'etc/edgeferry/secrets/mqtt-password.example'), 'from-the-broker-admin\n');
    writeFileSync(join(root, 'etc/edgeferry/secrets/ca.example.pem'), readFileSync(join(repo, 'test/fixtures/ca.pem')));
    edit('devices/line1.example.yaml', /192\.0\.2\.11/, '10.20.1.11');
    edit('devices/line1.example.yaml', /192\.0\.2\.40/, '10.20.1.40');
    // No RS485 line on this box: the installer deletes that example map.
    rmSync(join(root, 'etc/edgeferry/devices/rs485-meters.example.yaml'));
    const r = sh('install', v2);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/checking .*gateway\.yaml/);
    expect(readFileSync(file, 'utf8')).toContain('gateway_id: gw-07');
    expect(readFileSync(`${file}.dist`, 'utf8')).toContain('gateway_id: gw-01');
    // A deleted example stays deleted (it would bring its placeholders back, and the next check would refuse them).
    expect(existsSync(join(root, 'etc/edgeferry/devices/rs485-meters.example.yaml'))).toBe(false);
    expect(current()).toBe(`releases/edgeferry-1.0.1-linux-${arch}`);
    expect(existsSync(join(root, `opt/edgeferry/releases/edgeferry-1.0.0-linux-${arch}/RELEASE`))).toBe(true);
  });

  it('refuses a release when the config has problems, and switches nothing', () => {
    const file = join(root, 'etc/edgeferry/gateway.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('gateway_id: gw-07', 'gateway_id: [not, a, name]'));
    const r = sh('install', v3);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/gateway\.yaml:\d+:\d+/);
    expect(r.out).toMatch(/nothing was switched or restarted/);
    expect(current()).toBe(`releases/edgeferry-1.0.1-linux-${arch}`);
    writeFileSync(file, good);
  });

  it('rolls back to the previous release, and a repeated install is harmless', () => {
    const r = sh('rollback');
    expect(r.code, r.out).toBe(0);
    expect(current()).toBe(`releases/edgeferry-1.0.0-linux-${arch}`);
    const again = sh('install', v2);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/already unpacked/);
    const twice = sh('install', v2);
    expect(twice.code, twice.out).toBe(0);
    expect(current()).toBe(`releases/edgeferry-1.0.1-linux-${arch}`);
    expect(readFileSync(join(root, 'etc/edgeferry/gateway.yaml'), 'utf8')).toContain('gateway_id: gw-07');
  });

  it('uninstalls keeping config and data, and --purge removes them too', () => {
    mkdirSync(join(root, 'var/lib/edgeferry'), { recursive: true });
    writeFileSync(join(root, 'var/lib/edgeferry/buffer.db'), 'x');
    const r = sh('uninstall');
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(root, 'opt/edgeferry'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/edgeferry.service'))).toBe(false);
    expect(existsSync(join(root, 'etc/edgeferry/gateway.yaml'))).toBe(true);
    expect(existsSync(join(root, 'var/lib/edgeferry/buffer.db'))).toBe(true);
    const p = sh('uninstall', '--purge');
    expect(p.code, p.out).toBe(0);
    expect(existsSync(join(root, 'etc/edgeferry'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/edgeferry'))).toBe(false);
  });
});
