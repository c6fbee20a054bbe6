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
import { logLoss } from './buffer/loss-log.js';
import { SqliteBuffer, type BufferStats } from './buffer/sqlite-buffer.js';
import type { LoadedConfig } from './config/load.js';
import type { HealthSnapshot } from './core/device-health.js';
import type { DriverSpec } from './core/driver.js';
import { GatewayHealth, type HealthState } from './core/gateway-health.js';
import { Scheduler } from './core/scheduler.js';
import { createMetrics, type Metrics } from './health/metrics.js';
import { sampleSink, type SampleSink } from './core/sample-sink.js';
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
import { OUTPUT_KINDS } from './outputs/registry.js';
import type { Output, OutputKind } from './outputs/types.js';

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

/** The rooms a gateway is made of; start and stop run over them in order. */
interface Rooms {
  log: Logger;
  buffer: SqliteBuffer;
  bufferPath: string;
  gwHealth: GatewayHealth;
  publisher: MqttPublisher;
  /** Outputs besides MQTT (src/outputs/registry.ts), each with its own cursor in the buffer. */
  outputs: Output[];
  scheduler: Scheduler;
  pool: LinkPool;
  devices: RunningDevices;
  sink: SampleSink;
  stage: InferenceStage | undefined;
  commands: CommandService | undefined;
  health: ReturnType<typeof healthEndpoints>;
}

