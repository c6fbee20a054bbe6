// What the publisher hands mqtt.js besides the session fields: TLS material and the password, read
// from files once at construction so that a missing or unreadable file is an error at startup
// naming the key and the path, not a failed connection later.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import type { MqttConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

export function securityOptions(cfg: MqttConfig, baseDir: string): Partial<IClientOptions> {
  const t = cfg.tls;
  const read = (f: string | undefined, what: string) => {
    if (!f) return undefined;
    const p = resolve(baseDir, f);
    try {
      return readFileSync(p);
    } catch (err) {
      throw new GatewayError('GW_ERR_TLS_FILE', `mqtt.tls.${what}: cannot read "${p}": ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  const opts: Partial<IClientOptions> = {
    ca: read(t.ca, 'ca'),
    cert: read(t.cert, 'cert'),
    key: read(t.key, 'key'),
    rejectUnauthorized: t.verify_server,
    minVersion: t.min_version,
  } as Partial<IClientOptions>;
  if (t.server_name) (opts as Record<string, unknown>).servername = t.server_name;
  if (cfg.password_file) {
    const pw = read(cfg.password_file, 'password_file')!;
    opts.password = pw.toString('utf8').replace(/\r?\n$/, '');
  }
  return opts;
}
