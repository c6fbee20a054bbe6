// The gateway file's mqtt section: the broker connection, TLS, topics and delivery. Part of the
// single source of truth in schema.ts (types, validation, defaults, generated schema and docs).
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from './enum.js';

const Tls = Type.Object(
  {
    ca: Type.Optional(Type.String({ description: 'PEM file of the CA(s) that signed the broker certificate. Default: the system trust store.' })),
    cert: Type.Optional(Type.String({ description: 'PEM client certificate for mutual TLS.' })),
    key: Type.Optional(Type.String({ description: 'PEM private key of the client certificate (keep it mode 0600).' })),
    min_version: Enum(['TLSv1.2', 'TLSv1.3'], {
      default: 'TLSv1.2',
      description: 'Lowest TLS version accepted.',
    }),
    verify_server: Type.Boolean({
      default: true,
      description: 'Verify the broker certificate and host name. Turning this off is insecure and logged as a warning.',
    }),
    server_name: Type.Optional(Type.String({ description: 'Host name expected in the broker certificate, when it differs from the URL host.' })),
  },
  { additionalProperties: false, default: {}, description: 'TLS settings. TLS is on for mqtts:// URLs and the broker certificate is verified by default.' },
);

const Commands = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'Accept writes on the command topics. Off by default; even when on, only points with writable: true can be written.',
    }),
    topic_template: Type.String({
      default: '{site}/{gateway}/{device}/{point}/set',
      description: 'Command topic per point; {device} and {point} must each be a whole topic level. Placeholders: {site} {gateway} {device} {point}.',
    }),
    result_topic_template: Type.String({
      default: '{site}/{gateway}/{device}/{point}/set/result',
      description: "Where the outcome of each command is published (QoS 1, not retained); with MQTT 5 also to the request's Response Topic.",
    }),
    default_expiry_ms: Type.Integer({
      minimum: 100,
      maximum: 3_600_000,
      default: 10_000,
      description:
        'A command without a deadline (body "deadline", or MQTT 5 Message Expiry) expires this long after it arrived: one still waiting for its device then is answered "expired" and never applied.',
    }),
    token_file: Type.Optional(
      Type.String({
        description:
          'File holding a shared secret; when set, a command must carry it (MQTT 5 user property "token", or "token" in the body) or is refused. The broker ACL stays the first gate.',
      }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'Writes from plant systems through command topics (docs/writes.md).' },
);

const Sparkplug = Type.Object(
  {
    group_id: Type.String({
      pattern: '^[^/+#]+$',
      minLength: 1,
      patternHint: 'a topic level without /, + or #',
      description: 'Sparkplug Group ID: the second level of spBv1.0/{group_id}/… topics.',
    }),
    edge_node_id: Type.Optional(
      Type.String({ pattern: '^[^/+#]+$', minLength: 1, patternHint: 'a topic level without /, + or #', description: 'Edge Node ID. Default: gateway_id.' }),
    ),
    primary_host_id: Type.Optional(
      Type.String({
        pattern: '^[^/+#]+$',
        minLength: 1,
        patternHint: 'a topic level without /, + or #',
        description:
          "The Primary Host Application's id: births and data are published only while its STATE (spBv1.0/STATE/{id}) says online; meanwhile samples stay in the buffer and go out afterwards flagged is_historical.",
      }),
    ),
    report_by_exception: Type.Boolean({
      default: true,
      description:
        'DDATA carries only the metrics whose value or quality changed since the last one sent in the session (births carry every metric); a message with no change is not sent, and its buffered row counts as delivered. Sparkplug hosts read an absent metric as unchanged. false: every buffered value is sent.',
    }),
    data_qos: Enum([0, 1], {
      default: 0,
      description:
        'QoS of DDATA messages (births and deaths always go at QoS 0, as Sparkplug 3.0 requires). 0 is what the specification requires; a row then leaves the buffer once a later round trip on the connection shows the broker read it (docs/sparkplug.md, Delivery). 1 deletes each DDATA row on the broker PUBACK, outside the specification.',
    }),
  },
  { additionalProperties: false, description: 'Sparkplug B 3.0 edge node settings (with format: sparkplug); docs/sparkplug.md.' },
);

