// The gateway's HTTP face, wired to the parts it reports on: /healthz (what ok means is
// judge.ts's), /metrics (gauges read from the buffer on demand) and the status page (status.ts).
import type { SqliteBuffer } from '../buffer/sqlite-buffer.js';
import type { GatewayFileConfig } from '../config/schema.js';
import type { HealthSnapshot } from '../core/device-health.js';
import type { LatestSamples } from '../core/device-pipeline.js';
import type { GatewayHealth } from '../core/gateway-health.js';
import type { LinkPool } from '../core/link-pool.js';
import type { MqttPublisher } from '../publish/mqtt-publisher.js';
import type { Output } from '../outputs/types.js';
import { judgeHealth, type OutputReport } from './judge.js';
import type { Metrics } from './metrics.js';
import { HealthServer } from './server.js';
import { statusSnapshot } from './status.js';

export interface HealthEndpointDeps {
  gateway: GatewayFileConfig;
  metrics: Metrics;
  buffer: SqliteBuffer;
  publisher: MqttPublisher;
  /** Every output, MQTT first. */
  outputs(): readonly Output[];
  pool: LinkPool;
  gwHealth: GatewayHealth;
  /** Each device's latest sample per point (pruned here of devices no longer running). */
  latest: LatestSamples;
  deviceStatusOf(device: string): HealthSnapshot | undefined;
  /** The EL stage's last status and queue, when it runs. */
  el(): { status: Record<string, unknown> | undefined; queued: number } | undefined;
}

/** Each output's state and share of the buffer, as /healthz, the status page and /metrics show it. */
export function outputsReport(
  outputs: readonly Output[],
  buffer: SqliteBuffer,
  backlogs: ReturnType<SqliteBuffer['outputBacklogs']> = buffer.outputBacklogs(),
): Record<string, OutputReport> {
  const now = Date.now();
  const out: Record<string, OutputReport> = {};
  for (const o of outputs) {
    const st = o.status();
    const b = backlogs[o.name];
    out[o.name] = {
      state: st.state,
      ...(st.reason ? { reason: st.reason } : {}),
      delivery: o.delivery,
      encoding: o.encoding,
      backlog: b?.backlog ?? 0,
      lag_s: b?.oldestTs === undefined ? 0 : Math.max(0, Math.round((now - b.oldestTs) / 1000)),
      delivered: st.delivered,
    };
  }
  return out;
}

export function healthEndpoints(d: HealthEndpointDeps): HealthServer {
  const { gateway: g, metrics, buffer, publisher, pool } = d;
  const judge = () => {
    // One query for both: the publisher's backlog (is it stalled?) and every output's report.
    const backlogs = buffer.outputBacklogs();
    const waiting = backlogs[publisher.name] ?? { backlog: 0 };
    return judgeHealth({
      limits: {
        brokerAwayMs: g.health.broker_away_s * 1000,
        bufferFullRatio: g.health.buffer_full_ratio,
        maxBytes: g.buffer.max_bytes,
        critical: g.health.critical_devices,
      },
      gateway: d.gwHealth.state,
      mqtt: {
        connected: publisher.isConnected,
        awayMs: publisher.awayMs,
        refusal: publisher.protocol.refusal,
        protocol: publisher.protocol.describe(),
        stall: { ...publisher.stall(waiting), backlog: waiting.backlog },
      },
      buffer: { ...buffer.stats(), health: buffer.health },
      outputs: outputsReport(d.outputs(), buffer, backlogs),
      devices: Object.fromEntries(pool.devices().map((name) => [name, pool.health(name)?.state])),
    });
  };
  return new HealthServer(metrics, {
    health: judge,
    status: () => {
      for (const name of d.latest.keys()) if (!pool.has(name)) d.latest.delete(name);
      return statusSnapshot({
        site: g.site,
        gateway: g.gateway_id,
        health: judge(),
        devices: pool.devices().map((name) => ({ name, status: d.deviceStatusOf(name), latest: d.latest.get(name) })),
        el: d.el(),
      });
    },
    refreshGauges: () => {
      const st = buffer.stats();
      metrics.bufferDepth.set(st.depth);
      metrics.bufferBytes.set(st.bytes);
      metrics.bufferEvicted.set(st.evicted);
      metrics.bufferUnstored.set(st.unstored);
      metrics.deadLetters.set(st.deadLetters);
      metrics.bufferAge.set(st.oldestTs === undefined ? 0 : Math.max(0, (Date.now() - st.oldestTs) / 1000));
      for (const [name, o] of Object.entries(outputsReport(d.outputs(), buffer))) {
        metrics.outputBacklog.set({ output: name }, o.backlog);
        metrics.outputLag.set({ output: name }, o.lag_s);
        metrics.outputUp.set({ output: name }, o.state === 'up' ? 1 : 0);
      }
    },
  });
}
