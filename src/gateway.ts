// buildGateway(): the whole pipeline as an object, with no side effects on import or build; only
// start() opens files and sockets. Tests build real gateways in-process with this.
//
//   device maps ─► scheduler ─(tick)─► device runner ─► driver.read ─► readings
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
import type { CommonPoint } from './config/schema.js';
import { DeviceRunner, type Backoff } from './core/device-runner.js';
import type { DriverSpec } from './core/driver.js';
import { ReportFilter } from './core/report-filter.js';
import type { DeviceStatus, Sample } from './core/sample.js';
import { Scheduler } from './core/scheduler.js';
import { createMetrics, type Metrics } from './health/metrics.js';
import { HealthServer } from './health/server.js';
import { MqttPublisher, type MqttConnect } from './publish/mqtt-publisher.js';

export interface GatewayDeps {
  log: Logger;
  drivers: readonly DriverSpec[];
  /** Reconnect backoff for device links. Default 500 ms doubling to 30 s. */
  backoff?: Backoff;
  mqttConnect?: MqttConnect;
  /** Deadline for draining the buffer on stop(). Default 5 s (systemd's TimeoutStopSec is longer). */
  drainMs?: number;
}

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly metrics: Metrics;
  /** Port /healthz and /metrics listen on (after start), or undefined when disabled. */
  readonly healthPort: number | undefined;
  deviceStatus(device: string): DeviceStatus | undefined;
  /** Depth, bytes, evictions, dead letters… of the store-and-forward buffer (after start). */
  bufferStats(): BufferStats;
}

export function buildGateway(config: LoadedConfig, deps: GatewayDeps): Gateway {
  const { gateway: g, baseDir } = config;
  const log = deps.log;
  const metrics = createMetrics();
  const bufferPath = isAbsolute(g.buffer.path) ? g.buffer.path : resolve(baseDir, g.buffer.path);
  const buffer = new SqliteBuffer(bufferPath, { synchronous: g.buffer.synchronous, maxBytes: g.buffer.max_bytes, maxAgeS: g.buffer.max_age_s });
  const publisher = new MqttPublisher(
    g.mqtt,
    { site: g.site, gateway: g.gateway_id },
    { buffer, log: log.child({ component: 'publisher' }), metrics, baseDir, connect: deps.mqttConnect, replayRate: g.buffer.replay_rate, replayOrder: g.buffer.replay_order },
  );
  const scheduler = new Scheduler({
    onOverrun: (group, n) => {
      metrics.overruns.inc({ device: group.device, interval_ms: String(group.intervalMs) }, n);
      log.debug({ device: group.device, interval_ms: group.intervalMs, skipped: n }, 'poll overrun');
    },
  });
  const runners: DeviceRunner[] = [];
  const health = new HealthServer(metrics, {
    health: () => ({
      ok: true,
      mqtt: publisher.isConnected ? 'connected' : 'disconnected',
      buffer: (({ depth, bytes, evicted, deadLetters }) => ({ depth, bytes, evicted, dead_letters: deadLetters }))(buffer.stats()),
      devices: Object.fromEntries(runners.map((r) => [r.name, r.status.state])),
    }),
    refreshGauges: () => {
      const st = buffer.stats();
      metrics.bufferDepth.set(st.depth);
      metrics.bufferBytes.set(st.bytes);
      metrics.bufferEvicted.set(st.evicted);
      metrics.deadLetters.set(st.deadLetters);
      metrics.bufferAge.set(st.oldestTs === undefined ? 0 : Math.max(0, (Date.now() - st.oldestTs) / 1000));
    },
  });
  let healthPort: number | undefined;

  const wire = (device: LoadedDevice) => {
    const spec = deps.drivers.find((d) => d.type === device.driver)!;
    const dlog = log.child({ component: 'driver', driver: spec.type, device: device.name });
    const driver = spec.create(device, { log: dlog });
    const runner = new DeviceRunner(
      device.name,
      driver,
      {
        onStatus: (s) => {
          metrics.deviceUp.set({ device: device.name }, s.state === 'online' ? 1 : 0);
          publisher.setDeviceStatus(device.name, s);
        },
      },
      dlog,
      deps.backoff ?? { minMs: 500, maxMs: 30_000 },
    );
    runners.push(runner);
    const pointsByName = new Map<string, CommonPoint>(device.points.map((p) => [p.name, p]));
    const filter = new ReportFilter(pointsByName);
    // Points are grouped by their effective interval; each group is planned once.
    const groups = new Map<number, CommonPoint[]>();
    for (const p of device.points) {
      const interval = p.poll_interval_ms ?? device.poll_interval_ms;
      groups.set(interval, [...(groups.get(interval) ?? []), p]);
    }
    for (const [intervalMs, points] of groups) {
      const plan = driver.plan(points);
      scheduler.add({
        id: `${device.name}@${intervalMs}ms`,
        device: device.name,
        intervalMs,
        run: async () => {
          const started = performance.now();
          const out = await runner.poll(plan);
          if (out.kind !== 'ok') return;
          metrics.pollSeconds.observe({ device: device.name }, (performance.now() - started) / 1000);
          metrics.polled.inc({ device: device.name }, out.readings.length);
          const samples: Sample[] = [];
          for (const r of out.readings) {
            if (r.quality === 'bad') metrics.badReadings.inc({ device: device.name });
            const point = pointsByName.get(r.point);
            const s: Sample = { ts: out.ts, device: device.name, channel: driver.endpoint, ...r, unit: point?.unit, priority: point?.priority };
            if (filter.pass(s)) samples.push(s);
          }
          try {
            buffer.append(samples);
            metrics.buffered.inc(samples.length);
          } catch (err) {
            // The disk refused: nothing already buffered is touched; this poll's samples are lost and said so.
            log.error({ err, device: device.name, lost: samples.length }, 'buffer append failed');
            return;
          }
          publisher.wake();
        },
      });
    }
  };

  return {
    metrics,
    get healthPort() {
      return healthPort;
    },
    deviceStatus: (name) => runners.find((r) => r.name === name)?.status,
    bufferStats: () => buffer.stats(),
    async start() {
      buffer.open();
      if (buffer.recovered) {
        log.error({ moved_to: buffer.recovered.movedTo, error: buffer.recovered.error }, 'buffer file was damaged: moved aside, started a fresh buffer');
      }
      buffer.evictAged();
      publisher.start();
      for (const d of config.devices) {
        if (!d.enabled) {
          publisher.setDeviceStatus(d.name, { state: 'disabled', ts: Date.now(), endpoint: '' });
          continue;
        }
        wire(d);
      }
      for (const r of runners) r.start();
      scheduler.start();
      if (g.health.enabled) healthPort = await health.listen(g.health.host, g.health.port);
      log.info({ devices: runners.length, buffer: bufferPath, health_port: healthPort }, 'gateway started');
    },
    async stop() {
      await scheduler.stop();
      await Promise.all(runners.map((r) => r.stop()));
      const drained = await publisher.drain(deps.drainMs ?? 5000);
      if (!drained) log.warn({ buffered: buffer.depth() }, 'stopping with samples still buffered; they are sent after the next start');
      await publisher.stop();
      await health.close();
      buffer.close();
      log.info('gateway stopped');
    },
  };
}