export function buildGateway(config: LoadedConfig, deps: GatewayDeps): Gateway {
  const { gateway: g, baseDir } = config;
  const log = deps.log;
  const metrics = createMetrics();
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
  /** Fields of the retained gateway status besides the health: the outcome of the last reload. */
  let statusExtra: Record<string, unknown> = {};
  // Called only on changes, all after the publisher below exists; it sends them once connected.
  const publishHealth = () => publisher.setGatewayStatus({ ...statusExtra, ...gwHealth.state });
  const gwHealth = new GatewayHealth(log.child({ component: 'health' }), metrics, publishHealth);
  /** Each device's latest sample per point, for the status page (and Sparkplug births). */
  const latest: LatestSamples = new Map();
  const cmdLog = log.child({ component: 'commands' });
  const gate = new WriteGate({ log: cmdLog, metrics, writer: (d) => devices.writer(d) });
  const session = sparkplugNode(config, bufferPath, { log, gate, latest, devices: () => devices, drivers: deps.drivers, metrics });
  const publisher = new MqttPublisher(g.mqtt, { site: g.site, gateway: g.gateway_id }, publisherDeps(config, deps, { buffer, metrics, gwHealth, session }));
  publishHealth();
  const outLog = log.child({ component: 'output' });
  const makeOutput = (kind: OutputKind, cfg: never): Output =>
    kind.create(cfg, {
      view: buffer.view(kind.key),
      log: outLog,
      metrics,
      identity: { site: g.site, gateway: g.gateway_id },
      baseDir: config.baseDir,
      onStatus: (st) => gwHealth.set(`output ${kind.key}`, st.state === 'down' ? `output ${kind.key} failing: ${st.reason ?? 'unknown'}` : undefined),
      fault: (err) => gwHealth.fault(`output ${kind.key}`, err),
    });
  /** The outputs besides MQTT, running; changed in place by a reload (everything holds this array). */
  const outputs: Output[] = kinds.map(([kind, cfg]) => makeOutput(kind, cfg));
  /** Each running output's section, to tell at a reload which changed. */
  const outputSections = new Map(kinds.map(([kind, cfg]) => [kind.key, JSON.stringify(cfg)]));
  /**
   * A reload's outputs: removed and changed ones stop (what they had not confirmed stays in the
   * buffer under their name), the buffer's cursors follow (src/buffer/output-slots.ts) and added
   * and changed ones start from their cursor. MQTT's cursor, and every unchanged output, go on.
   */
  const reloadOutputs = async (next: LoadedConfig): Promise<void> => {
    const want = new Map(enabledOutputs(next).map(([kind, cfg]) => [kind.key, [kind, cfg] as const]));
    for (const o of [...outputs]) {
      const w = want.get(o.name);
      if (w && JSON.stringify(w[1]) === outputSections.get(o.name)) continue;
      await o.stop().catch((err: unknown) => log.error({ err, output: o.name }, 'stopping an output failed'));
      outputs.splice(outputs.indexOf(o), 1);
      outputSections.delete(o.name);
      gwHealth.set(`output ${o.name}`, undefined);
      log.info({ output: o.name }, w ? 'output stopped to take its new settings' : 'output removed');
    }
    buffer.setOutputs(['mqtt', ...want.keys()]);
    for (const [name, [kind, cfg]] of want) {
      if (outputs.some((o) => o.name === name)) continue;
      try {
        const o = makeOutput(kind, cfg);
        outputs.push(o);
        outputSections.set(name, JSON.stringify(cfg));
        o.start();
      } catch (err) {
        // Its rows wait under its name in the buffer; the next reload with a fixed section starts it.
        gwHealth.set(`output ${name}`, `output ${name} cannot start: ${(err as Error).message}`);
        log.error({ err, output: name }, 'output cannot start');
      }
    }
  };
  buffer.onHealth = (h) => gwHealth.set('buffer', h.state === 'ok' ? undefined : h.reasons.join('; '));
  const scheduler = pollScheduler(log, metrics, gwHealth);
  const deviceStatusOf = (device: string) => shownStatus(pool, device);
  const publishStatus = (device: string) => {
    const shown = deviceStatusOf(device);
    if (shown) publisher.setDeviceStatus(device, shown);
  };
  const pool = new LinkPool({ drivers: deps.drivers, log, baseDir, gateway: { site: g.site, id: g.gateway_id }, ...poolEvents(log, metrics, publishStatus) });
  /** Samples and verdicts → the buffer → the publisher (src/core/sample-sink.ts). */
  const sink = sampleSink({
    buffer,
    buffered: (n) => metrics.buffered.inc(n),
    wake: () => {
      publisher.wake();
      for (const o of outputs) o.wake();
    },
    groupMs: GROUP_COMMIT_MS,
    // The disk refused even after eviction: the buffer counted these samples, gives them a
    // data_lost event and reports itself degraded (once); nothing already buffered is touched.
    refused: (err, lost) => log.debug({ err, lost }, 'buffer append failed'),
  });
  const el = elStage(config, deps, { sink, publisher, metrics, gwHealth });
  const health = healthEndpoints({
    gateway: g,
    metrics,
    buffer,
    publisher,
    outputs: () => [publisher, ...outputs],
    pool,
    gwHealth,
    latest,
    deviceStatusOf,
    el: () => el && { status: el.status(), queued: el.stage.queued },
  });
  const devices = new RunningDevices(config, {
    log,
    metrics,
    scheduler,
    sink,
    pollPayload: g.mqtt.payload === 'poll',
    latest,
    pool,
    gwHealth,
    statuses: publisher,
  });
  const cmdDeps = { log: cmdLog, baseDir, gate, connect: deps.mqttConnect };
  const commands = g.mqtt.commands.enabled ? new CommandService(g.mqtt, { site: g.site, gateway: g.gateway_id }, cmdDeps) : undefined;
  const rooms: Rooms = { log, buffer, bufferPath, gwHealth, publisher, outputs, scheduler, pool, devices, sink, stage: el?.stage, commands, health };
  let healthPort: number | undefined;
  return {
    metrics,
    reload: async (next) => {
      try {
        const report = await devices.reload(next);
        await reloadOutputs(next);
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
      if (g.health.enabled) healthPort = await health.listen(g.health.host, g.health.port);
      log.info({ ...pool.size, buffer: bufferPath, health_port: healthPort }, 'gateway started');
    },
    stop: () => stopRooms(rooms, deps.drainMs ?? 5000),
  };
}

/** A device as its status topic (and the status page) shows it (src/publish/device-status.ts). */
function shownStatus(pool: LinkPool, device: string): HealthSnapshot | undefined {
  const h = pool.health(device);
  return h && deviceStatusView(h, pool.failover(device));
}

/** Sinks before sources: the buffer, the publisher, the devices on their links, the scheduler, the EL stage. */
async function startRooms(r: Rooms): Promise<void> {
  r.buffer.open(); // a damaged or reset file is logged by its event (src/buffer/loss-log.ts)
  try {
    r.buffer.evictAged();
  } catch (err) {
    r.gwHealth.fault('buffer', err); // tried again with the appends
  }
  r.publisher.start();
  for (const o of r.outputs) o.start();
  r.devices.wireAll();
  r.pool.start();
  r.scheduler.start();
  r.commands?.start();
  await r.stage?.start();
}

/**
 * The reverse, draining the buffer to every output within the deadline (STYLE rule 8). Each room
 * stops inside its own error boundary: one that throws is logged and the others still stop — the
 * buffer is closed whatever happened before it.
 */
async function stopRooms(r: Rooms, drainMs: number): Promise<void> {
  const step = async (room: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      r.log.error({ err, room }, 'stopping a room failed; the others go on stopping');
    }
  };
  await step('scheduler', () => r.scheduler.stop());
  await step('el', () => r.stage?.stop());
  await step('links', () => r.pool.stop());
  await step('commands', () => r.commands?.stop()); // after the links: writes still waiting were answered "stopped"
  await step('sink', () => r.sink.flush()); // the last polls' samples, before draining
  const all: Output[] = [r.publisher, ...r.outputs];
  await step('drain', async () => {
    const drained = await Promise.all(all.map((o) => o.drain(drainMs).then((ok) => [o.name, ok] as const)));
    const behind = drained.filter(([, ok]) => !ok).map(([name]) => name);
    if (behind.length) r.log.warn({ buffered: r.buffer.depth(), outputs: behind }, 'stopping with samples still buffered; they are sent after the next start');
  });
  for (const o of all) await step(`output ${o.name}`, () => o.stop());
  await step('health', () => r.health.close());
  await step('buffer', () => r.buffer.close());
  r.log.info('gateway stopped');
}

