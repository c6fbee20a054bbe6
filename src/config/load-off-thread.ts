// A reload's load and check run in a worker thread, so that a large device map never stops the
// event loop: polling, MQTT keep-alives and the systemd watchdog carry on meanwhile (issue 16).
import { GatewayError } from '../errors.js';
import { Worker } from 'node:worker_threads';
import { workerScript } from '../core/worker-script.js';
import type { LoadedConfig } from './load.js';
import type { ConfigProblem } from './yaml-file.js';

export interface LoadResult {
  config?: LoadedConfig;
  problems: ConfigProblem[];
}

/** Loads `path` (relative to `cwd`) like ConfigLoader.loadGatewayConfig, off the event loop; rejects after `timeoutMs`. */
export function loadConfigOffThread(cwd: string, path: string, timeoutMs = 120_000): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerScript(import.meta.url, 'load-worker'), { workerData: { cwd, path } });
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn();
      void w.terminate();
    };
    const timer = setTimeout(
      () => finish(() => reject(new GatewayError('GW_ERR_RELOAD', `loading the configuration took more than ${timeoutMs / 1000} s`))),
      timeoutMs,
    );
    w.once('message', (r: LoadResult) => finish(() => resolve(r)));
    w.once('error', (err) => finish(() => reject(err)));
    w.once('exit', (code) => finish(() => reject(new GatewayError('GW_ERR_RELOAD', `the configuration loader ended (code ${code}) without an answer`))));
  });
}
