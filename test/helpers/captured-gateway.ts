// A real gateway whose polls and device status changes are captured in-process, for tests where
// MQTT is not the subject (link liveness, serial buses). Samples stay in its buffer file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/yaml-file.js';
import type { HealthSnapshot } from '../../src/core/device-health.js';
import { buildGateway, type Gateway } from '../../src/gateway.js';

interface Seen {
  device: string;
  ts: number;
}

export async function capturedGateway(cleanups: (() => Promise<void> | void)[], devicesYaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-link-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'devices.yaml'), devicesYaml);
  // A broker URL nobody listens on: samples stay buffered, which is fine for this test.
  writeFileSync(
    join(dir, 'gateway.yaml'),
    'version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtts://127.0.0.1:1\n  reconnect_ms: 60000\nbuffer: { path: buffer.db }\nhealth: { enabled: false }\n',
  );
  const { config, problems } = new ConfigLoader(DRIVERS, dir).loadGatewayConfig('gateway.yaml');
  if (!config) throw new Error(problems.map(formatProblem).join('\n'));
  const gw: Gateway = buildGateway(config, { log: pino({ level: 'silent' }), drivers: DRIVERS, drainMs: 0 });
  const statuses: { device: string; h: HealthSnapshot; at: number }[] = [];
  const polls: Seen[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  // Observe through the metrics registry's public hooks: the status topic content and poll counts.
  const origObserve = gw.metrics.polled.inc.bind(gw.metrics.polled);
  gw.metrics.polled.inc = ((labels: { device: string }, n?: number) => {
    polls.push({ device: labels.device, ts: Date.now() });
    wake();
    return origObserve(labels, n);
  }) as typeof gw.metrics.polled.inc;
  const origUp = gw.metrics.deviceUp.set.bind(gw.metrics.deviceUp);
  gw.metrics.deviceUp.set = ((labels: { device: string }, v: number) => {
    const h = gw.deviceStatus(labels.device);
    if (h) statuses.push({ device: labels.device, h, at: Date.now() });
    wake();
    return origUp(labels, v);
  }) as typeof gw.metrics.deviceUp.set;
  const until = (pred: () => boolean, ms: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  await gw.start();
  cleanups.push(() => gw.stop());
  return { gw, statuses, polls, until, dir };
}
