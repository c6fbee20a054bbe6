import { Type, type Static } from '@sinclair/typebox';
import { CommonPointProps, Enum } from '../../src/config/schema.js';

export const SECURITY_POLICIES = ['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'] as const;
export const SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;

export const OpcuaConnection = Type.Object(
  {
    endpoint: Type.String({
      pattern: '^opc\\.tcp://',
      patternHint: 'an endpoint URL starting with opc.tcp://',
      description: 'Server endpoint URL.',
      examples: ['opc.tcp://10.0.0.20:4840'],
    }),
    security_policy: Enum(SECURITY_POLICIES, { default: 'Basic256Sha256', description: 'Security policy. None only with security_mode None.' }),
    security_mode: Enum(SECURITY_MODES, { default: 'SignAndEncrypt', description: 'Message security mode.' }),
    auth: Enum(['anonymous', 'username', 'certificate'], { default: 'anonymous', description: 'User identity presented to the server.' }),
    username: Type.Optional(Type.String({ description: 'With auth: username.' })),
    password_file: Type.Optional(Type.String({ description: 'With auth: username, the file holding the password (never the password itself in YAML).' })),
    user_certificate: Type.Optional(Type.String({ description: 'With auth: certificate, the PEM user certificate.' })),
    user_key: Type.Optional(Type.String({ description: 'With auth: certificate, the PEM private key of the user certificate.' })),
    pki_dir: Type.Optional(
      Type.String({
        description:
          "The gateway's OPC UA PKI folder (own certificate, created on first run; trusted/ and rejected/ server certificates), relative to the gateway file. Default: pki/opcua in the service's state folder under systemd (/var/lib/edgeferry/pki/opcua: $STATE_DIRECTORY), else next to the gateway file.",
      }),
    ),
    trust_unknown_server: Type.Boolean({
      default: false,
      description:
        'Accept and trust a server certificate seen for the first time. Off by default: an unknown certificate is rejected and put in <pki_dir>/rejected/ for you to move to <pki_dir>/trusted/certs/.',
    }),
    timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000, description: 'Timeout for connecting and for each request.' }),
    max_nodes_per_read: Type.Integer({
      minimum: 0,
      maximum: 100_000,
      default: 0,
      description: "Largest Read request; 0 = the server's MaxNodesPerRead (or 1000 when it sets none).",
    }),
  },
  { additionalProperties: false },
);

export const OpcuaPoint = Type.Object(
  {
    ...CommonPointProps,
    node_id: Type.String({ minLength: 3, description: 'Node id of the variable, e.g. ns=3;s="DB1"."Temperature" or ns=2;i=1001.' }),
    mode: Enum(['poll', 'subscribe'], {
      default: 'poll',
      description:
        'poll: batched Read calls every poll_interval_ms. subscribe: a monitored item; the server reports changes (sampled every sampling_interval_ms).',
    }),
    sampling_interval_ms: Type.Integer({
      minimum: 0,
      maximum: 3_600_000,
      default: 1000,
      description: 'With mode: subscribe, how often the server samples the value (0 = as fast as it can).',
    }),
    queue_size: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description: 'With mode: subscribe, changes the server keeps between publishes, so fast changes are not lost.',
    }),
    deadband_type: Enum(['none', 'absolute', 'percent'], {
      default: 'none',
      description:
        "With mode: subscribe, a server-side deadband of `deadband` (absolute units, or percent of the variable's EURange): smaller changes are not reported.",
    }),
  },
  { additionalProperties: false },
);

export type OpcuaConnectionConfig = Static<typeof OpcuaConnection>;
export type OpcuaPointConfig = Static<typeof OpcuaPoint>;
