// Loads and checks configuration without touching devices: YAML → schema (with defaults) →
// driver schemas → semantic checks. Every problem is collected; nothing stops at the first.
import { Ajv, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { DeviceConfig, DriverSpec } from '../core/driver.js';
import { DeviceMap, GatewayFile, type GatewayFileConfig } from './schema.js';
import { didYouMean, translate } from './messages.js';
import { YamlFile, type ConfigProblem, type YamlPath } from './yaml-file.js';
import { checkDeviceNames, checkGateway, checkSharedLinks, checkTopics } from './semantic.js';

export interface LoadedDevice extends DeviceConfig {
  /** Where it was written, for later problems and for logs. */
  source: { file: YamlFile; index: number };
}

export interface LoadedConfig {
  gatewayFile: string;
  baseDir: string;
  gateway: GatewayFileConfig;
  devices: LoadedDevice[];
}

export interface CheckResult {
  problems: ConfigProblem[];
  /** The gateway configs among the files, when they had no problems. */
  configs: LoadedConfig[];
}

const GATEWAY_KEYS = ['site', 'gateway_id', 'mqtt', 'buffer', 'health', 'logging'];

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

  /** Checks one device map file; returns its devices (those that passed) and the problems. */
  loadDeviceMap(file: YamlFile): { devices: LoadedDevice[]; problems: ConfigProblem[] } {
    if (file.problems.length) return { devices: [], problems: file.problems };
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
      const before = problems.length;
      if (typeof dev.connection === 'object' && dev.connection !== null) {
        problems.push(...this.validate(file, spec.connectionSchema, dev.connection, [...at, 'connection']));
      }
      const points = Array.isArray(dev.points) ? dev.points : [];
      points.forEach((p, i) => {
        if (typeof p === 'object' && p !== null) problems.push(...this.validate(file, spec.pointSchema, p, [...at, 'points', i]));
      });
      if (problems.length > before || typeof dev.name !== 'string' || !Array.isArray(dev.points)) return;
      const device = { ...(dev as unknown as DeviceConfig), source: { file, index } };
      const seen = new Map<string, number>();
      device.points.forEach((p, i) => {
        const first = seen.get(p.name);
        if (first !== undefined) problems.push(file.problem([...at, 'points', i, 'name'], `expected a point name not used before in device "${device.name}", got "${p.name}" (also points[${first}])`));
        else seen.set(p.name, i);
      });
      for (const issue of spec.validate?.(device) ?? []) problems.push(file.problem([...at, ...issue.path], issue.message));
      devices.push(device);
    });
    return { devices: problems.length ? [] : devices, problems };
  }

  private loadGateway(file: YamlFile): { config?: LoadedConfig; problems: ConfigProblem[]; deviceFiles: YamlFile[] } {
    const problems = this.validate(file, GatewayFile, file.data, []);
    const gateway = file.data as GatewayFileConfig;
    const baseDir = dirname(file.abs);
    problems.push(...checkGateway(file, gateway, baseDir));
    const deviceFiles: YamlFile[] = [];
    (Array.isArray(gateway.devices) ? gateway.devices : []).forEach((entry, i) => {
      if (typeof entry !== 'string') return;
      const abs = resolve(baseDir, entry);
      if (!existsSync(abs)) {
        problems.push(file.problem(['devices', i], `expected an existing device map file or folder (relative to this file's folder), got "${entry}"`));
        return;
      }
      const files = statSync(abs).isDirectory()
        ? readdirSync(abs).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(abs, f))
        : [abs];
      if (!files.length) problems.push(file.problem(['devices', i], `expected a folder with *.yaml device maps, got an empty folder "${entry}"`));
      for (const f of files) deviceFiles.push(this.open(f));
    });
    const devices: LoadedDevice[] = [];
    for (const df of deviceFiles) {
      const r = this.loadDeviceMap(df);
      problems.push(...r.problems);
      devices.push(...r.devices);
    }
    problems.push(...checkDeviceNames(devices), ...checkSharedLinks(devices, this.drivers));
    if (!problems.length) problems.push(...checkTopics(gateway, devices));
    const config = problems.length ? undefined : { gatewayFile: file.abs, baseDir, gateway, devices };
    return { config, problems, deviceFiles };
  }

  /** `edgeferry check`: any mix of gateway files and device maps. */
  check(paths: string[]): CheckResult {
    const problems: ConfigProblem[] = [];
    const configs: LoadedConfig[] = [];
    const done = new Set<string>();
    const standaloneDevices: LoadedDevice[] = [];
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
        if (r.config) configs.push(r.config);
      } else {
        const r = this.loadDeviceMap(file);
        problems.push(...r.problems);
        standaloneDevices.push(...r.devices);
      }
    }
    problems.push(...checkDeviceNames(standaloneDevices), ...checkSharedLinks(standaloneDevices, this.drivers));
    return { problems: sortProblems(problems), configs };
  }

  /** `edgeferry run`: exactly one gateway file. */
  loadGatewayConfig(path: string): { config?: LoadedConfig; problems: ConfigProblem[] } {
    const file = this.open(resolve(this.cwd, path));
    if (file.problems.length) return { problems: file.problems };
    const r = this.loadGateway(file);
    return { config: r.config, problems: sortProblems(r.problems) };
  }
}

/** File by file, top to bottom, as a person reads them; the sort is stable for one position. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const order = new Map<string, number>();
  for (const p of problems) if (!order.has(p.file)) order.set(p.file, order.size);
  return [...problems].sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line || a.col - b.col);
}
