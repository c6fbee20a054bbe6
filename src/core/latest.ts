// Each device's latest value per point, for the status page and Sparkplug births. A plant's polls
// replace tens of thousands of values a second, and each lives about one poll interval: held as
// objects (a Sample per point) they outlive the young generation and every one of them becomes
// old-generation garbage. So the common reading — a good number without device or server time —
// is kept in columns (numbers in a Float64Array, the poll's time and channel by slot); anything
// else keeps its reading or sample as it came. A Sample is made only when one is asked for.
import type { CommonPoint } from '../config/schema.js';
import type { Reading } from './driver.js';
import type { Sample } from './sample.js';

/** What the status page and Sparkplug read: a Map<string, Sample> fits it too. */
export interface LatestView {
  readonly size: number;
  get(point: string): Sample | undefined;
  values(): Iterable<Sample>;
}

export class DeviceLatest implements LatestView {
  private readonly slot = new Map<string, number>();
  private names: string[] = [];
  private num = new Float64Array(64);
  private ts = new Float64Array(64);
  private via: string[] = [];
  /** A reading or sample kept as it came (not a plain good number); undefined: the columns hold it. */
  private obj: (Reading | Sample | undefined)[] = [];

  constructor(
    private readonly device: string,
    private readonly points: ReadonlyMap<string, CommonPoint>,
  ) {}

  get size(): number {
    return this.names.length;
  }

  private slotOf(point: string): number {
    let i = this.slot.get(point);
    if (i !== undefined) return i;
    i = this.names.length;
    if (i === this.num.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.num = grow(this.num);
      this.ts = grow(this.ts);
    }
    this.slot.set(point, i);
    this.names.push(point);
    this.via.push('');
    this.obj.push(undefined);
    return i;
  }

  /** One poll's readings, all taken at `ts` through `via`. */
  record(readings: readonly Reading[], ts: number, via: string): void {
    for (let k = 0; k < readings.length; k++) {
      const r = readings[k]!;
      const i = this.slotOf(r.point);
      this.ts[i] = ts;
      this.via[i] = via;
      if (typeof r.value === 'number' && r.quality === 'good' && r.deviceTs === undefined && r.serverTs === undefined && r.type === undefined) {
        this.num[i] = r.value;
        this.obj[i] = undefined;
      } else this.obj[i] = r;
    }
  }

  /** Samples made elsewhere (a subscription's gap, a filtered path). */
  set(s: Sample): void {
    const i = this.slotOf(s.point);
    this.ts[i] = s.ts;
    this.via[i] = s.channel;
    this.obj[i] = s;
  }

  get(point: string): Sample | undefined {
    const i = this.slot.get(point);
    return i === undefined ? undefined : this.sampleAt(i);
  }

  *values(): IterableIterator<Sample> {
    for (let i = 0; i < this.names.length; i++) yield this.sampleAt(i);
  }

  private sampleAt(i: number): Sample {
    const o = this.obj[i];
    if (o && 'device' in o) return o;
    const point = this.names[i]!;
    const p = this.points.get(point);
    const s: Sample = {
      ts: this.ts[i]!,
      device: this.device,
      point,
      value: o ? o.value : this.num[i]!,
      quality: o ? o.quality : 'good',
      channel: this.via[i]!,
    };
    if (p?.unit !== undefined) s.unit = p.unit;
    if (p?.priority !== undefined) s.priority = p.priority;
    if (o) {
      if (o.reason !== undefined) s.reason = o.reason;
      if (o.deviceTs !== undefined) s.deviceTs = o.deviceTs;
      if (o.serverTs !== undefined) s.serverTs = o.serverTs;
      if (o.type !== undefined) s.type = o.type;
    }
    return s;
  }
}
