// The metrics of an edge node's devices as Sparkplug sees them: a name, an alias unique across the
// whole edge node, a datatype fixed for the session, the engineering unit. The datatype is the
// driver's to say (DriverSpec.valueType, docs/drivers.md): declared by the point's map (a Modbus
// type, a BACnet present-value), or reported by the device with each reading (an OPC UA
// variable's type). A reported type may change; the device is then born again with the new type
// before a value of it is sent (its datatype must match its birth). A value no driver typed is
// published as the kind of value it is.
import type { Value, ValueType } from '../../core/driver.js';
import type { CommonPoint } from '../../config/schema.js';
import { carries, DT, DT_OF, type DataTypeId } from './payload.js';

export interface MetricDef {
  name: string;
  alias: number;
  datatype: DataTypeId;
  unit?: string;
  /** Declared by the map (fixed), or reported by the device (may change, with a rebirth). */
  declared: boolean;
}

export interface CatalogDevice {
  name: string;
  points: readonly CommonPoint[];
  /** The type the point's driver declares for it; undefined when the device reports it. */
  declared(point: CommonPoint): ValueType | undefined;
}

/** The datatype of a value nobody typed, by its kind. */
export function typeOfValue(v: Value): DataTypeId | undefined {
  if (typeof v === 'boolean') return DT.Boolean;
  if (typeof v === 'string') return DT.String;
  if (typeof v === 'bigint') return v < 0n ? DT.Int64 : DT.UInt64;
  if (typeof v === 'number') return DT.Double;
  if (Array.isArray(v)) return DT.String;
  return undefined;
}

export class MetricCatalog {
  private readonly byDevice = new Map<string, Map<string, MetricDef>>();
  /** Every metric by its alias (DCMDs name metrics by alias). */
  private readonly aliases = new Map<number, { device: string; def: MetricDef }>();
  private nextAlias = 1;

  /** (Re)builds the catalog for these devices; aliases (and reported types) of metrics seen before are kept. */
  update(devices: readonly CatalogDevice[]): void {
    const seen = new Set<string>();
    for (const d of devices) {
      seen.add(d.name);
      const old = this.byDevice.get(d.name);
      const defs = new Map<string, MetricDef>();
      for (const p of d.points) {
        const declared = d.declared(p);
        const prev = old?.get(p.name);
        defs.set(p.name, {
          name: p.name,
          alias: prev?.alias ?? this.nextAlias++,
          datatype: declared !== undefined ? DT_OF[declared] : (prev?.datatype ?? DT.Double),
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
   * At a birth: a reported metric takes the type its device reported last (`reported`), or the
   * kind of its value when the device reported none. Declared types never change.
   */
  learn(device: string, point: string, v: Value, reported: ValueType | undefined): void {
    const def = this.get(device, point);
    if (!def || def.declared) return;
    const t = reported !== undefined && carries(DT_OF[reported], v) ? DT_OF[reported] : v === null ? undefined : typeOfValue(v);
    if (t !== undefined) def.datatype = t;
  }

  /**
   * Before data: true when a reported metric's datatype cannot carry the value (the type changed;
   * it is set from `reported`, else the value's kind, and the device must be born again before
   * the value is sent). Declared types never change; null fits everything.
   */
  fit(device: string, point: string, v: Value, reported: ValueType | undefined): boolean {
    const def = this.get(device, point);
    if (!def || def.declared || carries(def.datatype, v)) return false;
    const t = reported !== undefined && carries(DT_OF[reported], v) ? DT_OF[reported] : typeOfValue(v);
    if (t === undefined || t === def.datatype) return false;
    def.datatype = t;
    return true;
  }
}
