// The driver contract (STYLE rules 1–3). A driver turns bytes into values for one device and
// nothing else: it never reconnects on its own, never starts timers, never touches the buffer or
// MQTT. The device runner (src/core/device-runner.ts) owns the link's lifecycle and the scheduler
// owns timing.
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { CommonPoint } from '../config/schema.js';

export type Quality = 'good' | 'bad' | 'uncertain';

/** bigint only for 64-bit integers that do not fit a double exactly. */
export type Value = number | bigint | boolean | string | null;

/** One point's outcome of one read. A bad reading carries `reason` and a null value. */
export interface Reading {
  point: string;
  value: Value;
  quality: Quality;
  reason?: string;
  /** Device time in ms since the epoch, where the protocol gives one. */
  deviceTs?: number;
}

/** A device entry after validation: the envelope plus the driver's typed connection and points. */
export interface DeviceConfig<C = unknown, P extends CommonPoint = CommonPoint> {
  name: string;
  driver: string;
  enabled: boolean;
  poll_interval_ms: number;
  connection: C;
  points: P[];
}

/** A problem found by a driver's semantic check; `path` is relative to the device, e.g. `points[2].count`. */
export interface DeviceIssue {
  path: (string | number)[];
  message: string;
}

export interface DriverContext {
  /** Already bound to {component:'driver', driver, device}. */
  log: Logger;
}

/**
 * A plugin. Registered once in drivers/registry.ts; `type` is the value of `driver:` in device maps.
 * `connectionSchema` and `pointSchema` are TypeBox objects (additionalProperties: false); the
 * point schema must include CommonPointProps.
 */
export interface DriverSpec<C = any, P extends CommonPoint = any> {
  readonly type: string;
  readonly summary: string;
  readonly connectionSchema: TSchema;
  readonly pointSchema: TSchema;
  /**
   * Checks that the schema cannot express (overlaps, widths). Called by the config loader after
   * schema validation passed, once per device, synchronously; must not do I/O.
   */
  validate?(device: DeviceConfig<C, P>): DeviceIssue[];
  /** Stores config only; no I/O, no timers (STYLE rule 2). */
  create(device: DeviceConfig<C, P>, ctx: DriverContext): Driver<P>;
}

/**
 * One device's link. The device runner calls these one at a time (never concurrently) for a given
 * instance: connect → read… → close → connect → …
 */
export interface Driver<P extends CommonPoint = CommonPoint> {
  /** Human-readable endpoint for logs and status, e.g. `tcp://10.0.0.5:502 unit 3`. */
  readonly endpoint: string;
  /**
   * Opens the link. Rejects with NotConnectedError/TimeoutError; the runner retries with backoff.
   * Must stop promptly when `signal` aborts.
   */
  connect(signal: AbortSignal): Promise<void>;
  /**
   * Precomputes how to read a set of points (request batching). Called once per poll group at
   * start; pure, no I/O. The result is passed back to read().
   */
  plan(points: P[]): unknown;
  /**
   * Reads one planned group. Returns one Reading per point, in plan order. A device exception
   * makes the affected points `bad` (with the code and its name in `reason`) and is not thrown.
   * Throws NotConnectedError or TimeoutError when the link is unusable; the runner then closes
   * the link and reconnects.
   */
  read(plan: unknown, signal: AbortSignal): Promise<Reading[]>;
  /** Idempotent; safe to call when never connected. */
  close(): Promise<void>;
}
