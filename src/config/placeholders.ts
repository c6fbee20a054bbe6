// Values that only an example carries: the shipped configs use them on purpose (documentation
// addresses, *.example names, a CA that is not a certificate, the password "change-me"), so an
// installed but unedited gateway can never start polling or publishing by accident — `check`
// reports each one as a problem, and `run` (and the unit's ExecStartPre) refuse to start on them.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadedDevice } from './loaded.js';
import type { GatewayFileConfig } from './schema.js';
import type { ConfigProblem, YamlFile } from './yaml-file.js';

const MARKER = /change-?me/i;

/** Why a host name or address is an example's, or undefined for a real one. */
export function placeholderHost(host: string): string | undefined {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (/(^|\.)(example|invalid)$/.test(h) || /(^|\.)example\.(com|net|org)$/.test(h)) return 'a name reserved for examples (RFC 2606)';
  if (/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$/.test(h) || /^2001:0?db8:/.test(h)) return 'an address reserved for documentation (RFC 5737/3849)';
  if (MARKER.test(h)) return 'a placeholder';
  return undefined;
}

const hostOfUrl = (url: string) => {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
};

export function checkGatewayPlaceholders(file: YamlFile, g: GatewayFileConfig, baseDir: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const mqtt = g.mqtt;
  if (typeof mqtt !== 'object' || mqtt === null) return out;
  const host = typeof mqtt.url === 'string' ? hostOfUrl(mqtt.url) : undefined;
  const why = host && placeholderHost(host);
  if (why) out.push(file.problem(['mqtt', 'url'], `expected your broker's address, got "${host}", ${why}: this is the example's value`));
  const read = (f: unknown) => {
    if (typeof f !== 'string') return undefined;
    try {
      return readFileSync(resolve(baseDir, f), 'utf8');
    } catch {
      return undefined; // unreadable: checkGateway says so
    }
  };
  const ca = read(mqtt.tls?.ca);
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    out.push(
      file.problem(
        ['mqtt', 'tls', 'ca'],
        `expected a PEM file with the CA certificate(s) that issued the broker's certificate (-----BEGIN CERTIFICATE-----), got "${mqtt.tls.ca}", which holds none`,
      ),
    );
  }
  const password = read(mqtt.password_file);
  if (password !== undefined && MARKER.test(password.trim()) && password.trim().length <= 12) {
    out.push(file.problem(['mqtt', 'password_file'], `expected the broker password, got the example's placeholder in "${mqtt.password_file}"`));
  }
  return out;
}

/** Enabled devices (and their backup channels) whose connection still points at an example. */
export function checkDevicePlaceholders(devices: LoadedDevice[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const d of devices) {
    if (d.enabled === false) continue;
    for (const dev of d.backup ? [d, d.backup.device] : [d]) {
      const conn = (dev.connection ?? {}) as Record<string, unknown>;
      for (const [key, value] of Object.entries(conn)) {
        if (typeof value !== 'string') continue;
        const host = key === 'host' ? value : /^[a-z][a-z0-9.+-]*:\/\//i.test(value) ? hostOfUrl(value) : undefined;
        const why = host ? placeholderHost(host) : MARKER.test(value) ? 'a placeholder' : undefined;
        if (!why) continue;
        const at = ['devices', dev.source.index, ...(dev.source.prefix ?? []), 'connection', key];
        out.push(dev.source.file.problem(at, `expected the address of device "${d.name}", got "${value}", ${why}: edit it, or set enabled: false`));
      }
    }
  }
  return out;
}
