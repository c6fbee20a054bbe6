// The metrics of an edge node's devices as Sparkplug sees them: a name, an alias unique across the
// whole edge node, a datatype fixed for the session, the engineering unit. The datatype comes from
// the point's own declaration where the driver has one (a Modbus type, a BACnet object); otherwise
// (OPC UA) from the values seen — a value of another kind later changes it, and the device is born
// again with the new type before that value is sent (its datatype must match its birth).
import type { Value } from '../../core/driver.js';
import type { CommonPoint } from '../../config/schema.js';
import { DT, type DataTypeId } from './payload.js';

export interface MetricDef {
  name: string;
  alias: number;
  datatype: DataTypeId;
  unit?: string;
  /** Declared by the map (fixed), or inferred from values (may change, with a rebirth). */
  declared: boolean;
}

export interface CatalogDevice {
  name: string;
  points: readonly CommonPoint[];
}

const MODBUS: Record<string, DataTypeId> = {
  bool: DT.Boolean,
  int16: DT.Int16,
  uint16: DT.UInt16,
  int32: DT.Int32,
  uint32: DT.UInt32,
  int64: DT.Int64,
  uint64: DT.UInt64,
  float32: DT.Float,
  float64: DT.Double,
  string: DT.String,
};

/** The datatype a point declares, if its driver's fields say (undefined: learn it from values). */
export function declaredType(p: CommonPoint): DataTypeId | undefined {
  const q = p as CommonPoint & { type?: string; scale?: number; offset?: number; object?: string; property?: string };
  if (typeof q.type === 'string' && MODBUS[q.type] !== undefined) {
    // A scaled integer is a fraction on the wire to us: a double.
    const scaled = (q.scale ?? 1) !== 1 || (q.offset ?? 0) !== 0;
    return scaled && q.type !== 'bool' && q.type !== 'string' ? DT.Double : MODBUS[q.type];
  }
  if (typeof q.object === 'string' && (q.property ?? 'present-value') === 'present-value') {
    if (/^analog-/.test(q.object)) return DT.Float;
    if (/^binary-/.test(q.object)) return DT.Boolean;
    if (/^multi-state-/.test(q.object)) return DT.UInt32;
  }
  return undefined;
}

/** The datatype for a value of unknown declaration. */
export function typeOfValue(v: Value): DataTypeId | undefined {
  if (typeof v === 'boolean') return DT.Boolean;
  if (typeof v === 'string') return DT.String;
  if (typeof v === 'bigint') return v < 0n ? DT.Int64 : DT.UInt64;
  if (typeof v === 'number') return DT.Double;
  if (Array.isArray(v)) return DT.String; // arrays as JSON text (a typed Sparkplug array needs one element type)
  return undefined;
}

export class MetricCatalog {
  private readonly byDevice = new Map<string, Map<string, MetricDef>>();
  /** Every metric by its alias (DCMDs name metrics by alias). */
  private readonly aliases = new Map<number, { device: string; def: MetricDef }>();
  private nextAlias = 1;

  /** (Re)builds the catalog for these devices; aliases of metrics seen before are kept. */
  update(devices: readonly CatalogDevice[]): void {
    const seen = new Set<string>();
    for (const d of devices) {
      seen.add(d.name);
      const old = this.byDevice.get(d.name);
      const defs = new Map<string, MetricDef>();
      for (const p of d.points) {
        const declared = declaredType(p);
        const prev = old?.get(p.name);
        defs.set(p.name, {
          name: p.name,
          alias: prev?.alias ?? this.nextAlias++,
          datatype: declared ?? prev?.datatype ?? DT.Double,
          unit: p.unit,
          declared: declared !== undefined,
        });
      }
      this.byDevice.set(d.name, defs);
    }
    for (const name of this.byDevice.keys()) if (!seen.has(name)) this.byDevice.delete(name);
    this.aliases.clear();
    for (const [device, defs] of this.byDevice) for (const def of defs.values()) this.aliases.set(def.alias, { device, def });
  }

  has(device: string): boolean {
    return this.byDevice.has(device);
  }

  devices(): string[] {
    return [...this.byDevice.keys()];
  }

  metrics(device: string): MetricDef[] {
    return [...(this.byDevice.get(device)?.values() ?? [])];
  }

  get(device: string, point: string): MetricDef | undefined {
    return this.byDevice.get(device)?.get(point);
  }

  byAlias(alias: number): { device: string; def: MetricDef } | undefined {
    return this.aliases.get(alias);
  }

  /**
   * Fits an inferred metric's datatype to a value: true when it changed (the device must be born
   * again before the value is sent). Declared types never change; null fits everything.
   */
  fit(device: string, point: string, v: Value): boolean {
    const def = this.get(device, point);
    if (!def || def.declared || v === null) return false;
    const t = typeOfValue(v);
    if (t === undefined || t === def.datatype) return false;
    def.datatype = t;
    return true;
  }
}
