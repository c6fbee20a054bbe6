// What `check` says about the OPC UA PKI folder on the box it runs on (issue 34): a folder the
// service cannot write leaves the device down at run time (EACCES/EROFS at the first connect), so
// check warns before that. Two cases: check run by the service itself (the unit's ExecStartPre runs
// it as the service user, inside the unit's sandbox) tries the folder; check run by hand as root on
// an installed box knows the unit: user edgeferry may write only under its state folder.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { DeviceConfig, DeviceIssue } from '../../src/core/driver.js';
import { defaultPkiDir } from './link.js';
import type { OpcuaConnectionConfig, OpcuaPointConfig } from './schema.js';

/** The installed unit's user and the one folder it may write (systemd/edgeferry.service: ProtectSystem=strict, StateDirectory=edgeferry). */
export const SERVICE_USER = 'edgeferry';
export const SERVICE_STATE_DIR = '/var/lib/edgeferry';

export interface PkiProbe {
  env: NodeJS.ProcessEnv;
  uid: number;
  user: string;
  /** Is there a system user for the service on this box (the .deb or install.sh made it)? */
  serviceUserExists: boolean;
  /** null when this process may create files in `dir` (or its nearest existing parent), else why not. */
  writable(dir: string): string | null;
}

let here: PkiProbe | undefined;
/** This machine, looked at once per process (check asks for every OPC UA device). */
export const thisBox = (): PkiProbe =>
  (here ??= {
    env: process.env,
    uid: process.getuid?.() ?? -1,
    user: userInfo().username,
    serviceUserExists: (() => {
      try {
        return readFileSync('/etc/passwd', 'utf8')
          .split('\n')
          .some((l) => l.startsWith(`${SERVICE_USER}:`));
      } catch {
        return false;
      }
    })(),
    writable: (dir) => {
      let d = dir;
      while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
      try {
        accessSync(d, constants.W_OK);
        return null;
      } catch (err) {
        return `${(err as NodeJS.ErrnoException).code ?? (err as Error).message} on ${d}`;
      }
    },
  });

export function advisePki(d: DeviceConfig<OpcuaConnectionConfig, OpcuaPointConfig>, baseDir: string, box: PkiProbe = thisBox()): DeviceIssue[] {
  const set = d.connection.pki_dir !== undefined;
  const dir = set ? resolve(baseDir, d.connection.pki_dir!) : defaultPkiDir(baseDir, box.env);
  const path = set ? ['connection', 'pki_dir'] : ['connection'];
  const under = (p: string, parent: string) => p === parent || p.startsWith(`${parent}/`);
  // Run by hand as root on an installed box: the service will run as its own user with the file
  // system read-only but for its state folder (where the default goes); root could write anything here.
  if (box.uid === 0 && !box.env.STATE_DIRECTORY && box.serviceUserExists) {
    if (!set || under(dir, SERVICE_STATE_DIR)) return [];
    return [
      {
        path,
        message: `warning: the OPC UA PKI folder ${dir} cannot be written by the service (user ${SERVICE_USER}; its unit leaves only ${SERVICE_STATE_DIR} writable): the device would stay down; leave pki_dir unset (the PKI then goes to ${SERVICE_STATE_DIR}/pki/opcua) or set it to a folder under ${SERVICE_STATE_DIR}`,
      },
    ];
  }
  const why = box.writable(dir);
  if (why === null) return [];
  return [
    {
      path,
      message: `warning: the OPC UA PKI folder ${dir} cannot be written by this process (user ${box.user}: ${why}): the device would stay down; set pki_dir to a folder this user can write${box.serviceUserExists ? ` (for the service: under ${SERVICE_STATE_DIR}, or leave it unset)` : ''}`,
    },
  ];
}
