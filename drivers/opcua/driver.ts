import type { DataValue, Variant } from 'node-opcua';
import {
  valueText,
  type DeviceConfig,
  type Driver,
  type DriverContext,
  type Reading,
  type Value,
  type WriteCheck,
  type WriteOutcome,
  type ValueType,
} from '../../src/core/driver.js';
import { variantFor } from './write.js';
import { TimeoutError } from '../../src/errors.js';
import type { OpcuaLink } from './link.js';
import { withDeadline } from '../../src/core/deadline.js';
import { loadOpcua } from './load.js';
import type { OpcuaConnectionConfig, OpcuaPointConfig } from './schema.js';

/** Server_ServerStatus_CurrentTime: the cheapest read that proves the session works. */
const CURRENT_TIME = 'i=2258';
/** AttributeIds.Value and AttributeIds.DataType */
const VALUE = 13;
const DATA_TYPE = 14;
/** Built-in type ids (Part 6, 5.1.2), so this module does not have to load node-opcua. */
const DataType = { Boolean: 1, Int64: 8, UInt64: 9, DateTime: 13, Guid: 14, ByteString: 15, NodeId: 17, QualifiedName: 20, LocalizedText: 21 } as const;

/** node-opcua gives 64-bit integers as [high, low] 32-bit words. */
function int64(v: unknown, signed: boolean): number | bigint {
  if (!Array.isArray(v)) return Number(v);
  const raw = (BigInt(v[0] >>> 0) << 32n) | BigInt(v[1] >>> 0);
  const big = signed ? BigInt.asIntN(64, raw) : raw;
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function scalar(dataType: number, v: unknown): Value {
  if (v === null || v === undefined) return null;
  switch (dataType) {
    case DataType.Int64:
      return int64(v, true);
    case DataType.UInt64:
      return int64(v, false);
    case DataType.DateTime:
      return v instanceof Date ? v.toISOString() : String(v);
    case DataType.ByteString:
      return Buffer.isBuffer(v) ? v.toString('base64') : String(v);
    case DataType.LocalizedText:
      return (v as { text?: string }).text ?? null;
    case DataType.QualifiedName:
      return (v as { name?: string }).name ?? null;
    case DataType.NodeId:
    case DataType.Guid:
      return String(v);
    case DataType.Boolean:
      return Boolean(v);
    default:
      return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? v : String(v);
  }
}

/** A Variant as a JSON-able value: scalars as they are, arrays as arrays of scalars. */
export function variantValue(variant: Variant | undefined): Value {
  if (!variant) return null;
  const v = variant.value as unknown;
  if (variant.arrayType !== undefined && Number(variant.arrayType) !== 0 /* Scalar */) {
    const list = Array.from((v ?? []) as ArrayLike<unknown>).map((x) => scalar(Number(variant.dataType), x));
    // bigints cannot go into JSON arrays; 64-bit array elements beyond 2^53 become strings.
    return list.map((x) => (typeof x === 'bigint' ? x.toString() : x)) as Value;
  }
  return scalar(Number(variant.dataType), v);
}

/** Built-in data types (Part 6, 5.1.2) by id, as value types; the others are published as text. */
const VALUE_TYPES: Record<number, ValueType> = {
  1: 'boolean',
  2: 'int8',
  3: 'uint8',
  4: 'int16',
  5: 'uint16',
  6: 'int32',
  7: 'uint32',
  8: 'int64',
  9: 'uint64',
  10: 'float',
  11: 'double',
  12: 'string',
  13: 'datetime',
};

/** The type of a Variant's value as published by variantValue(); undefined for an empty Variant. */
export function variantType(variant: Variant | undefined): ValueType | undefined {
  if (!variant || variant.value === null || variant.value === undefined) return undefined;
  if (variant.arrayType !== undefined && Number(variant.arrayType) !== 0) return 'array';
  return VALUE_TYPES[Number(variant.dataType)] ?? 'string';
}

/** A status code as OPC UA tools print it, e.g. 0x80340000. */
const statusHex = (code: number) => `0x${(code >>> 0).toString(16).padStart(8, '0')}`;

export function toReading(point: OpcuaPointConfig, dv: DataValue): Reading {
  const code = dv.statusCode.value >>> 0;
  const severity = code >>> 30; // 0 good, 1 uncertain, 2 bad (Part 4, StatusCode)
  const reading: Reading = {
    point: point.name,
    value: severity === 2 ? null : variantValue(dv.value),
    quality: severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad',
  };
  if (severity !== 0) reading.reason = `${dv.statusCode.name} (${statusHex(code)})`;
  const type = severity === 2 ? undefined : variantType(dv.value);
  if (type) reading.type = type;
  if (dv.sourceTimestamp) reading.deviceTs = dv.sourceTimestamp.getTime();
  if (dv.serverTimestamp) reading.serverTs = dv.serverTimestamp.getTime();
  return reading;
}

/** An OPC UA device: points are variables read in batches within the server's operation limits. */
export class OpcuaDriver implements Driver<OpcuaPointConfig, OpcuaPointConfig[], OpcuaLink> {
  private readonly cfg: OpcuaConnectionConfig;
  private readonly log: DriverContext['log'];
  constructor(device: DeviceConfig<OpcuaConnectionConfig, OpcuaPointConfig>, ctx: DriverContext) {
    this.cfg = device.connection;
    this.log = ctx.log;
  }

  plan(points: OpcuaPointConfig[]): OpcuaPointConfig[] {
    return points;
  }

  async probe(link: OpcuaLink, _signal: AbortSignal): Promise<void> {
    const { session, untilLost } = link.session();
    await this.guard(untilLost(session.read({ nodeId: CURRENT_TIME, attributeId: VALUE })), 'probe');
  }

  async read(points: OpcuaPointConfig[], l: OpcuaLink, _signal: AbortSignal): Promise<Reading[]> {
    const { session, untilLost } = l.session();
    const out: Reading[] = [];
    for (let i = 0; i < points.length; i += l.maxNodesPerRead) {
      const chunk = points.slice(i, i + l.maxNodesPerRead);
      const values = await this.guard(untilLost(session.read(chunk.map((p) => ({ nodeId: p.node_id, attributeId: VALUE })))), `read of ${chunk.length} nodes`);
      chunk.forEach((p, k) => out.push(toReading(p, values[k]!)));
    }
    return out;
  }

  async subscribe(points: OpcuaPointConfig[], l: OpcuaLink, onData: (readings: Reading[], ts: number) => void, _signal: AbortSignal): Promise<void> {
    const { session, untilLost } = l.session();
    const ua = await loadOpcua(this.log);
    const fastest = Math.min(...points.map((p) => p.sampling_interval_ms));
    const subscription = await this.guard(
      untilLost(
        session.createSubscription2({
          requestedPublishingInterval: Math.max(50, fastest),
          requestedLifetimeCount: 600,
          requestedMaxKeepAliveCount: 20,
          maxNotificationsPerPublish: 1000,
          publishingEnabled: true,
          priority: 10,
        }),
      ),
      'CreateSubscription',
    );
    // One monitored-item group per distinct set of parameters.
    const groups = new Map<string, OpcuaPointConfig[]>();
    for (const p of points) {
      const key = `${p.sampling_interval_ms}/${p.queue_size}/${p.deadband_type}/${p.deadband}`;
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    for (const group of groups.values()) {
      const p0 = group[0]!;
      const filter =
        p0.deadband_type === 'none'
          ? undefined
          : new ua.DataChangeFilter({
              trigger: ua.DataChangeTrigger.StatusValue,
              deadbandType: p0.deadband_type === 'absolute' ? ua.DeadbandType.Absolute : ua.DeadbandType.Percent,
              deadbandValue: p0.deadband,
            });
      const items = await this.guard(
        untilLost(
          subscription.monitorItems(
            group.map((p) => ({ nodeId: p.node_id, attributeId: VALUE })),
            { samplingInterval: p0.sampling_interval_ms, queueSize: p0.queue_size, discardOldest: true, filter },
            ua.TimestampsToReturn.Both,
          ),
        ),
        `CreateMonitoredItems for ${group.length} nodes`,
      );
      items.on('changed', (_item, dataValue, index) => onData([toReading(group[index]!, dataValue)], Date.now()));
      // An item the server refused (an unknown node, a bad filter) would never report anything:
      // it becomes a bad sample with the server's status, and a log line, on every (re)subscribe.
      const refused: Reading[] = [];
      items.monitoredItems.forEach((item, i) => {
        const status = item.statusCode;
        if (!status || status.value >>> 30 < 2) return;
        const p = group[i]!;
        const reason = `monitored item refused: ${status.name} (${statusHex(status.value)})`;
        this.log.warn({ point: p.name, node_id: p.node_id, status: status.name }, 'monitored item refused by the server');
        refused.push({ point: p.name, value: null, quality: 'bad', reason });
      });
      if (refused.length) onData(refused, Date.now());
    }
  }

  checkWrite(_point: OpcuaPointConfig, value: unknown): WriteCheck {
    // The node's data type is known only on the server: the value's own kind is checked here, the
    // rest (range of the type) in write(), before anything is written.
    const scalar = (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' || typeof value === 'string';
    return scalar ? { ok: true, value: value } : { ok: false, reason: `expected a number, boolean or string, got ${valueText(value)}` };
  }

  /** The built-in data type of each written node, read once from its DataType attribute. */
  private readonly dataTypes = new Map<string, number>();

  async write(point: OpcuaPointConfig, value: Value, l: OpcuaLink, _signal: AbortSignal): Promise<WriteOutcome> {
    const { session, untilLost } = l.session();
    let type = this.dataTypes.get(point.node_id);
    if (type === undefined) {
      const dv = await this.guard(untilLost(session.read({ nodeId: point.node_id, attributeId: DATA_TYPE })), `read of the DataType of ${point.node_id}`);
      const id = dv.value?.value as { namespace?: number; value?: unknown } | undefined;
      if (dv.statusCode.value >>> 30 >= 2) return statusOutcome(dv.statusCode, 'reading its DataType');
      if (!id || id.namespace !== 0 || typeof id.value !== 'number') {
        return { ok: false, refused: true, reason: `the node's data type ${String(id)} is not a built-in type this gateway writes` };
      }
      this.dataTypes.set(point.node_id, (type = id.value));
    }
    const v = variantFor(type, value);
    if (!v.ok) return { ok: false, refused: true, reason: v.reason };
    const status = await this.guard(
      untilLost(session.write({ nodeId: point.node_id, attributeId: VALUE, value: { value: { dataType: type, value: v.value } } })),
      `write of ${point.node_id}`,
    );
    if (status.value >>> 30 < 2) return { ok: true };
    this.dataTypes.delete(point.node_id); // a node may have changed its type (BadTypeMismatch)
    return statusOutcome(status, 'the write');
  }

  private guard<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.cfg.timeout_ms + 250, () => new TimeoutError(`${this.cfg.endpoint}: ${what}: no answer after ${this.cfg.timeout_ms} ms`));
  }
}

function statusOutcome(status: { value: number; name: string }, what: string): WriteOutcome {
  const hex = statusHex(status.value);
  return { ok: false, code: hex, reason: `${status.name} (${hex}) on ${what}` };
}
