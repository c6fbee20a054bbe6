// Where the OPC UA PKI goes on an installed box (issue 34): /etc/edgeferry is read-only for the
// hardened service, so without pki_dir the PKI lives in the unit's state folder ($STATE_DIRECTORY);
// a PKI folder the process cannot write is a clear error naming it and what to set.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultPkiDir, OpcuaLink } from '../../drivers/opcua/link.js';

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
});
