import type { DeviceConfig, DeviceIssue, DriverSpec, ValueType } from '../../src/core/driver.js';
import { typeWidth } from './codec.js';
import { ModbusDriver } from './driver.js';
import { ModbusRtuLink, type ModbusLink } from './link.js';
import { ModbusTcpLink } from './tcp-link.js';
import { isBitArea, pointWidth, type ReadBlock } from './plan.js';
import {
  ModbusPoint,
  ModbusRtuConnection,
  ModbusTcpConnection,
  type ModbusConnectionCommon,
  type ModbusPointConfig,
  type ModbusRtuConnectionConfig,
  type ModbusTcpConnectionConfig,
} from './schema.js';

type ModbusDevice = DeviceConfig<ModbusConnectionCommon, ModbusPointConfig>;

const describeSpan = (p: ModbusPointConfig) => {
  const w = pointWidth(p);
  const range = w === 1 ? `${p.address}` : `${p.address}–${p.address + w - 1}`;
  const bit = p.bit !== undefined ? ` bit ${p.bit}` : '';
  return `${p.area} ${range} as ${p.type}${isBitArea(p.area) ? '' : ` ${p.byte_order}`}${bit}`;
};

const WORD_TYPES = new Set(['uint16', 'int16']);

/**
 * Two points may share registers only when they decode them the same way, are different bits of
 * one register, or are a 16-bit word and bits of it — the everyday status word: the word as
 * uint16 (or int16) for the historian, its bits as bool points for alarms.
 */
function agree(a: ModbusPointConfig, b: ModbusPointConfig): boolean {
  if (a.type === 'bool' && b.type === 'bool' && !isBitArea(a.area) && a.address === b.address) return true;
  const [bit, word] = a.type === 'bool' ? [a, b] : [b, a];
  if (bit.type === 'bool' && !isBitArea(bit.area) && WORD_TYPES.has(word.type) && pointWidth(word) === 1 && bit.address === word.address) return true;
  return a.address === b.address && a.type === b.type && pointWidth(a) === pointWidth(b) && a.byte_order === b.byte_order && a.bit === b.bit;
}

interface Group {
  p: ModbusPointConfig;
  /** The first point (index in the map) with this definition. */
  first: number;
  start: number;
  end: number;
  /** The earliest point of another group that overlaps this one and disagrees with it. */
  clash: number;
}

