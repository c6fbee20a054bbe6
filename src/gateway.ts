// buildGateway(): the whole pipeline as an object, with no side effects on import or build; only
// start() opens files and sockets. Tests build real gateways in-process with this.
//
//   device maps ─► scheduler ─(tick)─► link runner (one per endpoint: open, heartbeat, fair
//                                        queue, backoff) ─► driver.read on the link ─► readings
//                                                                        │ report filter
//                                                                        ▼
//                         broker ◄─ publisher ◄─(seq order, PUBACK deletes)─ SQLite buffer
//
// The gateway is a list of rooms (src/core/rooms.ts) started in order, sinks before sources
// (buffer, health, outputs, sink, commands, links, scheduler, EL stage), and stopped in reverse,
// each in its own error boundary, draining the buffer to the outputs within a deadline (STYLE
// rule 8). Rooms built early never call ones built later: what they have to say goes through
// typed events (src/core/events.ts) that the rooms acting on it subscribe to here.
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import { logLoss } from './buffer/loss-log.js';
import { SqliteBuffer, type BufferStats } from './buffer/sqlite-buffer.js';
import type { LoadedConfig } from './config/load.js';
import type { HealthSnapshot } from './core/device-health.js';
import type { DriverSpec } from './core/driver.js';
import { GatewayHealth, type HealthState } from './core/gateway-health.js';
import { Scheduler } from './core/scheduler.js';
import { createMetrics, type Metrics } from './health/metrics.js';
import { sampleSink } from './core/sample-sink.js';
import type { LatestSamples } from './core/device-pipeline.js';
import { LinkPool, type LinkPoolDeps } from './core/link-pool.js';
import { RunningDevices, type ReloadReport } from './core/running-devices.js';
import { deviceStatusView } from './publish/device-status.js';
import { healthEndpoints } from './health/endpoints.js';
import { MqttPublisher, type MqttConnect, type PublisherDeps } from './publish/mqtt-publisher.js';
import type { InferenceStage } from './inference/stage.js';
import { elStage } from './inference/wiring.js';
import { CommandService } from './commands/command-service.js';
import { WriteGate } from './commands/write-gate.js';
import { sparkplugNode } from './publish/sparkplug/wiring.js';
import { enabledOutputs, RunningOutputs } from './outputs/running.js';
import type { Output } from './outputs/types.js';
import { GatewayEvents } from './core/events.js';
import { startRooms, stopRooms, type Room } from './core/rooms.js';

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
  /** Resolves once the broker acknowledged the command subscription (mqtt.commands enabled). */
  commandsReady(): Promise<void>;
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

export type { ReloadReport } from './core/running-devices.js';

/**
 * Polls that end within this long of each other share one buffer transaction (src/core/sample-sink.ts):
 * at a plant's rate a few devices per commit instead of one, for 2 ms of latency at most.
 */
const GROUP_COMMIT_MS = 2;

