import type { Quality, Value, ValueType } from './driver.js';

export type Priority = 'critical' | 'normal' | 'bulk';

import type { MessageKind } from '../buffer/rows.js';

export { KIND_CODE, type MessageKind } from '../buffer/rows.js';

/** A reading on its way to the broker. `seq` is assigned by the buffer when it is stored. */
export interface Sample {
  /** Gateway time of the poll, ms since the epoch. */
  ts: number;
  /** Device time, where the protocol gives one. */
  deviceTs?: number;
  /** Server time (OPC UA), besides the source time. */
  serverTs?: number;
  device: string;
  point: string;
  value: Value;
  quality: Quality;
  reason?: string;
  /** The value's type as the device reported it (Reading.type); kept with the latest samples, not buffered. */
  type?: ValueType;
  /** Eviction order at the buffer cap (bulk first). Default normal. */
  priority?: Priority;
  /** Engineering unit from the device map, passed through. */
  unit?: string;
  /** The channel the value came through (the driver endpoint); failover makes this matter. */
  channel: string;
  /** Default 'point'; EL verdicts are 'el'. */
  kind?: MessageKind;
  /** More payload fields (e.g. an EL verdict's image, model and timings), written after `value`. */
  extra?: Record<string, unknown>;
}

/**
 * The device label of EL verdict rows (what `edgeferry buffer` shows). Device names cannot contain
 * "/", so it never looks like a configured device. Routing is by `kind`, not by this label.
 */
export const EL_DEVICE = '/el';

/**
 * The point label of a poll message row (`mqtt.payload: poll`: all points of one poll in one buffer
 * row and one MQTT message). Point names cannot contain "/"; routing is by `kind`, not this label.
 */
export const POLL_POINT = '/poll';
