// The driver contract (STYLE rules 1–3). A driver turns bytes into values for one device and
// nothing else: it never reconnects on its own, never starts timers, never touches the buffer or
// MQTT. The device runner (src/core/device-runner.ts) owns the link's lifecycle and the scheduler
// owns timing.
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { CommonPoint } from '../config/schema.js';
import type { Link, LinkSettings } from './link.js';

export type Quality = 'good' | 'bad' | 'uncertain';

/** bigint only for 64-bit integers that do not fit a double exactly. */
export type Value = number | bigint | boolean | string | null | readonly (number | boolean | string | null)[];

/**
 * What a point's values are, in protocol-neutral terms (an output such as Sparkplug B makes its
 * datatypes from these): integers by width and sign, IEEE 754 single and double, text, a time
 * (ISO 8601 text) and an array (of scalars; JSON text where an output has no array of its kind).
 */
export const VALUE_TYPES = [
  'boolean',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'float',
  'double',
  'string',
  'datetime',
  'array',
] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

/** One point's outcome of one read. A bad reading carries `reason` and a null value. */
export interface Reading {
  point: string;
  value: Value;
  quality: Quality;
  reason?: string;
  /** Device (source) time in ms since the epoch, where the protocol gives one. */
  deviceTs?: number;
  /** Server time, where the protocol gives one besides the source time (OPC UA). */
  serverTs?: number;
  /** The type of the value as the device reported it, from drivers whose points do not declare one (DriverSpec.valueType gives undefined). */
  type?: ValueType;
}

/**
 * The outcome of one write. `refused`: the driver found the value unfit before sending it (wrong
 * type for the node); otherwise a failure is the device's answer — its exception or status code
 * in `code` (Modbus exception number, OPC UA status code, BACnet error class/code).
 */
export type WriteOutcome = { ok: true } | { ok: false; refused?: boolean; code?: number | string; reason: string };

/** A value as a refusal names it: JSON text, 64-bit integers in full. */
export { valueText } from './bounded.js';

/** A value checked for a point: what to write, or why it cannot be written. */
export type WriteCheck = { ok: true; value: Value } | { ok: false; reason: string };

/** A device entry after validation: the envelope plus the driver's typed connection and points. */
export interface DeviceConfig<C = unknown, P extends CommonPoint = CommonPoint> {
  name: string;
  driver: string;
  enabled: boolean;
  poll_interval_ms: number;
  link: LinkSettings;
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
  /** Folder of the gateway file; relative paths in connection settings start here. */
  baseDir: string;
  /** Who the gateway is (site and gateway_id), for what a driver presents of itself (an OPC UA client certificate's subject). */
  gateway?: { site: string; id: string };
}

/**
 * A plugin, generic over its connection settings C, its point type P, the plan its driver makes
 * of a poll group, and the link it reads through. Registered once in drivers/registry.ts; `type` is the value of `driver:` in device maps.
 * `connectionSchema` and `pointSchema` are TypeBox objects (additionalProperties: false); the
 * point schema must include CommonPointProps.
 */
export interface DriverSpec<C = unknown, P extends CommonPoint = CommonPoint, Plan = unknown, L extends Link = Link> {
  readonly type: string;
  readonly summary: string;
  readonly connectionSchema: TSchema;
  readonly pointSchema: TSchema;
  /**
   * Checks that the schema cannot express (overlaps, widths). Called by the config loader after
   * schema validation passed, once per device, synchronously; must not do I/O.
   */
  validate?(device: DeviceConfig<C, P>): DeviceIssue[];
  /**
   * `check` only: what would fail on the box check runs on, though the config is valid (a folder
   * the service cannot write). Warnings: the device still loads. May look at the file system.
   */
  advise?(device: DeviceConfig<C, P>, baseDir: string): DeviceIssue[];
  /** Devices whose keys are equal share one link (e.g. `tcp://host:port`, `serial:/dev/ttyUSB0`). Pure. */
  linkKey(device: DeviceConfig<C, P>): string;
  /** Connection keys that configure the shared link, so devices sharing it must agree (e.g. baud_rate). */
  readonly sharedConnectionKeys?: readonly string[];
  /** Makes the link for a key from the first device that has it; stores config only, no I/O. */
  createLink(device: DeviceConfig<C, P>, ctx: DriverContext): L;
  /** Stores config only; no I/O, no timers (STYLE rule 2). */
  create(device: DeviceConfig<C, P>, ctx: DriverContext): Driver<P, Plan, L>;
  /**
   * The type of a point's values as its map declares it, after scale/offset (a scaled integer is a
   * double); undefined when only the device can tell, and its readings then carry `type`. Pure.
   */
  valueType(point: P): ValueType | undefined;
  /** Its drivers implement checkWrite() and write(): points may be writable. */
  readonly writes?: boolean;
  /** A point the device reports by itself (a subscription) rather than polled; only with Driver.subscribe. */
  subscribed?(point: P): boolean;
}

/**
 * One device's protocol logic on a shared link. The link runner calls read() and probe() one at a
 * time per link (never concurrently), and only while the link is open.
 */
export interface Driver<P extends CommonPoint = CommonPoint, Plan = unknown, L extends Link = Link> {
  /**
   * Precomputes how to read a set of points (request batching). Called once per poll group at
   * start; pure, no I/O. The result is passed back to read().
   */
  plan(points: P[]): Plan;
  /**
   * Reads one planned group. Returns one Reading per point, in plan order. A device exception
   * makes the affected points `bad` (with the code and its name in `reason`) and is not thrown.
   * Throws TimeoutError when the device does not answer, NotConnectedError when the link broke,
   * BadFrameError for a garbled answer (CRC); the runner counts these and decides what is down.
   */
  read(plan: Plan, link: L, signal: AbortSignal): Promise<Reading[]>;
  /** The cheapest request that proves the device answers; any answer counts, even an exception. */
  probe(link: L, signal: AbortSignal): Promise<void>;
  /**
   * Optional: asks the device to report changes of `points` (OPC UA monitored items, BACnet COV).
   * Called by the link runner after every (re)open of the link, in turn with other requests;
   * resolves once the subscription is set up, then calls `onData` for every change until the link
   * closes (a subscription lives and dies with its link; the runner sets it up again).
   */
  subscribe?(points: P[], link: L, onData: (readings: Reading[], ts: number) => void, signal: AbortSignal): Promise<void>;
  /**
   * Optional, with write(): checks a value from a command for a point (type, the range of the
   * device's data type after scale/offset in reverse) before anything is sent. Pure, no I/O.
   */
  checkWrite?(point: P, value: unknown): WriteCheck;
  /**
   * Optional: writes one point's value (already passed checkWrite). Called by the link runner in
   * turn like read(), ahead of polls. A device refusal comes back as an outcome with its code;
   * transport failures are thrown as in read().
   */
  write?(point: P, value: Value, link: L, signal: AbortSignal): Promise<WriteOutcome>;
}
