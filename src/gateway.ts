// buildGateway(): the whole pipeline as an object, with no side effects on import or build; only
// start() opens files and sockets. Tests build real gateways in-process with this.
//
//   device maps ─► scheduler ─(tick)─► link runner (one per endpoint: open, heartbeat, fair
//                                        queue, backoff) ─► driver.read on the link ─► readings
//                                                                        │ report filter
//                                                                        ▼
//                         broker ◄─ publisher ◄─(seq order, PUBACK deletes)─ SQLite buffer
//
// Start order is sinks before sources (buffer, publisher, devices, scheduler); stop is the reverse,
// draining the buffer to the broker within a deadline (STYLE rule 8).
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import { SqliteBuffer, type BufferStats } from './buffer/sqlite-buffer.js';
import type { LoadedConfig, LoadedDevice } from './config/load.js';
import type { HealthSnapshot } from './core/device-health.js';
import type { DriverSpec } from './core/driver.js';
import { GatewayHealth, type HealthState } from './core/gateway-health.js';
import { Scheduler } from './core/scheduler.js';
import { createMetrics, type Metrics } from './health/metrics.js';
import { canon, planReload } from './core/reload-plan.js';
import { sampleSink } from './core/sample-sink.js';
import { startPipeline, type LatestSamples } from './core/device-pipeline.js';
import { LinkPool } from './core/link-pool.js';
import { deviceStatusView } from './publish/device-status.js';
import { healthEndpoints } from './health/endpoints.js';
import { MqttPublisher, type MqttConnect } from './publish/mqtt-publisher.js';
import { renderTopic } from './publish/topics.js';
import { InferenceStage } from './inference/stage.js';

export interface GatewayDeps {
  log: Logger;
  drivers: readonly DriverSpec[];
  mqttConnect?: MqttConnect;
  /** Deadline for draining the buffer on stop(). Default 5 s (systemd's TimeoutStopSec is longer). */
  drainMs?: number;
  /** The inference worker script (tests wrap the real one to make it fail). */
  inferenceWorkerFile?: string;
}

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly metrics: Metrics;
  /** Port /healthz and /metrics listen on (after start), or undefined when disabled. */
  readonly healthPort: number | undefined;
  deviceStatus(device: string): HealthSnapshot | undefined;
  /** Requests queued or running on all links (0 once stopped: nothing left pending). */
  linkPending(): number;
  /** Depth, bytes, evictions, dead letters… of the store-and-forward buffer (after start). */
  bufferStats(): BufferStats;
  /** The EL inference stage, when configured. */
  readonly inference: InferenceStage | undefined;
  /**
   * Applies a new, already validated configuration's devices: added ones start, removed ones stop,
   * changed ones restart — and with them only the links they touch; everything else keeps polling
   * and the buffer is not touched. Gateway-level changes (mqtt, buffer, …) need a restart and are
   * listed in the result.
   */
  reload(next: LoadedConfig): Promise<ReloadReport>;
  /** Extra fields of the retained gateway status message (the outcome of the last reload). */
  reportGatewayStatus(extra: Record<string, unknown>): void;
  /** "up", or "degraded" with a reason per component (also on /healthz and the status topic). */
  readonly health: HealthState;
  /** Counts and logs an exception caught outside the gateway (the process-level handler). */
  fault(component: string, err: unknown): void;
}

export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
  /** Links stopped and opened again because a device on them was added, removed or changed. */
  relinked: string[];
  /** Top-level gateway keys that differ and only take effect after a restart. */
  restartNeeded: string[];
}

