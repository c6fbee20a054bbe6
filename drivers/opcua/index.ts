import type { DeviceConfig, DeviceIssue, DriverSpec } from '../../src/core/driver.js';
import { OpcuaDriver } from './driver.js';
import { OpcuaLink } from './link.js';
import { advisePki } from './pki-advice.js';
import { OpcuaConnection, OpcuaPoint, type OpcuaConnectionConfig, type OpcuaPointConfig } from './schema.js';

/** Node id syntax of Part 6 (5.3.1.10): optional ns= or nsu=, then i=, s=, g= or b=. */
const NODE_ID = /^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|b=[A-Za-z0-9+/=]+)$/;

export function validateOpcuaDevice(d: DeviceConfig<OpcuaConnectionConfig, OpcuaPointConfig>): DeviceIssue[] {
  const issues: DeviceIssue[] = [];
  const c = d.connection;
  if ((c.security_policy === 'None') !== (c.security_mode === 'None')) {
    issues.push({
      path: ['connection', 'security_mode'],
      message: `expected security_mode None exactly when security_policy is None, got policy ${c.security_policy} with mode ${c.security_mode}`,
    });
  }
  if (c.auth === 'username' && (!c.username || !c.password_file))
    issues.push({
      path: ['connection', 'auth'],
      message: 'expected username and password_file with auth: username, got ' + (c.username ? 'no password_file' : 'no username'),
    });
  if (c.auth === 'certificate' && (!c.user_certificate || !c.user_key))
    issues.push({ path: ['connection', 'auth'], message: 'expected user_certificate and user_key with auth: certificate, got only one or none' });
  if (c.auth === 'username' && c.security_mode === 'None')
    issues.push({ path: ['connection', 'auth'], message: 'expected a secured channel (Sign or SignAndEncrypt) to send a password, got security_mode None' });
  d.points.forEach((p, i) => {
    if (!NODE_ID.test(p.node_id)) {
      issues.push({ path: ['points', i, 'node_id'], message: `expected a node id such as ns=2;s=Line1.Temperature or ns=2;i=1001, got "${p.node_id}"` });
    }
  });
  return issues;
}

export const opcua: DriverSpec<OpcuaConnectionConfig, OpcuaPointConfig, OpcuaPointConfig[], OpcuaLink> = {
  type: 'opcua',
  summary:
    'OPC UA client (node-opcua): batched reads within the server operation limits, security policies up to Aes256_Sha256_RsaPss, anonymous/username/certificate identity.',
  connectionSchema: OpcuaConnection,
  pointSchema: OpcuaPoint,
  validate: validateOpcuaDevice,
  advise: (d, baseDir) => advisePki(d, baseDir),
  writes: true,
  // A variable's type is the server's to say: each reading carries it (variantType).
  valueType: () => undefined,
  linkKey: (d) => d.connection.endpoint,
  sharedConnectionKeys: [
    'security_policy',
    'security_mode',
    'auth',
    'username',
    'password_file',
    'user_certificate',
    'user_key',
    'pki_dir',
    'trust_unknown_server',
    'timeout_ms',
    'max_nodes_per_read',
  ],
  createLink: (d, ctx) => new OpcuaLink(d.connection, ctx.baseDir, ctx.log, undefined, ctx.gateway),
  create: (device, ctx) => new OpcuaDriver(device, ctx),
  subscribed: (p) => p.mode === 'subscribe',
};
