// Builds a real gateway in-process from YAML written to a temp dir.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/yaml-file.js';
import { buildGateway, type Gateway, type GatewayDeps } from '../../src/gateway.js';
import type { TestBroker } from '../../simulators/mqtt-broker/other-brokers.js';

export interface TestGateway {
  gw: Gateway;
  dir: string;
  cleanup(): Promise<void>;
}

export function makeGateway(
  gatewayYaml: string,
  devicesYaml: string,
  log: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  /** Writes extra files (certificates, …) into the config folder before the config is loaded. */
  prepare?: (dir: string) => void,
  /** Dependencies to replace (drivers wrapped to misbehave, a worker script, …). */
  deps: Partial<GatewayDeps> = {},
  /** The folder to use (a mount made by the test); a new temporary one by default. */
  dirIn?: string,
): TestGateway {
  const dir = dirIn ?? mkdtempSync(join(tmpdir(), 'edgeferry-gw-'));
  writeFileSync(join(dir, 'gateway.yaml'), gatewayYaml);
  writeFileSync(join(dir, 'devices.yaml'), devicesYaml);
  prepare?.(dir);
  const { config, problems } = new ConfigLoader(DRIVERS, dir).loadGatewayConfig('gateway.yaml');
  if (!config) throw new Error(problems.map(formatProblem).join('\n'));
  const gw = buildGateway(config, {
    log,
    drivers: DRIVERS,
    drainMs: 2000,
    ...deps,
  });
  return {
    gw,
    dir,
    cleanup: async () => {
      await gw.stop();
      if (!dirIn) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A gateway file for site "s", gateway "g" on a test mosquitto, with extra YAML appended under the top level. */
export function gatewayYaml(broker: Pick<TestBroker, 'url' | 'files'>, opts: { mqtt?: string; buffer?: string } = {}): string {
  return `version: 1
site: s
gateway_id: g
devices: [devices.yaml]
mqtt:
  url: ${broker.url}
  reconnect_ms: 200
  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }
${opts.mqtt ?? ''}
buffer:
  path: buffer.db
${opts.buffer ?? ''}
logging: { level: warn }
health: { port: 0 }
`;
}
