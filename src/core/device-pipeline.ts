// One device's pipeline, set up once per (re)wiring: readings from its polls or subscriptions →
// report filter → samples → the sample sink; its poll groups on the scheduler (one plan per
// interval), the gap marker on the first failed read after good ones, and with a backup channel
// the split of each group into critical points (read through the backup while the primary is
// down) and the rest.
import { GatewayError } from '../errors.js';
import type { Logger } from 'pino';
import { encodePollMessages, encodePollReadings } from '../buffer/body.js';
import type { LoadedDevice } from '../config/load.js';
import type { CommonPoint } from '../config/schema.js';
import type { Metrics } from '../health/metrics.js';
import type { DriverSpec, Reading } from './driver.js';
import type { Failover } from './failover.js';
import { DeviceLatest } from './latest.js';
import type { LinkRunner } from './link-runner.js';
import { ReportFilter } from './report-filter.js';
import type { Sample } from './sample.js';
import type { SampleSink } from './sample-sink.js';
import type { Scheduler } from './scheduler.js';

/** A device (or its backup channel) joined to the runner of its link. */
export interface Joined {
  spec: DriverSpec;
  driver: ReturnType<DriverSpec['create']>;
  runner: LinkRunner;
}

export interface BackupChannel extends Joined {
  failover: Failover;
  /** Names of the points the backup channel carries (the critical ones). */
  points: Set<string>;
}

/** Per device, the latest sample of each point (the status page shows them; latest.ts). */
export type LatestSamples = Map<string, DeviceLatest>;

export interface PipelineDeps {
  log: Logger;
  metrics: Metrics;
  scheduler: Scheduler;
  sink: SampleSink;
  /** mqtt.payload: poll — a device's poll is one message. */
  pollPayload: boolean;
  /** Each device's latest sample per point, for the status page. */
  latest: LatestSamples;
}

