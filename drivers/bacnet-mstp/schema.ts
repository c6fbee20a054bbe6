import { Type, type Static } from '@sinclair/typebox';
import { CommonPointProps, Enum } from '../../src/config/schema.js';

export const BAUD_RATES = [9600, 19200, 38400, 57600, 76800, 115200] as const;

export const MstpConnection = Type.Object(
  {
    port: Type.String({ minLength: 1, description: 'Serial device of the RS485 adapter, e.g. /dev/ttyUSB1 (a /dev/serial/by-id/ path survives re-plugging).' }),
    baud_rate: Enum(BAUD_RATES, { default: 38400, description: 'Line speed; every node on the line must use the same one.' }),
    station: Type.Integer({ minimum: 0, maximum: 127, description: "The gateway's own MAC address (a master, 0–127); unique on the line." }),
    max_master: Type.Integer({
      minimum: 0,
      maximum: 127,
      default: 127,
      description:
        'Nmax_master: the highest master address on the line. Lower it to the real highest master so lost-token recovery and polling for new masters are quick.',
    }),
    max_info_frames: Type.Integer({
      minimum: 1,
      maximum: 255,
      default: 1,
      description: 'Nmax_info_frames: requests the gateway may send each time it holds the token.',
    }),
    usage_timeout_ms: Type.Integer({
      minimum: 20,
      maximum: 100,
      default: 30,
      description: 'Tusage_timeout: how long to wait for a node to start using a token or answering a Poll-For-Master (the standard allows 20–100 ms).',
    }),
    mac: Type.Integer({ minimum: 0, maximum: 254, description: 'MAC address of the device on the line (masters 0–127, slaves up to 254).' }),
    device_instance: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 4_194_302,
        description: 'BACnet device instance. When given, the I-Am of the device at `mac` must match it; when left out, it is learned with Who-Is.',
      }),
    ),
    timeout_ms: Type.Integer({
      minimum: 300,
      maximum: 60_000,
      default: 3000,
      description: 'APDU timeout: how long to wait for an answer, including waiting for the token and a Reply Postponed answer.',
    }),
    read_multiple: Type.Boolean({
      default: true,
      description: 'Read points with ReadPropertyMultiple. Off (or when the device rejects the service), one ReadProperty per point.',
    }),
    max_properties_per_request: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 16,
      description: 'Most properties in one ReadPropertyMultiple (answers must fit an unsegmented 480-octet APDU).',
    }),
  },
  { additionalProperties: false },
);

export const OBJECT_PATTERN = '^(analog|binary|multi-state)-(input|output|value):[0-9]{1,7}$|^device:[0-9]{1,7}$';

export const MstpPoint = Type.Object(
  {
    ...CommonPointProps,
    object: Type.String({
      pattern: OBJECT_PATTERN,
      patternHint: 'an object as type:instance, e.g. analog-input:3, binary-value:1, multi-state-output:2 or device:1001',
      description: 'The BACnet object: analog-, binary- or multi-state- input, output or value, or device, with its instance.',
    }),
    property: Type.String({
      default: 'present-value',
      pattern: '^[a-z][a-z-]*$|^[0-9]+$',
      patternHint: 'a property name such as present-value, status-flags, object-name, or its number',
      description: 'The property to read; present-value by default. Any property by name or number.',
    }),
    write_priority: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 16,
        description:
          'With writable: the command priority of WriteProperty (1 highest … 16 lowest; default 16). A value commanded at a higher priority by someone else stays in force; a write of null relinquishes ours.',
      }),
    ),
    array_index: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 4_294_967_294, description: 'For array properties, the element to read (0 = the length).' }),
    ),
  },
  { additionalProperties: false },
);

export type MstpConnectionConfig = Static<typeof MstpConnection>;
export type MstpPointConfig = Static<typeof MstpPoint>;
