import { Type, type Static } from '@sinclair/typebox';
import { CommonPointProps, Enum } from '../../src/config/schema.js';

export const AREAS = ['holding', 'input', 'coil', 'discrete'] as const;
export const DATA_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export const BYTE_ORDERS = ['ABCD', 'DCBA', 'BADC', 'CDAB'] as const;

export type Area = (typeof AREAS)[number];
export type DataType = (typeof DATA_TYPES)[number];
export type ByteOrder = (typeof BYTE_ORDERS)[number];

/** Protocol limits from the Modbus Application Protocol spec (FC 3/4: 125 registers, FC 1/2: 2000 bits). */
export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;

/** Connection fields shared by Modbus TCP and RTU. */
const CommonConnection = {
  unit_id: Type.Integer({
    minimum: 0,
    maximum: 255,
    default: 1,
    description: 'Modbus unit (slave) id. Devices with different unit ids on one endpoint share its link.',
  }),
  timeout_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'Answer timeout per request (and connect timeout on TCP).' }),
  max_gap: Type.Integer({
    minimum: 0,
    maximum: 124,
    default: 16,
    description: 'Unused registers (or bits, ×16) the read planner may read over to merge two points into one request.',
  }),
  max_registers_per_read: Type.Integer({
    minimum: 1,
    maximum: MAX_REGISTERS_PER_READ,
    default: MAX_REGISTERS_PER_READ,
    description: 'Largest register block per request; lower it for PLCs with smaller limits.',
  }),
  max_bits_per_read: Type.Integer({
    minimum: 1,
    maximum: MAX_BITS_PER_READ,
    default: MAX_BITS_PER_READ,
    description: 'Largest coil/discrete-input block per request.',
  }),
  bit_write: Enum(['refuse', 'read_modify_write'], {
    default: 'refuse',
    description:
      'Writing a writable bool point that is a bit of a holding register means reading the register and writing it back with the bit changed; if another master changes the other bits in between, its change is lost. refuse (default) refuses such writes; read_modify_write allows them on a device where the gateway is the only writer.',
  }),
  probe: Type.Object(
    {
      area: Enum(AREAS, { default: 'holding', description: 'Area of the heartbeat register.' }),
      address: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 0,
        description: 'Address of the heartbeat register. Any answer proves the device is alive, an exception included.',
      }),
    },
    { additionalProperties: false, default: {}, description: 'The one register read as a heartbeat when the device is idle or down.' },
  ),
};

export const ModbusTcpConnection = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'PLC (or Modbus gateway) host name or IP address.', examples: ['10.0.0.5'] }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502, description: 'TCP port.' }),
    keepalive_s: Type.Integer({ minimum: 1, maximum: 7200, default: 10, description: 'TCP keepalive idle time on the socket.' }),
    ...CommonConnection,
  },
  { additionalProperties: false },
);

export const ModbusRtuConnection = Type.Object(
  {
    port: Type.String({ minLength: 1, description: 'Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/… (stable across re-plugging).' }),
    baud_rate: Enum([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200], { default: 19200, description: 'Line speed.' }),
    parity: Enum(['none', 'even', 'odd'], { default: 'even', description: 'Parity (the Modbus default is even).' }),
    data_bits: Enum([7, 8], { default: 8, description: 'Data bits (RTU uses 8).' }),
    stop_bits: Enum([1, 2], { default: 1, description: 'Stop bits (use 2 with parity none, per the Modbus spec).' }),
    inter_frame_ms: Type.Optional(
      Type.Number({ minimum: 0, maximum: 100, description: 'Silence between frames. Default: 3.5 character times (1.75 ms above 19200 baud).' }),
    ),
    ...CommonConnection,
  },
  { additionalProperties: false },
);

export const ModbusPoint = Type.Object(
  {
    ...CommonPointProps,
    area: Enum(AREAS, {
      default: 'holding',
      description: 'holding (FC3), input (FC4) registers; coil (FC1), discrete (FC2) bits.',
    }),
    address: Type.Integer({ minimum: 0, maximum: 65535, description: 'Zero-based address (register 40001 is holding address 0).' }),
    type: Enum(DATA_TYPES, {
      default: 'uint16',
      description: 'Data type. Coils and discrete inputs are always bool.',
    }),
    count: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_REGISTERS_PER_READ,
        description: 'Registers to read. Required for string (2 characters per register); for numbers it must match the type width if given.',
      }),
    ),
    byte_order: Enum(BYTE_ORDERS, {
      default: 'ABCD',
      description: 'ABCD big-endian; CDAB word-swapped; BADC byte-swapped; DCBA little-endian. For 16-bit values only the byte swap applies.',
    }),
    bit: Type.Optional(Type.Integer({ minimum: 0, maximum: 15, description: 'For type bool on a register: the bit (0 = least significant).' })),
    scale: Type.Number({ default: 1, description: 'Multiplier applied to numeric values: value × scale + offset.' }),
    offset: Type.Number({ default: 0, description: 'Added after scale.' }),
  },
  { additionalProperties: false },
);

export type ModbusTcpConnectionConfig = Static<typeof ModbusTcpConnection>;
export type ModbusRtuConnectionConfig = Static<typeof ModbusRtuConnection>;
export type ModbusConnectionCommon = ModbusTcpConnectionConfig | ModbusRtuConnectionConfig;
export type ModbusPointConfig = Static<typeof ModbusPoint>;
