// outputs.influxdb in the gateway file (part of the single source of truth, src/config/schema.ts).
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../config/enum.js';

const Tls = Type.Object(
  {
    ca: Type.Optional(Type.String({ description: 'PEM file of the CA(s) that signed the server certificate. Default: the system trust store.' })),
    cert: Type.Optional(Type.String({ description: 'PEM client certificate for mutual TLS.' })),
    key: Type.Optional(Type.String({ description: 'PEM private key of the client certificate (keep it mode 0600).' })),
    verify_server: Type.Boolean({
      default: true,
      description: 'Verify the server certificate and host name. Turning this off is insecure and logged as a warning.',
    }),
    server_name: Type.Optional(Type.String({ description: 'Host name expected in the server certificate, when it differs from the URL host.' })),
  },
  { additionalProperties: false, default: {}, description: 'TLS for https:// URLs; the server certificate is verified by default.' },
);

export const InfluxDbSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Write to InfluxDB. The section may stay in the file with enabled: false.' }),
    url: Type.String({
      pattern: '^https?://[^/]+/?$',
      patternHint: 'http(s)://host:port, without a path',
      examples: ['https://influx.plant.local:8086'],
      description:
        'Base URL of the server (InfluxDB 1.x or 2.x, or anything that takes its line protocol: VictoriaMetrics, QuestDB, Telegraf’s influxdb_listener). https:// is verified like the broker; plain http:// to another host is logged as a warning.',
    }),
    allow_plaintext: Type.Boolean({
      default: false,
      description: 'Allow an http:// URL to another host than this one (data and credentials unencrypted). http:// to localhost needs nothing.',
    }),
    api: Enum(['v1', 'v2'], {
      default: 'v2',
      description: 'v1: POST /write?db=… (InfluxDB 1.x, VictoriaMetrics, QuestDB). v2: POST /api/v2/write?org=…&bucket=… with a token (InfluxDB 2.x/3.x).',
    }),
    database: Type.Optional(Type.String({ minLength: 1, description: 'api v1: the database.' })),
    retention_policy: Type.Optional(Type.String({ minLength: 1, description: "api v1: the retention policy (default: the database's)." })),
    username: Type.Optional(Type.String({ description: 'api v1: user name (with password_file).' })),
    password_file: Type.Optional(Type.String({ description: 'api v1: file holding the password, relative to the gateway file.' })),
    org: Type.Optional(Type.String({ minLength: 1, description: 'api v2: the organisation.' })),
    bucket: Type.Optional(Type.String({ minLength: 1, description: 'api v2: the bucket.' })),
    token_file: Type.Optional(Type.String({ description: 'File holding the API token (api v2; with api v1 sent as "Authorization: Token …").' })),
    measurement: Type.String({
      default: 'edgeferry',
      minLength: 1,
      description: 'Measurement of point samples; EL verdicts go to "<measurement>_el". Tags: site, gateway, device, point, channel.',
    }),
    batch_size: Type.Integer({ minimum: 1, maximum: 50_000, default: 5000, description: 'Rows per write (a poll message counts as one row).' }),
    flush_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'A batch smaller than batch_size is written after this long.' }),
    gzip: Type.Boolean({ default: true, description: 'Compress each write (Content-Encoding: gzip).' }),
    timeout_ms: Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000, description: 'A write not answered within this is retried.' }),
    max_backoff_ms: Type.Integer({
      minimum: 1000,
      maximum: 600_000,
      default: 30_000,
      description: 'Failed writes are retried after 1 s, doubling up to this; rows stay buffered meanwhile.',
    }),
    tls: Tls,
  },
  {
    additionalProperties: false,
    description:
      'InfluxDB line protocol over HTTP (docs/outputs.md). It has its own cursor in the buffer: rows leave the buffer once MQTT and InfluxDB both have them, and either being down never holds the other back.',
  },
);

export type InfluxDbConfig = Static<typeof InfluxDbSchema>;
