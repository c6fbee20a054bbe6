// The single source of truth for configuration (STYLE rule 4): TypeScript types, validation,
// defaults, the generated JSON Schema in config/schema/ and docs/config.md all come from here and
// from each driver's schema.ts. Fields with a `default` are filled in by the validator, so their
// static types are non-optional; the generated editor schema drops them from `required`.
import { InferenceSchema } from '../inference/schema.js';
import { Mqtt } from './mqtt-schema.js';
import { Enum } from './enum.js';
import { Type, type Static } from '@sinclair/typebox';
import { OUTPUT_KINDS } from '../outputs/registry.js';

export { Enum } from './enum.js';

/** Names become MQTT topic levels, so they must not contain '/', '+', '#' or spaces. */
export const Name = (description: string) =>
  Type.String({
    description,
    pattern: '^[A-Za-z0-9_.-]+$',
    minLength: 1,
    maxLength: 64,
    patternHint: 'letters, digits, "_", "-" or "." (it becomes an MQTT topic level)',
  });

export const PollInterval = (description: string) => Type.Integer({ description, minimum: 10, maximum: 86_400_000, examples: [1000] });

export const Version = Type.Literal(1, { description: 'Config format version. Only 1 exists today.' });

// ---- points and devices: the driver-independent part ----

/** Fields every point has whatever its driver; drivers add their address fields to these. */
export const CommonPointProps = {
  name: Name('Point name, unique within its device; the last topic level by default.'),
  poll_interval_ms: Type.Optional(PollInterval("How often to read this point, in ms. Defaults to the device's poll_interval_ms.")),
  report: Enum(['always', 'on_change'], {
    default: 'always',
    description:
      'always: publish every poll. on_change: publish only when the value moves by more than deadband, the quality changes, or report_max_interval_ms passes.',
  }),
  deadband: Type.Number({
    minimum: 0,
    default: 0,
    description: 'With report: on_change, the absolute change (after scale/offset) that counts as a change.',
  }),
  report_max_interval_ms: Type.Optional(
    Type.Integer({
      minimum: 1000,
      description: 'With report: on_change, publish at least this often even if the value did not change.',
    }),
  ),
  priority: Enum(['critical', 'normal', 'bulk'], {
    default: 'normal',
    description: 'When the buffer reaches its cap, the oldest samples of the lowest priority (bulk, then normal, then critical) are evicted first.',
  }),
  unit: Type.Optional(Type.String({ description: 'Engineering unit, passed through in the payload.', maxLength: 32 })),
  writable: Type.Boolean({
    default: false,
    description:
      'Plant systems may write this point through its command topic (mqtt.commands, docs/writes.md). Off by default: a point is read-only unless its map says otherwise.',
  }),
  min: Type.Optional(Type.Number({ description: 'With writable: writes of a smaller value (in published units, after scale/offset) are refused.' })),
  max: Type.Optional(Type.Number({ description: 'With writable: writes of a larger value (in published units) are refused.' })),
  allowed: Type.Optional(
    Type.Array(Type.Union([Type.Number(), Type.String(), Type.Boolean()]), {
      minItems: 1,
      description: 'With writable: the only values a write may set (an enumeration, or [true] for a start bit); anything else is refused.',
    }),
  ),
  write_min_interval_ms: Type.Integer({
    minimum: 0,
    maximum: 86_400_000,
    default: 1000,
    description: 'With writable: a write within this long of the previous one sent to the same point is refused (rate limit; 0 = none).',
  }),
  description: Type.Optional(Type.String({ description: 'Free text for people; not published.' })),
};

/** Liveness settings of one link (a device's `link:` block). */
const LinkSchema = Type.Object(
  {
    probe_interval_ms: Type.Integer({
      minimum: 100,
      maximum: 3_600_000,
      default: 5000,
      description:
        'Heartbeat: a device idle for this long (or down) is probed. A silently dead network link is down within probe_interval_ms + max(failures_before_down, devices sharing it) × timeout; on a serial line, where devices fail one by one, a device within probe_interval_ms + failures_before_down × devices on the line × timeout.',
    }),
    failures_before_down: Type.Integer({
      minimum: 1,
      maximum: 20,
      default: 2,
      description: 'Failed requests in a row (timeouts, garbled answers) before the device is down; fewer make it degraded.',
    }),
    backoff_min_ms: Type.Integer({
      minimum: 10,
      maximum: 600_000,
      default: 500,
      description:
        'First reconnect delay of the link. The delay doubles with every reopen after which no device answered (up to backoff_max_ms) and starts over once one does.',
    }),
    backoff_max_ms: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000, description: 'Cap of the exponential, fully jittered reconnect delay.' }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Liveness of the link to this device. Devices sharing an endpoint share one link; the first device’s settings apply to it.',
  },
);

