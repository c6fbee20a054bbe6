// What /healthz answers, and what "ok" means: the gateway process is alive AND delivering — it is
// publishing to the broker, or it is buffering within bounds (the broker away — or connected but
// acknowledging nothing while rows wait — for less than health.broker_away_s, the buffer below
// health.buffer_full_ratio of buffer.max_bytes and able to store), and no device named in
// health.critical_devices is down. Anything else is 503 with one reason per failed condition, so a
// supervisor or a plant's monitoring can act on it.
import type { BufferStats } from '../buffer/sqlite-buffer.js';
import type { HealthState } from '../core/gateway-health.js';

export interface HealthInputs {
  limits: { brokerAwayMs: number; bufferFullRatio: number; maxBytes: number; critical: readonly string[] };
  gateway: HealthState;
  /** refusal: the broker's answer while it refuses the connection; protocol: the MQTT version in use (src/publish/protocol.ts). */
  mqtt: {
    connected: boolean;
    awayMs: number;
    refusal?: string;
    protocol?: Record<string, unknown>;
    /** MqttPublisher.stall(): no acknowledged delivery for ms while rows wait, with the connections lost meanwhile. */
    stall?: { ms: number; lost: number; backlog: number };
  };
  buffer: BufferStats & { health: { state: 'ok' | 'degraded'; reasons: string[] } };
  /** Every output (mqtt first), src/health/endpoints.ts. */
  outputs?: Record<string, OutputReport>;
  devices: Record<string, string | undefined>;
}

export interface OutputReport {
  state: 'up' | 'down';
  reason?: string;
  delivery: string;
  encoding: string;
  /** Rows in the buffer it has not delivered. */
  backlog: number;
  /** Age of the oldest of them, in s. */
  lag_s: number;
  delivered: number;
}

export interface HealthAnswer {
  ok: boolean;
  reasons: string[];
  [k: string]: unknown;
}

export function judgeHealth(h: HealthInputs): HealthAnswer {
  const reasons: string[] = [];
  const { limits: l, buffer: b } = h;
  const away = !h.mqtt.connected && h.mqtt.awayMs >= l.brokerAwayMs;
  if (away) {
    const span = `for ${Math.round(h.mqtt.awayMs / 1000)} s (limit ${Math.round(l.brokerAwayMs / 1000)} s)`;
    reasons.push(
      h.mqtt.refusal
        ? `broker refuses the connection ${span}: ${h.mqtt.refusal}; data is only being buffered`
        : `broker unreachable ${span}: data is only being buffered`,
    );
  }
  // Judged by acknowledged progress, not by connects: connected (or reconnecting every few seconds)
  // while nothing is acknowledged is not delivering. Said once: an away broker is said above.
  const stall = h.mqtt.stall;
  if (stall && stall.ms >= l.brokerAwayMs && !away) {
    const how = h.mqtt.connected
      ? stall.lost
        ? `connected now, ${stall.lost} connection${stall.lost === 1 ? '' : 's'} lost meanwhile`
        : 'although connected'
      : `${stall.lost} connection${stall.lost === 1 ? '' : 's'} lost meanwhile`;
    reasons.push(
      `broker acknowledges nothing: no delivery for ${Math.round(stall.ms / 1000)} s with ${stall.backlog} rows waiting (limit ${Math.round(l.brokerAwayMs / 1000)} s), ${how}; data is only being buffered`,
    );
  }
  const fill = l.maxBytes > 0 ? b.bytes / l.maxBytes : 0;
  if (fill >= l.bufferFullRatio)
    reasons.push(
      `buffer at ${(fill * 100).toFixed(0)}% of buffer.max_bytes (limit ${(l.bufferFullRatio * 100).toFixed(0)}%): the oldest samples will be evicted`,
    );
  if (b.health.state !== 'ok') reasons.push(`buffer degraded: ${b.health.reasons.join('; ')}`);
  // Another output failing as long as the broker may be away: its data is only being buffered.
  for (const [name, o] of Object.entries(h.outputs ?? {})) {
    if (name === 'mqtt' || o.state !== 'down' || o.lag_s * 1000 < l.brokerAwayMs) continue;
    reasons.push(`output ${name} failing with ${o.lag_s} s of data undelivered (limit ${Math.round(l.brokerAwayMs / 1000)} s): ${o.reason ?? 'unknown'}`);
  }
  for (const d of l.critical) {
    const st = h.devices[d];
    if (st === 'down') reasons.push(`critical device ${d} is ${st}`);
  }
  return {
    ok: reasons.length === 0,
    reasons,
    ...h.gateway,
    mqtt: {
      state: h.mqtt.connected ? 'connected' : h.mqtt.refusal ? 'refused' : 'disconnected',
      away_s: Math.round(h.mqtt.awayMs / 1000),
      ...(h.mqtt.refusal ? { refusal: h.mqtt.refusal } : {}),
      ...(h.mqtt.stall ? { unacked_s: Math.round(h.mqtt.stall.ms / 1000), connections_lost: h.mqtt.stall.lost } : {}),
      ...h.mqtt.protocol,
    },
    buffer: {
      depth: b.depth,
      bytes: b.bytes,
      max_bytes: l.maxBytes,
      fill: Number(fill.toFixed(4)),
      oldest_age_s: b.oldestTs === undefined ? 0 : Math.max(0, Math.round((Date.now() - b.oldestTs) / 1000)),
      evicted: b.evicted,
      unstored: b.unstored,
      dead_letters: b.deadLetters,
      state: b.health.state,
    },
    ...(h.outputs ? { outputs: h.outputs } : {}),
    devices: h.devices,
  };
}