export const Mqtt = Type.Object(
  {
    url: Type.String({
      description: 'Broker URL: mqtts://host:8883 (TLS) or mqtt://host:1883 (plain, only with allow_plaintext).',
      pattern: '^mqtts?://',
      patternHint: 'a URL starting with mqtts:// or mqtt://',
      examples: ['mqtts://broker.plant.local:8883'],
    }),
    allow_plaintext: Type.Boolean({ default: false, description: 'Permit an mqtt:// (unencrypted) URL.' }),
    protocol_version: Enum(['auto', 4, 5], {
      default: 'auto',
      description:
        'auto = MQTT 5 until the broker refuses it, then MQTT 3.1.1 (said once in the log and the status); 4 = MQTT 3.1.1 only, 5 = MQTT 5 only. docs/brokers.md lists what each broker speaks.',
    }),
    topic_dot: Enum(['_', '-', '.'], {
      default: '_',
      description:
        "What a '.' in a site, gateway, device, point or station name becomes in the MQTT topics made from it. '_' (default) and '-' give topics every common broker carries: NATS 2.9 drops the connection on a '.', RabbitMQ turns it into a level separator. '.' keeps names as they are (mosquitto, EMQX, HiveMQ, VerneMQ, NATS 2.10+): docs/brokers.md. Poll payloads, statuses and command results carry the names as they are; two names that become the same topic are refused by check.",
    }),
    client_id: Type.Optional(Type.String({ description: 'MQTT client id. Default: edgeferry-{site}-{gateway_id}.' })),
    username: Type.Optional(Type.String({ description: 'Broker user name.' })),
    password_file: Type.Optional(Type.String({ description: 'File holding the broker password (never put the password itself in YAML).' })),
    qos: Enum([0, 1], {
      default: 1,
      description:
        'QoS of data messages. 1 deletes from the buffer only after PUBACK; 0 after a later round trip on the connection (UNSUBACK) shows the broker read it.',
    }),
    keepalive_s: Type.Integer({ minimum: 5, maximum: 3600, default: 30, description: 'MQTT keepalive in seconds.' }),
    topic_template: Type.String({
      default: '{site}/{gateway}/{device}/{point}',
      description: 'Data topic. Placeholders: {site} {gateway} {device} {point}.',
    }),
    format: Enum(['json', 'sparkplug'], {
      default: 'json',
      description:
        'json: the JSON topics and payloads of docs/integration.md. sparkplug: a Sparkplug B 3.0 edge node (protobuf on spBv1.0/… topics, births, deaths, rebirth, primary host) — see the sparkplug section and docs/sparkplug.md.',
    }),
    sparkplug: Type.Optional(Sparkplug),
    payload: Enum(['point', 'poll'], {
      default: 'point',
      description:
        'point: one message per sample, on topic_template (a topic per point). poll: one message per poll of a device holding all its points (critical points in a message of their own), on poll_topic_template — one message and one buffer row per poll instead of per point, so a core carries several times more tags (BENCHMARKS.md); seq then numbers messages.',
    }),
    poll_topic_template: Type.String({
      default: '{site}/{gateway}/{device}',
      description: 'Data topic with payload: poll. Placeholders: {site} {gateway} {device}.',
    }),
    status_topic: Type.String({ default: '{site}/{gateway}/status', description: 'Retained gateway status topic (birth and Last Will).' }),
    events_topic: Type.String({
      default: '{site}/{gateway}/events',
      description: 'Gateway events (data loss with sequence ranges, buffer recovery), QoS 1, not retained.',
    }),
    device_status_topic: Type.String({
      default: '{site}/{gateway}/status/{device}',
      description: 'Retained per-device status topic.',
    }),
    max_inflight: Type.Integer({ minimum: 1, maximum: 65535, default: 1000, description: 'Messages published but not yet acknowledged.' }),
    reconnect_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 2000, description: 'Delay between broker reconnect attempts.' }),
    tls: Tls,
    commands: Commands,
  },
  { additionalProperties: false, description: 'The broker connection, topics and delivery.' },
);

export type MqttConfig = Static<typeof Mqtt>;
export type CommandsConfig = MqttConfig['commands'];