/** [index of a point, the earlier point it clashes with] for every point that has one, in map order. */
function firstDisagreeing(points: readonly ModbusPointConfig[]): [number, ModbusPointConfig][] {
  const groups = new Map<string, Group>();
  const groupOf: Group[] = [];
  points.forEach((p, i) => {
    const key = `${p.area}|${p.address}|${p.type}|${pointWidth(p)}|${p.byte_order}|${p.bit}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { p, first: i, start: p.address, end: p.address + pointWidth(p) - 1, clash: Infinity }));
    groupOf.push(g);
  });
  const byArea = new Map<string, Group[]>();
  for (const g of groups.values()) {
    const list = byArea.get(g.p.area);
    if (list) list.push(g);
    else byArea.set(g.p.area, [g]);
  }
  for (const list of byArea.values()) {
    list.sort((x, y) => x.start - y.start);
    // Sweep: the groups still open (their end not passed) are the only ones a group can overlap.
    let open: Group[] = [];
    for (const g of list) {
      open = open.filter((h) => h.end >= g.start);
      for (const h of open) {
        if (agree(h.p, g.p)) continue;
        g.clash = Math.min(g.clash, h.first);
        h.clash = Math.min(h.clash, g.first);
      }
      open.push(g);
    }
  }
  const out: [number, ModbusPointConfig][] = [];
  groupOf.forEach((g, i) => {
    if (g.clash < i) out.push([i, points[g.clash]!]);
  });
  return out;
}

export function validateModbusDevice(device: ModbusDevice): DeviceIssue[] {
  const issues: DeviceIssue[] = [];
  const limit = device.connection.max_registers_per_read;
  device.points.forEach((p, i) => {
    const at = (field: string) => ['points', i, field];
    const fixed = typeWidth(p.type);
    if (isBitArea(p.area)) {
      if (p.type !== 'bool') issues.push({ path: at('type'), message: `expected bool for a ${p.area} point, got "${p.type}"` });
      if (p.bit !== undefined) issues.push({ path: at('bit'), message: `expected no bit for a ${p.area} point (it is one bit already), got ${p.bit}` });
      if (p.count !== undefined) issues.push({ path: at('count'), message: `expected no count for a ${p.area} point, got ${p.count}` });
    } else {
      if (p.bit !== undefined && p.type !== 'bool')
        issues.push({ path: at('bit'), message: `expected bit only with type bool, got bit ${p.bit} with type "${p.type}"` });
      if (p.type === 'bool' && p.bit === undefined)
        issues.push({ path: at('type'), message: `expected a bit (0–15) for a bool in a ${p.area} register, got none` });
      if (p.type === 'string' && p.count === undefined)
        issues.push({ path: at('type'), message: 'expected count (registers, 2 characters each) for type string, got none' });
      if (fixed !== undefined && p.count !== undefined && p.count !== fixed) {
        issues.push({ path: at('count'), message: `expected count ${fixed} for type ${p.type} (or no count), got ${p.count}` });
      }
      if (pointWidth(p) > limit)
        issues.push({ path: at('count'), message: `expected at most ${limit} registers (max_registers_per_read), got ${pointWidth(p)}` });
    }
    if (p.writable && (p.area === 'input' || p.area === 'discrete'))
      issues.push({
        path: at('writable'),
        message: `expected writable only on holding registers and coils, got writable: true on a read-only ${p.area} point`,
      });
    if (p.writable && p.area === 'holding' && p.type === 'bool' && device.connection.bit_write !== 'read_modify_write') {
      issues.push({
        path: at('writable'),
        message:
          'expected connection.bit_write: read_modify_write for a writable bit of a holding register (the register is read and written back; only safe where the gateway is the only writer), got bit_write: refuse',
      });
    }
    const end = p.address + pointWidth(p) - 1;
    if (end > 65535)
      issues.push({ path: at('address'), message: `expected the point to end at or below address 65535, got ${describeSpan(p)} (ends at ${end})` });
    if ((p.type === 'bool' || p.type === 'string') && (p.scale !== 1 || p.offset !== 0)) {
      issues.push({
        path: at(p.scale !== 1 ? 'scale' : 'offset'),
        message: `expected no scale/offset for type ${p.type}, got scale ${p.scale} offset ${p.offset}`,
      });
    }
  });
  // Overlaps that disagree: for each point, the earliest point before it in the map whose registers
  // overlap and that decodes them differently. Points with one definition (area, address, type,
  // width, byte order, bit) are one group, and groups are compared only with the groups whose
  // registers overlap theirs (sorted by address): linear in the points for real maps, never
  // every point with every other (issue 16: a 100k-point map).
  for (const [i, a] of firstDisagreeing(device.points)) {
    issues.push({
      path: ['points', i, 'address'],
      message: `expected registers not decoded differently by point "${a.name}" (${describeSpan(a)}), got ${describeSpan(device.points[i]!)}`,
    });
  }
  return issues;
}

const VALUE_TYPES: Record<ModbusPointConfig['type'], ValueType> = {
  bool: 'boolean',
  int16: 'int16',
  uint16: 'uint16',
  int32: 'int32',
  uint32: 'uint32',
  int64: 'int64',
  uint64: 'uint64',
  float32: 'float',
  float64: 'double',
  string: 'string',
};

/** A point's type as the map declares it; a scaled or offset number is a fraction to us: a double. */
export function modbusValueType(p: ModbusPointConfig): ValueType {
  const scaled = (p.scale ?? 1) !== 1 || (p.offset ?? 0) !== 0;
  return scaled && p.type !== 'bool' && p.type !== 'string' ? 'double' : VALUE_TYPES[p.type];
}

export const modbusTcp: DriverSpec<ModbusTcpConnectionConfig, ModbusPointConfig, ReadBlock[], ModbusLink> = {
  type: 'modbus_tcp',
  summary: 'Modbus TCP client: holding/input registers, coils, discrete inputs, with a merging read planner. Unit ids behind one host:port share a link.',
  connectionSchema: ModbusTcpConnection,
  pointSchema: ModbusPoint,
  validate: validateModbusDevice,
  writes: true,
  valueType: modbusValueType,
  linkKey: (d) => `tcp://${d.connection.host}:${d.connection.port}`,
  sharedConnectionKeys: ['keepalive_s'],
  createLink: (d, ctx) => new ModbusTcpLink(d.connection, ctx.log),
  create: (device, ctx) => new ModbusDriver(device, ctx),
};

export const modbusRtu: DriverSpec<ModbusRtuConnectionConfig, ModbusPointConfig, ReadBlock[], ModbusLink> = {
  type: 'modbus_rtu',
  summary: 'Modbus RTU master on a serial line (RS485/RS232): several slaves per port, one request on the wire at a time, CRC checked.',
  connectionSchema: ModbusRtuConnection,
  pointSchema: ModbusPoint,
  validate: validateModbusDevice,
  writes: true,
  valueType: modbusValueType,
  linkKey: (d) => `serial:${d.connection.port}`,
  sharedConnectionKeys: ['baud_rate', 'parity', 'data_bits', 'stop_bits', 'inter_frame_ms'],
  createLink: (d, ctx) => new ModbusRtuLink(d.connection, ctx.log),
  create: (device, ctx) => new ModbusDriver(device, ctx),
};