export function buildGateway(config: LoadedConfig, deps: GatewayDeps): Gateway {
  const { gateway: g, baseDir } = config;
  /** The devices running now (they change on reload; the gateway section does not). */
  let devices = config.devices;
  const log = deps.log;
  const pollPayload = g.mqtt.payload === 'poll';
  const metrics = createMetrics();
  const bufferPath = isAbsolute(g.buffer.path) ? g.buffer.path : resolve(baseDir, g.buffer.path);
  const buffer = new SqliteBuffer(bufferPath, { synchronous: g.buffer.synchronous, maxBytes: g.buffer.max_bytes, maxAgeS: g.buffer.max_age_s });
  /** Fields of the retained gateway status besides the health: the outcome of the last reload. */
  let statusExtra: Record<string, unknown> = {};
  // Called only on changes, all after the publisher below exists; it sends them once connected.
  const publishHealth = () => publisher.setGatewayStatus({ ...statusExtra, ...gwHealth.state });
  const gwHealth = new GatewayHealth(log.child({ component: 'health' }), metrics, publishHealth);
  const publisher = new MqttPublisher(
    g.mqtt,
    { site: g.site, gateway: g.gateway_id },
    {
      buffer,
      log: log.child({ component: 'publisher' }),
      metrics,
      baseDir,
      connect: deps.mqttConnect,
      replayRate: g.buffer.replay_rate,
      replayOrder: g.buffer.replay_order,
      batchSize: g.buffer.batch_size,
      elTopicTemplate: g.inference?.enabled ? g.inference.topic_template : undefined,
      fault: (component, err) => gwHealth.fault(component, err),
    },
  );
  publishHealth();
  buffer.onHealth = (h) => gwHealth.set('buffer', h.state === 'ok' ? undefined : h.reasons.join('; '));
  const scheduler = new Scheduler({
    onOverrun: (group, n) => {
      metrics.overruns.inc({ device: group.device, interval_ms: String(group.intervalMs) }, n);
      log.debug({ device: group.device, interval_ms: group.intervalMs, skipped: n }, 'poll overrun');
    },
    onFault: (group, err) => {
      if (err === undefined) return gwHealth.set(`poll ${group.id}`, undefined);
      gwHealth.fault('poll', err, { device: group.device, group: group.id });
      gwHealth.set(`poll ${group.id}`, `poll group failed: ${(err as Error)?.message ?? String(err)}`);
    },
  });
  /** Each device's latest sample per point, for the status page. */
  const latest: LatestSamples = new Map();
  /** The EL stage's last status, for the status page. */
  let elStatus: Record<string, unknown> | undefined;
  /** Links per endpoint, devices on them, failovers (src/core/link-pool.ts). */
  const pool = new LinkPool({
    drivers: deps.drivers,
    log,
    baseDir,
    onPrimary: (device, h) => metrics.deviceUp.set({ device }, h.state === 'up' || h.state === 'degraded' ? 1 : 0),
    onDeviceChanged: (device) => publishStatus(device),
    onSwitch: (device, to, reason, failover) => {
      metrics.failoverSwitches.inc({ device, to });
      metrics.failoverActive.set({ device }, to === 'backup' ? 1 : 0);
      log.warn({ device, to, channel: failover.endpoint, reason }, `critical points switched to the ${to} channel`);
      publishStatus(device);
    },
    onExchange: (device, outcome) => {
      if ('rttMs' in outcome) metrics.exchangeSeconds.observe({ device }, outcome.rttMs / 1000);
      else metrics.exchangeFailures.inc({ device, kind: outcome.failure });
    },
    onReconnect: (endpoint) => metrics.reconnects.inc({ endpoint }),
  });
  /** /healthz, /metrics and the status page (src/health/endpoints.ts). */
  const health = healthEndpoints({
    gateway: g,
    metrics,
    buffer,
    publisher,
    pool,
    gwHealth,
    latest,
    deviceStatusOf,
    el: () => (stage ? { status: elStatus, queued: stage.queued } : undefined),
  });
  let healthPort: number | undefined;

  /** Samples and verdicts → the buffer → the publisher (src/core/sample-sink.ts). */
  const sink = sampleSink({ buffer, buffered: (n) => metrics.buffered.inc(n), wake: () => publisher.wake() });

  // EL images: their verdicts go through the same buffer and publisher as PLC data.
  const inf = g.inference?.enabled ? g.inference : undefined;
  const stage = inf
    ? new InferenceStage(inf, {
        log: log.child({ component: 'inference' }),
        baseDir,
        append: (samples) => sink(samples),
        status: (payload) => {
          elStatus = payload;
          publisher.setRetained(renderTopic(inf.status_topic, { site: g.site, gateway: g.gateway_id }), JSON.stringify(payload));
        },
        count: (what, n, queued) => {
          if (what === 'model_rejected') metrics.elModelRejected.inc(n);
          else metrics.elImages.inc({ outcome: what }, n);
          metrics.elQueue.set(queued);
        },
        fault: (err) => gwHealth.fault('inference', err),
        workerFile: deps.inferenceWorkerFile,
      })
    : undefined;

  /** What the device status topic says: the primary's health, and with a backup, which channel serves. */
  const publishStatus = (device: string) => {
    const shown = deviceStatusOf(device);
    if (shown) publisher.setDeviceStatus(device, shown);
  };
  /** A device as its status topic (and the status page) shows it (src/publish/device-status.ts). */
  function deviceStatusOf(device: string): HealthSnapshot | undefined {
    const h = pool.health(device);
    return h && deviceStatusView(h, pool.failover(device));
  }

  const wire = (device: LoadedDevice) => {
    const { primary, backup } = pool.join(device);
    if (backup) metrics.failoverActive.set({ device: device.name }, 0);
    startPipeline(device, primary, backup, { log, metrics, scheduler, sink, pollPayload, latest });
  };

  const publishDisabled = (name: string) =>
    publisher.setDeviceStatus(name, {
      state: 'disabled',
      since: Date.now(),
      endpoint: '',
      rtt_ms: { p50: null, p99: null },
      errors: 0,
      timeouts: 0,
      reconnects: 0,
    });

  const reload = async (next: LoadedConfig): Promise<ReloadReport> => {
    const plan = planReload(devices, next.devices, pool.wired, pool.keysOf);
    const { added, removed, changed, down } = plan;
    const affected = new Set(plan.relink);
    // Polls in progress finish (their samples are buffered) before their links close.
    await Promise.all(down.map((n) => scheduler.remove(n)));
    for (const n of down) gwHealth.forget(`poll ${n}@`);
    pool.part(down);
    await pool.drop(affected);
    const wasDisabled = new Set(devices.filter((d) => !d.enabled).map((d) => d.name));
    devices = next.devices;
    const byName = new Map(next.devices.map((d) => [d.name, d]));
    for (const n of plan.wire) wire(byName.get(n)!);
    pool.start(affected);
    for (const n of removed) {
      metrics.deviceUp.remove({ device: n });
      if (!next.devices.some((d) => d.name === n)) publisher.removeDevice(n);
    }
    for (const d of next.devices) if (!d.enabled && !wasDisabled.has(d.name)) publishDisabled(d.name);
    const restartNeeded = Object.keys({ ...g, ...next.gateway }).filter(
      (k) => canon((g as Record<string, unknown>)[k]) !== canon((next.gateway as Record<string, unknown>)[k]),
    );
    return { added, removed, changed, relinked: plan.relink, restartNeeded };
  };

  return {
    metrics,
    reload,
    reportGatewayStatus: (extra) => {
      statusExtra = extra;
      publishHealth();
    },
    get health() {
      return gwHealth.state;
    },
    fault: (component, err) => gwHealth.fault(component, err),
    get healthPort() {
      return healthPort;
    },
    deviceStatus: (name) => pool.health(name),
    inference: stage,
    linkPending: () => pool.pending(),
    bufferStats: () => buffer.stats(),
    async start() {
      buffer.open();
      if (buffer.recovered) {
        log.error({ moved_to: buffer.recovered.movedTo, error: buffer.recovered.error }, 'buffer file was damaged: moved aside, started a fresh buffer');
      }
      try {
        buffer.evictAged();
      } catch (err) {
        gwHealth.fault('buffer', err); // tried again with the appends
      }
      publisher.start();
      for (const d of devices) {
        if (!d.enabled) {
          publishDisabled(d.name);
          continue;
        }
        wire(d);
      }
      pool.start();
      scheduler.start();
      await stage?.start();
      if (g.health.enabled) healthPort = await health.listen(g.health.host, g.health.port);
      log.info({ ...pool.size, buffer: bufferPath, health_port: healthPort }, 'gateway started');
    },
    async stop() {
      await scheduler.stop();
      await stage?.stop();
      await pool.stop();
      const drained = await publisher.drain(deps.drainMs ?? 5000);
      if (!drained) log.warn({ buffered: buffer.depth() }, 'stopping with samples still buffered; they are sent after the next start');
      await publisher.stop();
      await health.close();
      buffer.close();
      log.info('gateway stopped');
    },
  };
}
