import type { Quality, Value } from './driver.js';

export type Priority = 'critical' | 'normal' | 'bulk';

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
  /** Eviction order at the buffer cap (bulk first). Default normal. */
  priority?: Priority;
  /** Engineering unit from the device map, passed through. */
  unit?: string;
  /** The channel the value came through (the driver endpoint); failover makes this matter. */
  channel: string;
  /** More payload fields (e.g. an EL verdict's image, model and timings), written after `value`. */
  extra?: Record<string, unknown>;
}

/**
 * The reserved device of EL inference results. Device names cannot contain "/", so it never
 * collides with a configured device; the publisher gives these rows the inference topic template,
 * with the station in `point`.
 */
export const EL_DEVICE = '/el';

/**
 * The point of a poll message (`mqtt.payload: poll`): all points of one poll in one buffer row and
 * one MQTT message. Point names cannot contain "/", so it never collides with a configured point.
 */
export const POLL_POINT = '/poll';
