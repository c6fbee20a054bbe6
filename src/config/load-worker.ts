// Loads and checks a gateway configuration in a worker thread (see load-off-thread.ts) and posts
// the result back: plain data only — where each device was written is reduced to its index.
import { parentPort, workerData } from 'node:worker_threads';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader, type LoadedConfig, type LoadedDevice } from './load.js';

const { cwd, path } = workerData as { cwd: string; path: string };

/** The YamlFile (text, line index, values again) stays here: the gateway needs none of it. */
const plain = (d: LoadedDevice): LoadedDevice => ({
  ...d,
  source: { ...d.source, file: undefined as never },
  ...(d.backup ? { backup: { ...d.backup, device: plain(d.backup.device) } } : {}),
});

const { config, problems } = new ConfigLoader(DRIVERS, cwd).loadGatewayConfig(path);
const out: LoadedConfig | undefined = config && { ...config, devices: config.devices.map(plain) };
parentPort!.postMessage({ config: out, problems });
