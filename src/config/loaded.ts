// What the loader hands to the rest of the gateway: devices and the gateway file, checked. Its own
// file so that the checks (semantic.ts, placeholders.ts) and the loader can share it without
// importing each other.
import type { DeviceConfig } from '../core/driver.js';
import type { GatewayFileConfig } from './schema.js';
import type { YamlFile, YamlPath } from './yaml-file.js';

export interface LoadedDevice extends DeviceConfig {
  /** Where it was written, for later problems and for logs; `prefix` is set for a backup channel. */
  source: { file: YamlFile; index: number; prefix?: YamlPath };
  /** The backup channel: its own driver, connection, link and the critical points' addresses on it. */
  backup?: { device: LoadedDevice; switchBackAfterMs: number };
}

export interface LoadedConfig {
  gatewayFile: string;
  baseDir: string;
  gateway: GatewayFileConfig;
  devices: LoadedDevice[];
}