/** The device envelope; `connection` and `points[]` are checked against the driver's own schemas. */
export const DeviceEnvelope = Type.Object(
  {
    name: Name('Device name, unique across all device maps of a gateway; a topic level.'),
    driver: Type.String({ description: 'Driver type, e.g. modbus_tcp.' }),
    enabled: Type.Boolean({ default: true, description: 'false keeps the device in the map but never polls it.' }),
    poll_interval_ms: PollInterval('Default poll interval for this device’s points, in ms.'),
    connection: Type.Object({}, { description: 'Driver-specific connection settings (see the driver README).' }),
    link: LinkSchema,
    points: Type.Array(Type.Object({}), { minItems: 1, description: 'The points to read (driver-specific fields).' }),
    backup: Type.Optional(
      Type.Object(
        {
          driver: Type.String({ description: 'Driver of the backup channel, e.g. bacnet_mstp.' }),
          connection: Type.Object({}, { description: "Connection settings of the backup channel (see its driver's README)." }),
          link: LinkSchema,
          switch_back_after_ms: Type.Integer({
            minimum: 0,
            maximum: 86_400_000,
            default: 30_000,
            description: 'Hysteresis: the primary must have been up this long, without a failure, before critical points go back to it.',
          }),
          points: Type.Array(Type.Object({}), {
            minItems: 1,
            description:
              "The critical points addressed on the backup channel (the backup driver's point fields); each name is a point of this device. Every point with priority: critical must be here.",
          }),
        },
        {
          additionalProperties: false,
          description:
            'A second, independent channel (e.g. BACnet MS/TP behind a Modbus TCP primary). While the link pool has the primary down, the critical points are read through it; samples name the channel that carried them.',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export const DeviceMap = Type.Object(
  {
    version: Version,
    devices: Type.Array(DeviceEnvelope, { minItems: 1, description: 'Devices in this map.' }),
  },
  { additionalProperties: false },
);

// ---- the gateway file ----

const Buffer = Type.Object(
  {
    path: Type.String({ default: 'edgeferry-buffer.db', description: 'SQLite file of the store-and-forward buffer, relative to the gateway file.' }),
    batch_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'Rows the publisher reads per batch.' }),
    max_bytes: Type.Integer({
      minimum: 1_048_576,
      default: 1_073_741_824,
      description:
        'Cap on the bytes the buffer uses on disk (database pages in use plus the write-ahead log). At the cap the oldest samples of the lowest priority are evicted, counted and reported on the events topic.',
    }),
    max_age_s: Type.Integer({
      minimum: 60,
      default: 2_592_000,
      description: 'Samples older than this are evicted (and reported) even below the cap. Default 30 days.',
    }),
    replay_rate: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        'After an outage, the most backlog messages per second sent to the broker (0 = as fast as the broker acknowledges). Replayed samples carry "historical": true.',
    }),
    replay_order: Enum(['strict', 'live_first'], {
      default: 'strict',
      description:
        'strict: after an outage the backlog is sent before live data, so every point stays in order. live_first: live data goes first and the backlog drains behind it at replay_rate; consumers order by seq.',
    }),
    synchronous: Enum(['normal', 'full'], {
      default: 'full',
      description:
        'full: every appended batch is on disk before the poll completes (survives power loss). normal: faster, may lose the last batches on power loss.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'The SQLite store-and-forward buffer.' },
);

const Logging = Type.Object(
  {
    level: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], {
      default: 'info',
      description: 'Log level.',
    }),
    format: Enum(['auto', 'text', 'json'], {
      default: 'auto',
      description:
        'text: one readable line per event (ISO time, level name, component, message, fields); json: one JSON object per line (level name, ISO time) for log collectors; auto: text on a terminal and under systemd, json otherwise. Under systemd each line carries its journald priority, so journalctl -p warning works.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Logging to stdout. Identical warnings and errors are printed once a minute at most, with a count of the repeats held back (printed at stop too); audit lines (writes, reloads) are never held back.',
  },
);

const Health = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve /healthz and /metrics.' }),
    host: Type.String({ default: '127.0.0.1', description: 'Listen address; keep it on loopback unless a proxy fronts it.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9464, description: 'Listen port (0 = any free port).' }),
    broker_away_s: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      default: 300,
      description:
        '/healthz fails (503) once the broker has been unreachable, or has acknowledged nothing while rows were waiting for it (connected or reconnecting), this long: data is then only buffered.',
    }),
    buffer_full_ratio: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.9,
      description: '/healthz fails (503) when the buffer holds this fraction of buffer.max_bytes or more (eviction of old samples is near).',
    }),
    critical_devices: Type.Array(Type.String(), {
      default: [],
      description: 'Devices whose being down fails /healthz (503). Other devices down are reported, but the gateway itself is healthy.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      '/healthz and Prometheus /metrics over HTTP. /healthz answers 200 with ok: true while the gateway is alive and delivering — publishing, or buffering within the limits below — and 503 with ok: false and the reasons otherwise.',
  },
);

/** outputs.<key> for every output kind in src/outputs/registry.ts. */
const Outputs = Type.Object(Object.fromEntries(OUTPUT_KINDS.map((k) => [k.key, Type.Optional(k.schema)])), {
  additionalProperties: false,
  default: {},
  description:
    'Destinations besides MQTT (docs/outputs.md). Each has its own cursor in the buffer: a row leaves the buffer once every enabled output has it, and an output that is down holds only its own backlog.',
});

export const GatewayFile = Type.Object(
  {
    version: Version,
    site: Name('Site name; the first topic level by default.'),
    gateway_id: Name('This gateway’s id; the second topic level by default.'),
    devices: Type.Array(Type.String(), {
      minItems: 1,
      description: 'Device map files or folders (all *.yaml inside), relative to this file.',
    }),
    mqtt: Mqtt,
    outputs: Outputs,
    buffer: Buffer,
    logging: Logging,
    health: Health,
    inference: Type.Optional(InferenceSchema),
  },
  { additionalProperties: false },
);

export type GatewayFileConfig = Static<typeof GatewayFile>;
export type { MqttConfig } from './mqtt-schema.js';
export type BufferConfig = Static<typeof Buffer>;
export type HealthConfig = Static<typeof Health>;
export type DeviceEnvelopeConfig = Static<typeof DeviceEnvelope>;
export type LinkConfig = DeviceEnvelopeConfig['link'];
export const CommonPointObject = Type.Object(CommonPointProps);
export type CommonPoint = Static<typeof CommonPointObject>;
