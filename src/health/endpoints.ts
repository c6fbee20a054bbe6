// The gateway's HTTP face, wired to the parts it reports on: /healthz (what ok means is
// judge.ts's), /metrics (gauges read from the buffer on demand) and the status page (status.ts).
import type { SqliteBuffer } from '../buffer/sqlite-buffer.js';
import type { GatewayFileConfig } from '../config/schema.js';
import type { HealthSnapshot } from '../core/device-health.js';
import type { LatestSamples } from '../core/device-pipeline.js';
import type { GatewayHealth } from '../core/gateway-health.js';
import type { LinkPool } from '../core/link-pool.js';
import type { MqttPublisher } from '../publish/mqtt-publisher.js';
import { judgeHealth } from './judge.js';
import type { Metrics } from './metrics.js';
import { HealthServer } from './server.js';
import { statusSnapshot } from './status.js';

export interface HealthEndpointDeps {
  gateway: GatewayFileConfig;
  metrics: Metrics;
  buffer: SqliteBuffer;
  publisher: MqttPublisher;
  pool: LinkPool;
  gwHealth: GatewayHealth;
  /** Each device's latest sample per point (pruned here of devices no longer running). */
  latest: LatestSamples;
  deviceStatusOf(device: string): HealthSnapshot | undefined;
  /** The EL stage's last status and queue, when it runs. */
  el(): { status: Record<string, unknown> | undefined; queued: number } | undefined;
}

export function healthEndpoints(d: HealthEndpointDeps): HealthServer {
  const { gateway: g, metrics, buffer, publisher, pool } = d;
  const judge = () =>
    judgeHealth({
      limits: {
        brokerAwayMs: g.health.broker_away_s * 1000,
        bufferFullRatio: g.health.buffer_full_ratio,
        maxBytes: g.buffer.max_bytes,
        critical: g.health.critical_devices,
      },
      gateway: d.gwHealth.state,
      mqtt: { connected: publisher.isConnected, awayMs: publisher.awayMs },
      buffer: { ...buffer.stats(), health: buffer.health },
      devices: Object.fromEntries(pool.devices().map((name) => [name, pool.health(name)?.state])),
    });
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
    },
  });
}
