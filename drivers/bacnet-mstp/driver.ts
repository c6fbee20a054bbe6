// BACnet MS/TP reads for one device: points grouped into ReadPropertyMultiple requests that fit
// an unsegmented APDU (or one ReadProperty each); Error, Reject and Abort answers become bad
// readings with the reason, never exceptions.
import type { Driver, DriverContext, DeviceConfig, Reading, Value, WriteCheck, WriteOutcome } from '../../src/core/driver.js';
import {
  encodeReadProperty,
  encodeReadPropertyMultiple,
  encodeWriteProperty,
  errorText,
  ObjectType,
  PropertyIdentifier,
  type AppValue,
  type ObjectId,
  type PropertyRef,
} from './bacnet.js';
import type { MstpLink } from './link.js';
import { parseObject, propertyId, toValue, typeOf, writeValue } from './objects.js';
import type { MstpConnectionConfig, MstpPointConfig } from './schema.js';

interface Item {
  point: string;
  object: ObjectId;
  prop: PropertyRef;
}
export interface MstpPlan {
  batches: Item[][];
  items: Item[];
}

/** Why an answer is not the one asked for: its Error/Reject/Abort reason, or that it is another kind. */
const answerReason = (a: { kind: string; reason?: string }) => (a.reason !== undefined ? `bacnet ${a.kind}: ${a.reason}` : `unexpected ${a.kind} answer`);

const key = (o: ObjectId, p: PropertyRef) => `${o.type}:${o.instance}/${p.id}/${p.index ?? ''}`;

export class MstpDriver implements Driver<MstpPointConfig, MstpPlan, MstpLink> {
  private readonly c: MstpConnectionConfig;
  private instance: number | undefined;
  private rpmRefused = false;

  constructor(
    private readonly device: DeviceConfig<MstpConnectionConfig, MstpPointConfig>,
    private readonly ctx: DriverContext,
  ) {
    this.c = device.connection;
    this.instance = this.c.device_instance;
  }

  plan(points: MstpPointConfig[]): MstpPlan {
    const items = points.map((p) => ({ point: p.name, object: parseObject(p.object), prop: { id: propertyId(p.property)!, index: p.array_index } }));
    const batches: Item[][] = [];
    for (let i = 0; i < items.length; i += this.c.max_properties_per_request) batches.push(items.slice(i, i + this.c.max_properties_per_request));
    return { batches, items };
  }

  async read(p: MstpPlan, l: MstpLink, signal: AbortSignal): Promise<Reading[]> {
    const out = new Map<string, Reading>();
    for (const batch of p.batches) {
      if (this.c.read_multiple && !this.rpmRefused && batch.length > 1) {
        const done = await this.readMultiple(l, batch, out, signal);
        if (done) continue;
      }
      for (const item of batch) out.set(item.point, await this.readOne(l, item, signal));
    }
    return p.items.map((i) => out.get(i.point)!);
  }

  /** False when the device refused the service (then every point is read with ReadProperty). */
  private async readMultiple(l: MstpLink, batch: Item[], out: Map<string, Reading>, signal: AbortSignal): Promise<boolean> {
    const specs: { object: ObjectId; props: PropertyRef[] }[] = [];
    for (const it of batch) {
      const last = specs[specs.length - 1];
      if (last && last.object.type === it.object.type && last.object.instance === it.object.instance) last.props.push(it.prop);
      else specs.push({ object: it.object, props: [it.prop] });
    }
    const a = await l.request(this.c.mac, (id) => encodeReadPropertyMultiple(id, specs), this.c.timeout_ms, signal);
    if (a.kind === 'reject' && a.reason === 'unrecognized-service') {
      this.rpmRefused = true;
      this.ctx.log.info({ mac: this.c.mac }, 'device does not support ReadPropertyMultiple; reading one property per request');
      return false;
    }
    if (a.kind !== 'rpm-ack') {
      const reason = answerReason(a);
      for (const it of batch) out.set(it.point, { point: it.point, value: null, quality: 'bad', reason });
      return true;
    }
    const got = new Map<string, AppValue[] | { errorClass: number; errorCode: number }>();
    for (const r of a.results) for (const v of r.values) got.set(key(r.object, v.prop), v.value);
    for (const it of batch) {
      const v = got.get(key(it.object, it.prop));
      if (v === undefined) out.set(it.point, { point: it.point, value: null, quality: 'bad', reason: 'property missing from the ReadPropertyMultiple answer' });
      else if (!Array.isArray(v))
        out.set(it.point, { point: it.point, value: null, quality: 'bad', reason: `bacnet error: ${errorText(v.errorClass, v.errorCode)}` });
      else out.set(it.point, this.good(it, v));
    }
    return true;
  }

  private async readOne(l: MstpLink, it: Item, signal: AbortSignal): Promise<Reading> {
    const a = await l.request(this.c.mac, (id) => encodeReadProperty(id, it.object, it.prop), this.c.timeout_ms, signal);
    if (a.kind === 'rp-ack') return this.good(it, a.values);
    const reason = answerReason(a);
    return { point: it.point, value: null, quality: 'bad', reason };
  }

  private good(it: Item, values: AppValue[]): Reading {
    const r: Reading = { point: it.point, value: toValue(values, it.object, it.prop.id), quality: 'good' };
    const type = typeOf(values, it.object, it.prop.id);
    if (type) r.type = type;
    return r;
  }

  checkWrite(point: MstpPointConfig, value: unknown): WriteCheck {
    const v = writeValue(parseObject(point.object), value);
    return v.ok ? { ok: true, value: value as Value } : v;
  }

  /** WriteProperty at the point's write_priority (16, the lowest, by default); null relinquishes it. */
  async write(point: MstpPointConfig, value: Value, l: MstpLink, signal: AbortSignal): Promise<WriteOutcome> {
    const object = parseObject(point.object);
    const v = writeValue(object, value);
    if (!v.ok) return { ok: false, refused: true, reason: v.reason };
    const prop = { id: propertyId(point.property)!, index: point.array_index };
    const a = await l.request(this.c.mac, (id) => encodeWriteProperty(id, object, prop, [v.value], point.write_priority ?? 16), this.c.timeout_ms, signal);
    if (a.kind === 'simple-ack') return { ok: true };
    if (a.kind === 'error') return { ok: false, code: a.reason, reason: `bacnet error: ${a.reason}` };
    return { ok: false, reason: answerReason(a) };
  }

  /**
   * Any answer proves the device is there. Without a configured device instance, Who-Is to its
   * MAC learns it first; with one, an I-Am that disagrees is reported (the map is wrong).
   */
  async probe(l: MstpLink, signal: AbortSignal): Promise<void> {
    if (this.instance === undefined) {
      this.instance = await l.whoIs(this.c.mac, this.c.timeout_ms, signal);
      this.ctx.log.info({ mac: this.c.mac, device_instance: this.instance }, 'device found by Who-Is');
    }
    const a = await l.request(
      this.c.mac,
      (id) => encodeReadProperty(id, { type: ObjectType.DEVICE, instance: this.instance! }, { id: PropertyIdentifier.OBJECT_NAME }),
      this.c.timeout_ms,
      signal,
    );
    if (a.kind === 'error' && /unknown-object/.test(a.reason)) {
      this.ctx.log.error(
        { mac: this.c.mac, device_instance: this.instance },
        `the device at MAC ${this.c.mac} has no device object ${this.instance}: check device_instance in the map`,
      );
    }
  }
}
