// Where the OPC UA PKI goes on an installed box (issue 34): /etc/edgeferry is read-only for the
// hardened service, so without pki_dir the PKI lives in the unit's state folder ($STATE_DIRECTORY);
// a PKI folder the process cannot write is a clear error naming it and what to set.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultPkiDir, OpcuaLink } from '../../drivers/opcua/link.js';
import { advisePki, type PkiProbe } from '../../drivers/opcua/pki-advice.js';
import type { OpcuaConnectionConfig, OpcuaPointConfig } from '../../drivers/opcua/schema.js';
import type { DeviceConfig } from '../../src/core/driver.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const device = (pki_dir?: string) =>
  ({
    name: 'line2',
    driver: 'opcua',
    enabled: true,
    connection: { endpoint: 'opc.tcp://127.0.0.1:4840', pki_dir },
    points: [],
  }) as unknown as DeviceConfig<OpcuaConnectionConfig, OpcuaPointConfig>;

const root = process.getuid?.() === 0;

describe('OPC UA PKI folder', () => {
  it('defaults to pki/opcua in the state folder systemd gives (StateDirectory=), else next to the gateway file', () => {
    expect(defaultPkiDir('/etc/edgeferry', { STATE_DIRECTORY: '/var/lib/edgeferry' })).toBe('/var/lib/edgeferry/pki/opcua');
    expect(defaultPkiDir('/etc/edgeferry', { STATE_DIRECTORY: '/var/lib/edgeferry:/var/lib/other' })).toBe('/var/lib/edgeferry/pki/opcua');
    expect(defaultPkiDir('/home/me/plant', {})).toBe('/home/me/plant/pki/opcua');
  });

  it.skipIf(!root)('a PKI folder on a read-only file system: the link says which folder and what to set (root: mounts a read-only tmpfs)', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'edgeferry-ro-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mnt]);
    try {
      const link = new OpcuaLink(
        {
          endpoint: 'opc.tcp://127.0.0.1:1',
          security_policy: 'None',
          security_mode: 'None',
          auth: 'anonymous',
          trust_unknown_server: false,
          timeout_ms: 500,
          max_nodes_per_read: 0,
        },
        mnt,
        pino({ level: 'silent' }),
      );
      expect(link.pkiDir).toBe(join(mnt, 'pki', 'opcua'));
      await expect(link.open(new AbortController().signal, () => undefined)).rejects.toThrow(
        new RegExp(`the OPC UA PKI folder ${join(mnt, 'pki', 'opcua')} cannot be written by this process \\([A-Z]+\\); set pki_dir`),
      );
      await link.close();
    } finally {
      execFileSync('umount', ['-l', mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('check by hand as root on an installed box: a pki_dir outside the state folder is a warning naming it and what to set; the default and the state folder are fine', () => {
    const installed: PkiProbe = { env: {}, uid: 0, user: 'root', serviceUserExists: true, writable: () => null };
    const [w] = advisePki(device('pki'), '/etc/edgeferry', installed);
    expect(w?.path).toEqual(['connection', 'pki_dir']);
    expect(w?.message).toBe(
      'warning: the OPC UA PKI folder /etc/edgeferry/pki cannot be written by the service (user edgeferry; its unit leaves only /var/lib/edgeferry writable): the device would stay down; leave pki_dir unset (the PKI then goes to /var/lib/edgeferry/pki/opcua) or set it to a folder under /var/lib/edgeferry',
    );
    expect(advisePki(device(), '/etc/edgeferry', installed)).toEqual([]);
    expect(advisePki(device('/var/lib/edgeferry/opcua-pki'), '/etc/edgeferry', installed)).toEqual([]);
    // Run by the unit (ExecStartPre, as the service user): it tries the folder itself.
    const asService: PkiProbe = {
      env: { STATE_DIRECTORY: '/var/lib/edgeferry' },
      uid: 997,
      user: 'edgeferry',
      serviceUserExists: true,
      writable: (d) => (d.startsWith('/var/lib/edgeferry') ? null : 'EROFS on /etc/edgeferry'),
    };
    expect(advisePki(device(), '/etc/edgeferry', asService)).toEqual([]);
    expect(advisePki(device('pki'), '/etc/edgeferry', asService)[0]?.message).toMatch(
      /^warning: the OPC UA PKI folder \/etc\/edgeferry\/pki cannot be written by this process \(user edgeferry: EROFS on \/etc\/edgeferry\): the device would stay down; set pki_dir to a folder this user can write \(for the service: under \/var\/lib\/edgeferry, or leave it unset\)$/,
    );
  });

  it.skipIf(!root)(
    'edgeferry check warns, with file:line:col, about a pki_dir on a read-only file system, and still passes the config (root: mounts a read-only tmpfs)',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'edgeferry-pki-check-'));
      const mnt = join(dir, 'ro');
      execFileSync('mkdir', [mnt]);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mnt]);
      try {
        writeFileSync(
          join(dir, 'gateway.yaml'),
          `version: 1\nsite: s\ngateway_id: g\nmqtt: { url: "mqtts://127.0.0.1:8883", tls: { ca: ca.pem } }\ndevices: [devices.yaml]\n`,
        );
        execFileSync('cp', [join(import.meta.dirname, '../fixtures/ca.pem'), join(dir, 'ca.pem')]);
        writeFileSync(
          join(dir, 'devices.yaml'),
          `version: 1\ndevices:\n  - name: line2\n    driver: opcua\n    poll_interval_ms: 1000\n    connection: { endpoint: "opc.tcp://127.0.0.1:4840", pki_dir: ro/pki }\n    points:\n      - { name: answer, node_id: "ns=1;s=the.answer" }\n`,
        );
        const r = spawnSync(process.execPath, [cli, 'check', join(dir, 'gateway.yaml')], { encoding: 'utf8', env: { ...process.env, STATE_DIRECTORY: '' } });
        expect(`${r.stdout}${r.stderr}`).toContain(`devices.yaml:6:`);
        expect(`${r.stdout}${r.stderr}`).toMatch(
          new RegExp(`warning: the OPC UA PKI folder ${join(mnt, 'pki')} cannot be written by this process \\(user root: EROFS on ${mnt}\\)`),
        );
        expect(r.status, r.stdout + r.stderr).toBe(0);
      } finally {
        execFileSync('umount', ['-l', mnt]);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