/** The output kinds whose section is in the gateway file and enabled, with their sections. */
function enabledOutputs(config: LoadedConfig): [OutputKind, never][] {
  const sections = (config.gateway.outputs ?? {}) as Record<string, unknown>;
  return OUTPUT_KINDS.filter((k) => sections[k.key] !== undefined && k.enabled(sections[k.key] as never)).map((k) => [k, sections[k.key] as never]);
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
function poolEvents(log: Logger, metrics: Metrics, publishStatus: (device: string) => void): Omit<LinkPoolDeps, 'drivers' | 'log' | 'baseDir'> {
  // Labelled once per device: prom-client hashes the labels of every call otherwise.
  const children = new Map<string, ReturnType<typeof metrics.exchangeSeconds.labels>>();
  const rtt = (device: string) => {
    let c = children.get(device);
    if (!c) children.set(device, (c = metrics.exchangeSeconds.labels({ device })));
    return c;
  };
  return {
    onPrimary: (device, h) => metrics.deviceUp.set({ device }, h.state === 'up' || h.state === 'degraded' ? 1 : 0),
    onDeviceChanged: (device) => publishStatus(device),
    onSwitch: (device, to, reason, failover) => {
      metrics.failoverSwitches.inc({ device, to });
      metrics.failoverActive.set({ device }, to === 'backup' ? 1 : 0);
      log.warn({ device, to, channel: failover.endpoint, reason }, `critical points switched to the ${to} channel`);
      publishStatus(device);
    },
    onExchange: (device, outcome) => {
      if ('rttMs' in outcome) rtt(device).observe(outcome.rttMs / 1000);
      else metrics.exchangeFailures.inc({ device, kind: outcome.failure });
    },
    onReconnect: (endpoint) => metrics.reconnects.inc({ endpoint }),
  };
}
