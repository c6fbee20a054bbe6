// Running the independent peers: open62541 and bacnet-stack builds in ../shared/peers (found by
// simulators/peers.ts), pymodbus and libmodbus from Debian. Every developer and CI have them; a
// machine without them fails these tests with what to install.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

import { open62541Certificate, peersBin, startPeer, type Peer } from '../../simulators/peers.js';

export { open62541Certificate, peersBin, startPeer, type Peer };

export const PYTHON = '/usr/bin/python3';
export const PYMODBUS_SERVER = join(here, 'pymodbus_server.py');

/** Compiles the libmodbus server once per test process; returns its path and a cleanup. */
export function buildLibmodbusServer(): { bin: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-libmodbus-'));
  const bin = join(dir, 'libmodbus_server');
  try {
    execFileSync('gcc', ['-O2', '-o', bin, join(here, 'libmodbus_server.c'), '-I/usr/include/modbus', '-lmodbus'], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot build the libmodbus server (apt-get install gcc libc6-dev libmodbus-dev): ${e.stderr?.toString() ?? e.message}`);
  }
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** bacnet-stack's bacserv as device 1234 "refdev", an MS/TP master at MAC 5 (polling up to MAC 10) on `tty` at 38400 baud. */
export function startBacserv(tty: string): Promise<Peer> {
  return startPeer(join(peersBin(), 'bacserv'), ['1234', 'refdev'], /BACnet Device ID: 1234/, {
    env: { BACNET_IFACE: tty, BACNET_MSTP_BAUD: '38400', BACNET_MSTP_MAC: '5', BACNET_MAX_MASTER: '10' },
  });
}
