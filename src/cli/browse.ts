// `edgeferry browse opc.tcp://host:port [...]`: a device map from an OPC UA server's address space.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { browseServer, deviceMapYaml } from '../../drivers/opcua/browse.js';
import type { OpcuaConnectionConfig } from '../../drivers/opcua/schema.js';
import { EXIT, type CliIo } from './io.js';
import { createLogger } from '../log.js';

export async function runBrowse(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string', default: 'i=85' },
      depth: { type: 'string', default: '6' },
      filter: { type: 'string' },
      name: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'security-policy': { type: 'string', default: 'Basic256Sha256' },
      'security-mode': { type: 'string', default: 'SignAndEncrypt' },
      username: { type: 'string' },
      'password-file': { type: 'string' },
      pki: { type: 'string', default: 'pki/opcua' },
      'trust-server': { type: 'boolean', default: false },
    },
  });
  const endpoint = positionals[0];
  if (!endpoint?.startsWith('opc.tcp://')) {
    io.err(
      'usage: edgeferry browse opc.tcp://host:port[/path] [--root NODE] [--depth N] [--filter REGEX] [--name DEVICE] [--out FILE]\n       [--security-policy None|Basic256Sha256|Aes128_Sha256_RsaOaep|Aes256_Sha256_RsaPss] [--security-mode None|Sign|SignAndEncrypt]\n       [--username U --password-file F] [--pki DIR] [--trust-server]',
    );
    return EXIT.USAGE;
  }
  const connection: OpcuaConnectionConfig = {
    endpoint,
    security_policy: values['security-policy'] as OpcuaConnectionConfig['security_policy'],
    security_mode: values['security-mode'] as OpcuaConnectionConfig['security_mode'],
    auth: values.username ? 'username' : 'anonymous',
    username: values.username,
    password_file: values['password-file'],
    pki_dir: values.pki,
    trust_unknown_server: values['trust-server'],
    timeout_ms: 10_000,
    max_nodes_per_read: 0,
  };
  const opts = {
    connection,
    baseDir: io.cwd,
    root: values.root,
    depth: Number(values.depth),
    filter: values.filter ? new RegExp(values.filter) : undefined,
    deviceName: values.name ?? new URL(endpoint.replace(/^opc\.tcp/, 'http')).hostname,
    log: createLogger('warn'),
  };
  try {
    const found = await browseServer(opts);
    const yaml = deviceMapYaml(opts, found);
    if (values.out) {
      writeFileSync(values.out, yaml);
      io.err(`wrote ${values.out}: ${found.length} variables`);
    } else io.out(yaml.trimEnd());
    return EXIT.OK;
  } catch (err) {
    io.err(`edgeferry browse: ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
}