/** Starts the device's polls; returns the pipeline's way in for readings taken outside them (a write's read back). */
export function startPipeline(
  device: LoadedDevice,
  primary: Joined,
  backup: BackupChannel | undefined,
  deps: PipelineDeps,
): (readings: Reading[], ts: number) => void {
  const { metrics, scheduler, sink, pollPayload, latest } = deps;
  const { spec, driver, runner: linkRunner } = primary;
  const channel = linkRunner.link.endpoint;
  const pointsByName = new Map<string, CommonPoint>(device.points.map((p) => [p.name, p]));
  const filter = new ReportFilter(pointsByName);
  // No point reported by exception: a poll goes to the buffer as one message without a Sample per
  // point (the lean path, with mqtt.payload: poll).
  const filtered = device.points.some((p) => p.report === 'on_change');
  const lean = pollPayload && !filtered;
  /** Samples that passed the report filter → the buffer (one transaction) → the publisher. */
  const store = (candidates: Sample[]) => {
    const samples = filtered ? candidates.filter((s) => filter.pass(s)) : candidates;
    sink(pollPayload ? encodePollMessages(samples) : samples, samples.length);
  };
  // A reload keeps what the status page shows until the new pipeline's first poll.
  const before = latest.get(device.name);
  const latestHere = new DeviceLatest(device.name, pointsByName);
  if (before) for (const s of before.values()) latestHere.set(s);
  latest.set(device.name, latestHere);
  // Labelled once: prom-client hashes the labels of every call otherwise.
  const polled = metrics.polled.labels({ device: device.name });
  const badReadings = metrics.badReadings.labels({ device: device.name });
  const pollSeconds = metrics.pollSeconds.labels({ device: device.name });
  const accept = (readings: Reading[], ts: number, via = channel) => {
    polled.inc(readings.length);
    // For the status page: the latest value of each point, whatever the report filter keeps.
    latestHere.record(readings, ts, via);
    if (lean) {
      for (let i = 0; i < readings.length; i++) if (readings[i]!.quality === 'bad') badReadings.inc();
      sink(encodePollReadings(device.name, via, ts, readings, pointsByName), readings.length);
      return;
    }
    const samples = new Array<Sample>(readings.length);
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      if (r.quality === 'bad') badReadings.inc();
      const point = pointsByName.get(r.point);
      const s: Sample = {
        ts,
        device: device.name,
        point: r.point,
        value: r.value,
        quality: r.quality,
        channel: via,
        unit: point?.unit,
        priority: point?.priority,
      };
      if (r.reason !== undefined) s.reason = r.reason;
      if (r.deviceTs !== undefined) s.deviceTs = r.deviceTs;
      if (r.serverTs !== undefined) s.serverTs = r.serverTs;
      if (r.type !== undefined) s.type = r.type;
      samples[i] = s;
    }
    store(samples);
  };
  // Points the device reports by itself (mode: subscribe) are set up on every open of the link.
  const subscribed = spec.subscribed ? device.points.filter((p) => spec.subscribed!(p)) : [];
  const isSubscribed = new Set(subscribed);
  if (subscribed.length) {
    if (!driver.subscribe) throw new GatewayError('GW_ERR_CONFIG_INVALID', `driver ${spec.type} cannot subscribe (device "${device.name}")`);
    // The device reports these points by itself: when the link is lost, nothing more comes, so
    // the gap is marked as for a failed poll — one bad sample per point with the reason, once
    // after samples came; the next sample of the new subscription ends it.
    let live = false;
    const reported = (readings: Reading[], ts: number) => {
      live = true;
      accept(readings, ts);
    };
    const lost = (reason: string) => {
      if (!live) return;
      live = false;
      const ts = Date.now();
      store(
        subscribed.map((pt) => ({
          ts,
          device: device.name,
          channel,
          point: pt.name,
          value: null,
          quality: 'bad',
          reason: `link lost: ${reason}`,
          unit: pt.unit,
          priority: pt.priority,
        })),
      );
    };
    linkRunner.subscribe(device.name, (link, signal) => driver.subscribe!(subscribed, link, reported, signal), lost);
  }
  // Polled points are grouped by their effective interval; each group is planned once.
  const groups = new Map<number, CommonPoint[]>();
  for (const p of device.points) {
    if (isSubscribed.has(p)) continue;
    const interval = p.poll_interval_ms ?? device.poll_interval_ms;
    const list = groups.get(interval);
    if (list) list.push(p);
    else groups.set(interval, [p]);
  }
  /** Plans whose last read succeeded: their next failure starts a gap. */
  const good = new Set<unknown>();
  /**
   * A read failed (timeout, link or device down): on the first failure after a good read, one bad
   * sample per point with the reason, so that a historian sees where the gap starts (the next
   * good sample ends it) — not one per poll while the device stays away (the status topic says so).
   */
  const gap = (plan: unknown, pts: readonly CommonPoint[], out: { reason: string; ts?: number }, via = channel) => {
    if (!good.delete(plan)) return;
    // Stamped with the time of the read that failed (a sample read on the other channel once the
    // failure is known is later, never at the same time), or now when no read went out.
    const ts = out.ts ?? Date.now();
    const { reason } = out;
    store(
      pts.map((pt) => ({ ts, device: device.name, channel: via, point: pt.name, value: null, quality: 'bad', reason, unit: pt.unit, priority: pt.priority })),
    );
  };
  for (const [intervalMs, points] of groups) {
    const plan = driver.plan(points);
    const primaryRead = async (p: unknown, pts: readonly CommonPoint[]) => {
      const started = performance.now();
      const out = await linkRunner.poll(device.name, (link, signal) => driver.read(p, link, signal));
      if (!out.ok) return gap(p, pts, out);
      good.add(p);
      pollSeconds.observe((performance.now() - started) / 1000);
      accept(out.value, out.ts);
    };
    // With a backup: the group's critical points also have a plan on the backup channel, and
    // the rest a primary-only plan for while the critical ones are read elsewhere.
    const critical = new Set(backup ? points.filter((p) => backup.points.has(p.name)).map((p) => p.name) : []);
    const onBackup = backup && critical.size ? backup : undefined;
    const backupPlan = onBackup?.driver.plan(device.backup!.device.points.filter((p) => critical.has(p.name)));
    const rest = points.filter((p) => !critical.has(p.name));
    const restPlan = onBackup && rest.length ? driver.plan(rest) : undefined;
    if (!onBackup) {
      scheduler.add({
        id: `${device.name}@${intervalMs}ms`,
        device: device.name,
        intervalMs,
        messages: pollPayload ? 1 : points.length,
        run: () => primaryRead(plan, points),
      });
      continue;
    }
    // With a backup, two poll groups side by side, each on its own channel, so that a slow or
    // lost request on one never delays samples read on the other: the primary's (every point
    // while the primary is active; the other points while the critical ones are on the backup)
    // and the backup's (the critical points, only while the backup is active). A critical point is
    // never read on both at once: each side skips its turn while the other's read of it is under
    // way, so its samples keep their order across a switch.
    const backupEndpoint = onBackup.runner.link.endpoint;
    const criticalPoints = points.filter((p) => critical.has(p.name));
    let fullRead: Promise<void> | undefined;
    let backupRead: Promise<void> | undefined;
    const readBackup = async () => {
      const started = performance.now();
      const out = await onBackup.runner.poll(`${device.name}~backup`, (link, signal) => onBackup.driver.read(backupPlan, link, signal), true);
      if (!out.ok) return gap(backupPlan, criticalPoints, out, backupEndpoint);
      good.add(backupPlan);
      pollSeconds.observe((performance.now() - started) / 1000);
      accept(out.value, out.ts, backupEndpoint);
    };
    scheduler.add({
      id: `${device.name}@${intervalMs}ms`,
      device: device.name,
      intervalMs,
      run: async () => {
        if (onBackup.failover.active === 'backup' || backupRead) return restPlan === undefined ? undefined : primaryRead(restPlan, rest);
        fullRead = primaryRead(plan, points);
        await fullRead.finally(() => (fullRead = undefined));
      },
    });
    scheduler.add({
      id: `${device.name}~backup@${intervalMs}ms`,
      device: device.name,
      intervalMs,
      run: async () => {
        if (onBackup.failover.active !== 'backup' || fullRead) return;
        backupRead = readBackup();
        await backupRead.finally(() => (backupRead = undefined));
      },
    });
  }
  return accept;
}
