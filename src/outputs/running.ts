// The outputs besides MQTT that run now (registry.ts), each made with its section of the gateway
// file and its own view of the buffer, and changing them on a reload: removed and changed ones
// stop (what they had not confirmed stays in the buffer under their name), the buffer's cursors
// follow (src/buffer/output-slots.ts), and added and changed ones start from their cursor. MQTT's
// cursor and every unchanged output go on.
import type { Logger } from 'pino';
import type { SqliteBuffer } from '../buffer/sqlite-buffer.js';
import type { LoadedConfig } from '../config/load.js';
import type { GatewayHealth } from '../core/gateway-health.js';
import type { Metrics } from '../health/metrics.js';
import { OUTPUT_KINDS } from './registry.js';
import type { Output, OutputKind } from './types.js';

export interface RunningOutputsDeps {
  buffer: SqliteBuffer;
  gwHealth: GatewayHealth;
  metrics: Metrics;
  log: Logger;
  identity: { site: string; gateway: string };
}

/** The output kinds whose section is in the gateway file and enabled, with their sections. */
export function enabledOutputs(config: LoadedConfig): [OutputKind, never][] {
  const sections = (config.gateway.outputs ?? {}) as Record<string, unknown>;
  return OUTPUT_KINDS.filter((k) => sections[k.key] !== undefined && k.enabled(sections[k.key] as never)).map((k) => [k, sections[k.key] as never]);
}

export class RunningOutputs {
  /** The outputs running now, in registry order. */
  readonly list: Output[] = [];
  /** Each running output's section, to tell at a reload which changed. */
  private readonly sections = new Map<string, string>();

  constructor(
    private config: LoadedConfig,
    kinds: readonly [OutputKind, never][],
    private readonly deps: RunningOutputsDeps,
  ) {
    for (const [kind, cfg] of kinds) this.add(kind, cfg);
  }

  start(): void {
    for (const o of this.list) o.start();
  }

  async reload(next: LoadedConfig): Promise<void> {
    const { buffer, gwHealth, log } = this.deps;
    this.config = next;
    const want = new Map(enabledOutputs(next).map(([kind, cfg]) => [kind.key, [kind, cfg] as const]));
    for (const o of [...this.list]) {
      const w = want.get(o.name);
      if (w && JSON.stringify(w[1]) === this.sections.get(o.name)) continue;
      await o.stop().catch((err: unknown) => log.error({ err, output: o.name }, 'stopping an output failed'));
      this.list.splice(this.list.indexOf(o), 1);
      this.sections.delete(o.name);
      gwHealth.set(`output ${o.name}`, undefined);
      log.info({ output: o.name }, w ? 'output stopped to take its new settings' : 'output removed');
    }
    buffer.setOutputs(['mqtt', ...want.keys()]);
    for (const [name, [kind, cfg]] of want) {
      if (this.list.some((o) => o.name === name)) continue;
      try {
        this.add(kind, cfg).start();
      } catch (err) {
        // Its rows wait under its name in the buffer; the next reload with a fixed section starts it.
        gwHealth.set(`output ${name}`, `output ${name} cannot start: ${(err as Error).message}`);
        log.error({ err, output: name }, 'output cannot start');
      }
    }
  }

  private add(kind: OutputKind, cfg: never): Output {
    const { buffer, gwHealth, metrics, log, identity } = this.deps;
    const o = kind.create(cfg, {
      view: buffer.view(kind.key),
      log,
      metrics,
      identity,
      baseDir: this.config.baseDir,
      onStatus: (st) => gwHealth.set(`output ${kind.key}`, st.state === 'down' ? `output ${kind.key} failing: ${st.reason ?? 'unknown'}` : undefined),
      fault: (err) => gwHealth.fault(`output ${kind.key}`, err),
    });
    this.list.push(o);
    this.sections.set(kind.key, JSON.stringify(cfg));
    return o;
  }
}