export function buildGateway(config: LoadedConfig, deps: GatewayDeps): Gateway {
  const { gateway: g, baseDir } = config;
  const log = deps.log;
  const metrics = createMetrics();
  /** The rooms' news (src/core/events.ts): emitted where it happens, acted on by the rooms subscribed below. */
  const events = new GatewayEvents((event, err) => {
    metrics.faults.inc({ component: `event ${event}` });
    log.error({ err, event }, 'a room failed to act on an event; the others did');
  });
  const gwHealth = new GatewayHealth(log.child({ component: 'health' }), metrics, (state) => events.emit('health', state));
  const bufferPath = isAbsolute(g.buffer.path) ? g.buffer.path : resolve(baseDir, g.buffer.path);
  const bufferLog = log.child({ component: 'buffer' });
  const kinds = enabledOutputs(config);
  const buffer = new SqliteBuffer(bufferPath, {
    synchronous: g.buffer.synchronous,
    maxBytes: g.buffer.max_bytes,
    maxAgeS: g.buffer.max_age_s,
    outputs: ['mqtt', ...kinds.map(([k]) => k.key)],
    onEvent: (e) => logLoss(bufferLog, e),
  });
  buffer.onHealth = (h) => gwHealth.set('buffer', h.state === 'ok' ? undefined : h.reasons.join('; '));
  /** Each device's latest sample per point, for the status page (and Sparkplug births). */
  const latest: LatestSamples = new Map();
  const scheduler = pollScheduler(log, metrics, gwHealth);
  const pool = new LinkPool({ drivers: deps.drivers, log, baseDir, gateway: { site: g.site, id: g.gateway_id }, ...poolEvents(log, metrics, events) });
  /** Samples and verdicts → the buffer → the outputs (src/core/sample-sink.ts). */
  const sink = sampleSink({
    buffer,
    buffered: (n) => metrics.buffered.inc(n),
    wake: () => events.emit('buffered'),
    groupMs: GROUP_COMMIT_MS,
    // The disk refused even after eviction: the buffer counted these samples, gives them a
    // data_lost event and reports itself degraded (once); nothing already buffered is touched.
    refused: (err, lost) => log.debug({ err, lost }, 'buffer append failed'),
  });
  const devices = new RunningDevices(config, { log, metrics, scheduler, sink, pollPayload: g.mqtt.payload === 'poll', latest, pool, gwHealth, events });
  const cmdLog = log.child({ component: 'commands' });
  const gate = new WriteGate({ log: cmdLog, metrics, writer: (d) => devices.writer(d), writers: () => devices.allWriters() });
  const session = sparkplugNode(config, bufferPath, { log, gate, latest, devices, drivers: deps.drivers, metrics });
  const publisher = new MqttPublisher(g.mqtt, { site: g.site, gateway: g.gateway_id }, publisherDeps(config, deps, { buffer, metrics, gwHealth, session }));
  const outputs = new RunningOutputs(config, kinds, {
    buffer,
    gwHealth,
    metrics,
    log: log.child({ component: 'output' }),
    identity: { site: g.site, gateway: g.gateway_id },
  });
  const el = elStage(config, deps, { sink, publisher, metrics, gwHealth });
  const commands = g.mqtt.commands.enabled
    ? new CommandService(
        g.mqtt,
        { site: g.site, gateway: g.gateway_id },
        { log: cmdLog, baseDir, gate, connect: deps.mqttConnect, protocol: publisher.protocol },
      )
    : undefined;
  const deviceStatusOf = (device: string) => shownStatus(pool, device);
  const health = healthEndpoints({
    gateway: g,
    metrics,
    buffer,
    publisher,
    outputs: () => [publisher, ...outputs.list],
    pool,
    gwHealth,
    latest,
    deviceStatusOf,
    el: () => el && { status: el.status(), queued: el.stage.queued },
  });

  /** Fields of the retained gateway status besides the health: the outcome of the last reload. */
  let statusExtra: Record<string, unknown> = {};
  const publishHealth = () => publisher.setGatewayStatus({ ...statusExtra, ...gwHealth.state });
  events.on('health', publishHealth);
  events.on('device-changed', (device) => {
    const shown = deviceStatusOf(device);
    if (shown) publisher.setDeviceStatus(device, shown);
  });
  events.on('device-status', (device, status) => publisher.setDeviceStatus(device, status));
  events.on('device-removed', (device) => publisher.removeDevice(device));
  events.on('buffered', () => {
    publisher.wake();
    for (const o of outputs.list) o.wake();
  });
  publishHealth();

  let healthPort: number | undefined;
  const drainMs = deps.drainMs ?? 5000;
  const rooms: Room[] = [
    {
      name: 'buffer',
      start: () => {
        buffer.open(); // a damaged or reset file is logged by its event (src/buffer/loss-log.ts)
        try {
          buffer.evictAged();
        } catch (err) {
          gwHealth.fault('buffer', err); // tried again with the appends
        }
      },
      stop: () => buffer.close(),
    },
    {
      name: 'health',
      start: async () => {
        if (g.health.enabled) healthPort = await health.listen(g.health.host, g.health.port);
      },
      stop: () => health.close(),
    },
    {
      // Stopping drains the buffer to every output within the deadline (STYLE rule 8), then ends them.
      name: 'outputs',
      start: () => {
        publisher.start();
        outputs.start();
      },
      stop: async () => {
        const all: Output[] = [publisher, ...outputs.list];
        const drained = await Promise.all(all.map((o) => o.drain(drainMs).then((ok) => [o.name, ok] as const)));
        const behind = drained.filter(([, ok]) => !ok).map(([name]) => name);
        if (behind.length) log.warn({ buffered: buffer.depth(), outputs: behind }, 'stopping with samples still buffered; they are sent after the next start');
        for (const o of all) {
          await o.stop().catch((err: unknown) => log.error({ err, output: o.name }, 'stopping an output failed; the others go on stopping'));
        }
      },
    },
    { name: 'sink', stop: () => sink.flush() }, // the last polls' samples, before draining
    // After the links at stop: writes still waiting were answered "stopped".
    { name: 'commands', start: () => commands?.start(), stop: () => commands?.stop() },
    {
      name: 'links',
      start: () => {
        devices.wireAll();
        pool.start();
      },
      stop: () => pool.stop(),
    },
    { name: 'scheduler', start: () => scheduler.start(), stop: () => scheduler.stop() },
    { name: 'el', start: () => el?.stage.start(), stop: () => el?.stage.stop() },
  ];
  return {
    metrics,
    reload: async (next) => {
      try {
        const report = await devices.reload(next);
        await outputs.reload(next);
        // Outputs are applied while running, not at a restart.
        return { ...report, restartNeeded: report.restartNeeded.filter((k) => k !== 'outputs') };
      } finally {
        session?.rebirth(); // Sparkplug: new metrics, new births
      }
    },
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
    inference: el?.stage,
    commandsReady: () => commands?.ready ?? Promise.reject(new Error('mqtt.commands is not enabled')),
    linkPending: () => pool.pending(),
    bufferStats: () => buffer.stats(),
    async start() {
      await startRooms(rooms);
      log.info({ ...pool.size, buffer: bufferPath, health_port: healthPort }, 'gateway started');
    },
    stop: async () => {
      await stopRooms(log, rooms);
      log.info('gateway stopped');
    },
  };
}

