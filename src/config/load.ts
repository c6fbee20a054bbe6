// Loads and checks configuration without touching devices: YAML → schema (with defaults) →
// driver schemas → semantic checks. Every problem is collected; nothing stops at the first.
import { Ajv, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { DeviceConfig, DriverSpec } from '../core/driver.js';
import { writeIssues } from './write-checks.js';
import { DeviceMap, GatewayFile, type GatewayFileConfig } from './schema.js';
import { didYouMean, translate } from './messages.js';
import { YamlFile, type ConfigProblem, type YamlPath } from './yaml-file.js';
import type { LoadedConfig, LoadedDevice } from './loaded.js';
import { checkDevicePlaceholders, checkGatewayPlaceholders } from './placeholders.js';
import { checkDeviceNames, checkGateway, checkSharedLinks, checkTopics, topicWarnings } from './semantic.js';

export type { LoadedConfig, LoadedDevice } from './loaded.js';

export interface CheckResult {
  problems: ConfigProblem[];
  /** Valid but unsafe settings, said by `check` without failing it (TLS verification off). */
  warnings: ConfigProblem[];
  /** The gateway configs among the files, when they had no problems. */
  configs: LoadedConfig[];
}

const GATEWAY_KEYS = ['site', 'gateway_id', 'mqtt', 'buffer', 'health', 'logging', 'inference'];

class Validators {
  private readonly ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
  private readonly cache = new Map<TSchema, ValidateFunction>();
  get(schema: TSchema): ValidateFunction {
    let v = this.cache.get(schema);
    if (!v) this.cache.set(schema, (v = this.ajv.compile(schema)));
    return v;
  }
}

export class ConfigLoader {
  private readonly validators = new Validators();
  constructor(
    private readonly drivers: readonly DriverSpec[],
    private readonly cwd: string,
  ) {}

  private open(abs: string): YamlFile {
    const rel = relative(this.cwd, abs);
    return new YamlFile(rel.startsWith('..') ? abs : rel, abs);
  }

  private validate(file: YamlFile, schema: TSchema, data: unknown, prefix: YamlPath): ConfigProblem[] {
    const v = this.validators.get(schema);
    if (v(data)) return [];
    return translate(v.errors ?? [], prefix).map((i) => file.problem(i.path, i.message, i.key));
  }

  /**
   * Checks one device map file; returns its devices (those that passed: the checks across devices
   * run on them even while others have problems), the names of all it lists (so that a reference
   * to a device with a problem is not reported as unknown too) and the problems.
   */
  loadDeviceMap(file: YamlFile): { devices: LoadedDevice[]; listed: Listed[]; problems: ConfigProblem[] } {
    if (file.problems.length) return { devices: [], listed: [], problems: file.problems };
    const problems = this.validate(file, DeviceMap, file.data, []);
    const data = file.data as { devices?: unknown };
    const devices: LoadedDevice[] = [];
    const list = Array.isArray(data?.devices) ? (data.devices as Record<string, unknown>[]) : [];
    list.forEach((dev, index) => {
      if (typeof dev !== 'object' || dev === null) return;
      const at: YamlPath = ['devices', index];
      const spec = this.drivers.find((d) => d.type === dev.driver);
      if (!spec) {
        if (typeof dev.driver === 'string') {
          const known = this.drivers.map((d) => d.type);
          problems.push(file.problem([...at, 'driver'], `expected one of ${known.join('|')}, got "${dev.driver}"${didYouMean(dev.driver, known)}`));
        }
        return;
      }
      const connection =
        typeof dev.connection === 'object' && dev.connection !== null ? this.validate(file, spec.connectionSchema, dev.connection, [...at, 'connection']) : [];
      problems.push(...connection);
      const points = Array.isArray(dev.points) ? (dev.points as unknown[]) : [];
      const good: number[] = [];
      points.forEach((p, i) => {
        const found = typeof p === 'object' && p !== null ? this.validate(file, spec.pointSchema, p, [...at, 'points', i]) : [];
        problems.push(...found);
        if (typeof p === 'object' && p !== null && !found.length) good.push(i);
      });
      if (connection.length || typeof dev.name !== 'string' || !Array.isArray(dev.points)) return;
      // The checks across points run on the points that passed, so that a map shows its overlaps and
      // duplicates along with its schema problems (positions are the map's own).
      const { backup: _raw, ...envelope } = dev;
      const device: LoadedDevice = {
        ...(envelope as unknown as DeviceConfig),
        points: good.map((i) => points[i]) as DeviceConfig['points'],
        source: { file, index },
      };
      const where = (path: YamlPath): YamlPath =>
        path[0] === 'points' && typeof path[1] === 'number' ? ['points', good[path[1]] ?? path[1], ...path.slice(2)] : path;
      const seen = new Map<string, number>();
      device.points.forEach((p, k) => {
        const i = good[k]!;
        const first = seen.get(p.name);
        if (first !== undefined)
          problems.push(
            file.problem(
              [...at, 'points', i, 'name'],
              `expected a point name not used before in device "${device.name}", got "${p.name}" (also points[${first}])`,
            ),
          );
        else seen.set(p.name, i);
      });
      for (const issue of [...(spec.validate?.(device) ?? []), ...writeIssues(spec, device)])
        problems.push(file.problem([...at, ...where(issue.path)], issue.message));
      if (good.length < points.length) return; // a device with a broken point is not loaded
      const backup = (dev as { backup?: Record<string, unknown> }).backup;
      if (backup && typeof backup === 'object') {
        const r = this.loadBackup(file, at, device, backup);
        problems.push(...r.problems);
        if (r.backup) device.backup = r.backup;
      }
      devices.push(device);
    });
    const listed = list.flatMap((d, index) =>
      typeof d === 'object' && d !== null && typeof d.name === 'string' ? [{ name: d.name, source: { file, index } }] : [],
    );
    return { devices, listed, problems };
  }

  /** The `backup:` block of a device: its driver's schemas, and every critical point addressed on it. */
  private loadBackup(
    file: YamlFile,
    at: YamlPath,
    primary: LoadedDevice,
    b: Record<string, unknown>,
  ): { backup?: LoadedDevice['backup']; problems: ConfigProblem[] } {
    const problems: ConfigProblem[] = [];
    const here: YamlPath = [...at, 'backup'];
    const spec = this.drivers.find((d) => d.type === b.driver);
    if (!spec) {
      if (typeof b.driver === 'string') {
        const known = this.drivers.map((d) => d.type);
        problems.push(file.problem([...here, 'driver'], `expected one of ${known.join('|')}, got "${b.driver}"${didYouMean(b.driver, known)}`));
      }
      return { problems };
    }
    if (typeof b.connection === 'object' && b.connection !== null)
      problems.push(...this.validate(file, spec.connectionSchema, b.connection, [...here, 'connection']));
    const points = Array.isArray(b.points) ? (b.points as unknown[]) : [];
    points.forEach((p, i) => {
      if (typeof p !== 'object' || p === null) return;
      const hadInterval = 'poll_interval_ms' in p;
      problems.push(...this.validate(file, spec.pointSchema, p, [...here, 'points', i]));
      if (hadInterval)
        problems.push(
          file.problem(
            [...here, 'points', i, 'poll_interval_ms'],
            'expected no poll_interval_ms on a backup point (it is read when its primary point is due), got one',
          ),
        );
    });
    if (problems.length) return { problems };
    const names = new Set(primary.points.map((p) => p.name));
    const covered = new Set<string>();
    (points as { name: string }[]).forEach((p, i) => {
      if (!names.has(p.name))
        problems.push(
          file.problem(
            [...here, 'points', i, 'name'],
            `expected the name of a point of device "${primary.name}", got "${p.name}"${didYouMean(p.name, [...names])}`,
          ),
        );
      else if (covered.has(p.name))
        problems.push(file.problem([...here, 'points', i, 'name'], `expected each point once on the backup channel, got "${p.name}" again`));
      covered.add(p.name);
    });
    primary.points.forEach((p, i) => {
      if (p.priority === 'critical' && !covered.has(p.name)) {
        problems.push(
          file.problem(
            [...at, 'points', i, 'priority'],
            `expected critical point "${p.name}" to be addressed on the backup channel too (backup.points), got no entry for it`,
          ),
        );
      }
    });
    const device: LoadedDevice = {
      name: `${primary.name}~backup`,
      driver: spec.type,
      enabled: primary.enabled,
      poll_interval_ms: primary.poll_interval_ms,
      link: b.link as LoadedDevice['link'],
      connection: b.connection,
      points: points as LoadedDevice['points'],
      source: { file, index: at[1] as number, prefix: ['backup'] },
    };
    for (const issue of spec.validate?.(device) ?? []) problems.push(file.problem([...here, ...issue.path], issue.message));
    return { backup: { device, switchBackAfterMs: b.switch_back_after_ms as number }, problems };
  }

  private loadGateway(file: YamlFile): { config?: LoadedConfig; problems: ConfigProblem[]; deviceFiles: YamlFile[] } {
    const problems = this.validate(file, GatewayFile, file.data, []);
    // Empty, only comments, or not a map: the schema said so, and nothing below can be checked.
    if (typeof file.data !== 'object' || file.data === null || Array.isArray(file.data)) return { problems, deviceFiles: [] };
    const gateway = file.data as GatewayFileConfig;
    const baseDir = dirname(file.abs);
    problems.push(...checkGateway(file, gateway, baseDir), ...checkGatewayPlaceholders(file, gateway, baseDir));
    const deviceFiles: YamlFile[] = [];
    (Array.isArray(gateway.devices) ? gateway.devices : []).forEach((entry, i) => {
      if (typeof entry !== 'string') return;
      const abs = resolve(baseDir, entry);
      if (!existsSync(abs)) {
        problems.push(file.problem(['devices', i], `expected an existing device map file or folder (relative to this file's folder), got "${entry}"`));
        return;
      }
      const files = statSync(abs).isDirectory()
        ? readdirSync(abs)
            .filter((f) => /\.ya?ml$/.test(f))
            .sort()
            .map((f) => join(abs, f))
        : [abs];
      if (!files.length) problems.push(file.problem(['devices', i], `expected a folder with *.yaml device maps, got an empty folder "${entry}"`));
      for (const f of files) deviceFiles.push(this.open(f));
    });
    const devices: LoadedDevice[] = [];
    const listed: Listed[] = [];
    for (const df of deviceFiles) {
      const r = this.loadDeviceMap(df);
      problems.push(...r.problems);
      devices.push(...r.devices);
      listed.push(...r.listed);
    }
    const names = new Set(listed.map((d) => d.name));
    problems.push(...checkDeviceNames(listed), ...checkSharedLinks(withBackups(devices), this.drivers), ...checkDevicePlaceholders(devices));
    (gateway.health?.critical_devices ?? []).forEach((name, i) => {
      if (typeof name === 'string' && !names.has(name)) {
        problems.push(
          file.problem(['health', 'critical_devices', i], `expected the name of a device in the device maps, got "${name}"${didYouMean(name, [...names])}`),
        );
      }
    });
    if (!problems.length) problems.push(...checkTopics(gateway, devices));
    const config = problems.length ? undefined : { gatewayFile: file.abs, baseDir, gateway, devices };
    return { config, problems, deviceFiles };
  }

  /** Each driver's advice on this box for every device and backup channel (`check` only). */
  private advise(config: LoadedConfig): ConfigProblem[] {
    const out: ConfigProblem[] = [];
    for (const d of config.devices) {
      for (const dev of d.backup ? [d, d.backup.device] : [d]) {
        const spec = this.drivers.find((s) => s.type === dev.driver);
        const at = ['devices', dev.source.index, ...(dev.source.prefix ?? [])];
        for (const issue of spec?.advise?.(dev, config.baseDir) ?? []) out.push(dev.source.file.problem([...at, ...issue.path], issue.message));
      }
    }
    return out;
  }

  /** `edgeferry check`: any mix of gateway files and device maps. */
  check(paths: string[]): CheckResult {
    const problems: ConfigProblem[] = [];
    const warnings: ConfigProblem[] = [];
    const configs: LoadedConfig[] = [];
    const done = new Set<string>();
    const standaloneDevices: LoadedDevice[] = [];
    const standaloneListed: Listed[] = [];
    for (const p of paths) {
      const abs = resolve(this.cwd, p);
      if (done.has(abs)) continue;
      done.add(abs);
      const file = this.open(abs);
      if (file.problems.length) {
        problems.push(...file.problems);
        continue;
      }
      const top = file.data;
      const isGateway = typeof top === 'object' && top !== null && GATEWAY_KEYS.some((k) => k in top);
      if (isGateway) {
        const r = this.loadGateway(file);
        problems.push(...r.problems);
        for (const df of r.deviceFiles) done.add(df.abs);
        if (r.config) {
          configs.push(r.config);
          warnings.push(...this.advise(r.config), ...topicWarnings(file, r.config.gateway, r.config.devices));
          if (r.config.gateway.mqtt.tls.verify_server === false) {
            warnings.push(
              file.problem(
                ['mqtt', 'tls', 'verify_server'],
                'warning: the broker certificate and host name are NOT verified — anyone on the path can read and forge plant data; give tls.ca the CA that issued the broker certificate instead',
              ),
            );
          }
        }
      } else {
        const r = this.loadDeviceMap(file);
        problems.push(...r.problems);
        standaloneDevices.push(...r.devices);
        standaloneListed.push(...r.listed);
      }
    }
    problems.push(
      ...checkDeviceNames(standaloneListed),
      ...checkSharedLinks(withBackups(standaloneDevices), this.drivers),
      ...checkDevicePlaceholders(standaloneDevices),
    );
    return { problems: sortProblems(problems), warnings, configs };
  }

  /**
   * `edgeferry read`: the devices of one gateway file (which must be valid as a whole), or of one
   * device map on its own (commissioning before the broker's certificates exist).
   */
  loadDevices(path: string): { devices?: LoadedDevice[]; gateway?: { site: string; id: string }; problems: ConfigProblem[] } {
    const file = this.open(resolve(this.cwd, path));
    if (file.problems.length) return { problems: file.problems };
    const top = file.data;
    if (typeof top === 'object' && top !== null && GATEWAY_KEYS.some((k) => k in top)) {
      const r = this.loadGatewayConfig(path);
      return r.config
        ? { devices: r.config.devices, gateway: { site: r.config.gateway.site, id: r.config.gateway.gateway_id }, problems: [] }
        : { problems: r.problems };
    }
    const r = this.loadDeviceMap(file);
    const problems = sortProblems([
      ...r.problems,
      ...checkDeviceNames(r.listed),
      ...checkSharedLinks(withBackups(r.devices), this.drivers),
      ...checkDevicePlaceholders(r.devices),
    ]);
    return problems.length ? { problems } : { devices: r.devices, problems };
  }

  /** `edgeferry run`: exactly one gateway file. */
  loadGatewayConfig(path: string): { config?: LoadedConfig; problems: ConfigProblem[] } {
    const file = this.open(resolve(this.cwd, path));
    if (file.problems.length) return { problems: file.problems };
    const r = this.loadGateway(file);
    if (r.config) for (const f of [file, ...r.deviceFiles]) f.release();
    return { config: r.config, problems: sortProblems(r.problems) };
  }
}

/** Devices and their backup channels: every user of a link, for the shared-link checks. */
/** A device as its map lists it, whether or not it passed its own checks: enough to check names. */
type Listed = Pick<LoadedDevice, 'name' | 'source'>;

const withBackups = (devices: LoadedDevice[]) => devices.flatMap((d) => (d.backup ? [d, d.backup.device] : [d]));

/** File by file, top to bottom, as a person reads them; the sort is stable for one position. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const order = new Map<string, number>();
  for (const p of problems) if (!order.has(p.file)) order.set(p.file, order.size);
  return [...problems].sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line || a.col - b.col);
}
