// The output contract: every destination of buffered data — the MQTT broker, InfluxDB, … — reads
// the buffer through its own view (a durable cursor: src/buffer/output-slots.ts), in seq order,
// and acknowledges what the destination has. A row leaves the buffer once every enabled output has
// it; an output that is down holds only its own backlog. Outputs are started after the buffer,
// stopped before it, drained within the stop deadline and health-checked like every other room.
import type { Static, TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { BufferView } from '../buffer/rows.js';
import type { Metrics } from '../health/metrics.js';

/**
 * acknowledged: the destination confirms each message (MQTT PUBACK); written: a batch is confirmed
 * as a whole by the destination's answer (an HTTP 204).
 */
export type Delivery = 'acknowledged' | 'written';

export interface OutputStatus {
  /** up: delivering (or nothing to deliver); down: the last attempt failed (reason says why). */
  state: 'up' | 'down';
  reason?: string;
  /** Rows delivered since start. */
  delivered: number;
  /** When the destination last confirmed something (ms since the epoch). */
  lastDeliveryMs?: number;
}

export interface Output {
  /** Its name in the buffer, the config, logs and metrics (e.g. "mqtt", "influxdb"). */
  readonly name: string;
  readonly delivery: Delivery;
  /** Its payload encoding (json, sparkplug, influx-line-protocol). */
  readonly encoding: string;
  start(): void;
  /** New rows were appended (cheap; called after every append). */
  wake(): void;
  /** Resolves true once this output has everything buffered, false after `ms` (at stop). */
  drain(ms: number): Promise<boolean>;
  /** Stops delivering; what is not confirmed stays in the buffer for the next start. */
  stop(): Promise<void>;
  status(): OutputStatus;
}

/** What the gateway gives an output when it is made. */
export interface OutputContext {
  view: BufferView;
  log: Logger;
  metrics: Metrics;
  identity: { site: string; gateway: string };
  /** Resolves relative file paths (TLS material, token files) of the gateway file. */
  baseDir: string;
  /** The state changed (health: degraded with the reason while down). */
  onStatus(s: OutputStatus): void;
  /** An exception caught at the output's boundary (a buffer that refused). */
  fault(err: unknown): void;
}

/** One kind of output: its section under `outputs:` in the gateway file, and how it is made. */
export interface OutputKind<S extends TSchema = TSchema> {
  /** The key under `outputs:`, also the output's name. */
  readonly key: string;
  readonly schema: S;
  enabled(config: Static<S>): boolean;
  /** Checks across fields a schema cannot express, as (path under the section, message) — `edgeferry check` and every load run them. */
  check?(config: Static<S>): { path: string[]; message: string }[];
  create(config: Static<S>, ctx: OutputContext): Output;
}

/** Helps TypeScript keep each kind's config type. */
export const outputKind = <S extends TSchema>(k: OutputKind<S>): OutputKind<S> => k;