/** A device as its status topic (and the status page) shows it (src/publish/device-status.ts). */
function shownStatus(pool: LinkPool, device: string): HealthSnapshot | undefined {
  const h = pool.health(device);
  return h && deviceStatusView(h, pool.failover(device));
}

interface Shared {
  buffer: SqliteBuffer;
  metrics: Metrics;
  gwHealth: GatewayHealth;
  session: PublisherDeps['session'];
}

function publisherDeps(config: LoadedConfig, deps: GatewayDeps, { buffer, metrics, gwHealth, session }: Shared): PublisherDeps {
  const g = config.gateway;
  return {
    buffer: buffer.view('mqtt'),
    log: deps.log.child({ component: 'publisher' }),
    metrics,
    baseDir: config.baseDir,
    connect: deps.mqttConnect,
    replayRate: g.buffer.replay_rate,
    replayOrder: g.buffer.replay_order,
    batchSize: g.buffer.batch_size,
    elTopicTemplate: g.inference?.enabled ? g.inference.topic_template : undefined,
    fault: (component, err) => gwHealth.fault(component, err),
    session,
  };
}

/** The scheduler, with overruns counted and a poll group that throws shown as degraded. */
function pollScheduler(log: Logger, metrics: Metrics, gwHealth: GatewayHealth): Scheduler {
  return new Scheduler({
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
}

/** What the link pool reports: device up/down, failover switches, exchanges and reconnects → metrics, log, status topic. */
function poolEvents(log: Logger, metrics: Metrics, events: GatewayEvents): Omit<LinkPoolDeps, 'drivers' | 'log' | 'baseDir'> {
  // Labelled once per device: prom-client hashes the labels of every call otherwise.
  const children = new Map<string, ReturnType<typeof metrics.exchangeSeconds.labels>>();
  const rtt = (device: string) => {
    let c = children.get(device);
    if (!c) children.set(device, (c = metrics.exchangeSeconds.labels({ device })));
    return c;
  };
  return {
    onPrimary: (device, h) => metrics.deviceUp.set({ device }, h.state === 'up' || h.state === 'degraded' ? 1 : 0),
    onDeviceChanged: (device) => events.emit('device-changed', device),
    onSwitch: (device, to, reason, failover) => {
      metrics.failoverSwitches.inc({ device, to });
      metrics.failoverActive.set({ device }, to === 'backup' ? 1 : 0);
      log.warn({ device, to, channel: failover.endpoint, reason }, `critical points switched to the ${to} channel`);
      events.emit('device-changed', device);
    },
    onExchange: (device, outcome) => {
      if ('rttMs' in outcome) rtt(device).observe(outcome.rttMs / 1000);
      else metrics.exchangeFailures.inc({ device, kind: outcome.failure });
    },
    onReconnect: (endpoint) => metrics.reconnects.inc({ endpoint }),
  };
}
