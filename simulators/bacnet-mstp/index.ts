// A BACnet MS/TP device on a serial port, for tests, the demo and benchmarks: a master (or slave)
// node running edgeferry's Clause 9 data link, with a device object and analog, binary and
// multi-state objects whose present values move with time. It answers Who-Is, ReadProperty and
// ReadPropertyMultiple; faults: answer late (Reply Postponed), refuse ReadPropertyMultiple.
import {
  decode,
  encodeError,
  encodeIAm,
  encodeReadPropertyAck,
  encodeReadPropertyMultipleAck,
  encodeReject,
  encodeSimpleAck,
  ApplicationTag,
  ObjectType,
  PropertyIdentifier,
  type AppValue,
  type Decoded,
  type ObjectId,
  type RpmResult,
} from '../../drivers/bacnet-mstp/bacnet.js';
import { BROADCAST } from '../../drivers/bacnet-mstp/frame.js';
import { MstpNode } from '../../drivers/bacnet-mstp/node.js';
import { parseObject } from '../../drivers/bacnet-mstp/objects.js';
import { openMstpSerial, type MstpSerial } from '../../drivers/bacnet-mstp/port.js';

/** Present value as a function of seconds since start. */
export type Generator = (t: number) => number | boolean;

export interface SimObject {
  /** e.g. analog-input:1 */
  object: string;
  name: string;
  value: Generator;
  units?: number;
}

export interface MstpDeviceOptions {
  path: string;
  baudRate?: number;
  mac: number;
  role?: 'master' | 'slave';
  maxMaster?: number;
  maxInfoFrames?: number;
  /** Tusage_timeout of this node (20–100 ms; default 30). */
  usageTimeoutMs?: number;
  deviceInstance: number;
  objects?: SimObject[];
  /** Answer confirmed requests after this many ms (over Treply_delay: Reply Postponed, then the answer). */
  answerDelayMs?: number;
  /** Reject ReadPropertyMultiple as an unrecognized service (an old device). */
  noReadMultiple?: boolean;
}

export const DEFAULT_OBJECTS: SimObject[] = [
  { object: 'analog-input:1', name: 'SupplyTemp', units: 62 /* degrees-celsius */, value: (t) => Math.round((21 + 2 * Math.sin(t / 10)) * 100) / 100 },
  { object: 'analog-input:2', name: 'FlowRate', units: 90, value: (t) => Math.round(((t * 3) % 100) * 10) / 10 },
  { object: 'analog-value:1', name: 'Setpoint', units: 62, value: () => 22.5 },
  { object: 'binary-input:1', name: 'PumpRunning', value: (t) => Math.floor(t / 5) % 2 === 0 },
  { object: 'binary-output:1', name: 'Valve', value: () => true },
  { object: 'multi-state-value:1', name: 'Mode', value: (t) => 1 + (Math.floor(t / 4) % 3) },
];

export interface MstpDevice {
  readonly node: MstpNode;
  /** Who-Is, RP, RPM served. */
  readonly served: { whoIs: number; rp: number; rpm: number; wp: number };
  stop(): Promise<void>;
}

const OBJECT = 1; // error class object
const PROPERTY = 2; // error class property
const UNKNOWN_OBJECT = 31;
const UNKNOWN_PROPERTY = 32;
const WRITE_ACCESS_DENIED = 40;
const WRITE_PROPERTY = 15; // confirmed service choice

export async function startMstpDevice(o: MstpDeviceOptions): Promise<MstpDevice> {
  const baudRate = o.baudRate ?? 38400;
  const t0 = performance.now();
  const role = o.role ?? 'master';
  const objects = new Map<string, SimObject & { id: ObjectId }>();
  for (const s of o.objects ?? DEFAULT_OBJECTS) {
    const id = parseObject(s.object);
    objects.set(`${id.type}:${id.instance}`, { ...s, id });
  }
  const device: ObjectId = { type: ObjectType.DEVICE, instance: o.deviceInstance };
  const served = { whoIs: 0, rp: 0, rpm: 0, wp: 0 };
  /** Each commandable object's priority array (16 slots, null = relinquished); the highest command wins over its generator. */
  const commands = new Map<string, (number | boolean | null)[]>();
  let serial: MstpSerial | undefined;
  const node = new MstpNode(
    { address: o.mac, role, maxMaster: o.maxMaster, maxInfoFrames: o.maxInfoFrames, baudRate, usageTimeoutMs: o.usageTimeoutMs },
    { write: (f) => serial?.write(f) },
  );

  const property = (obj: ObjectId, prop: number): AppValue[] | { errorClass: number; errorCode: number } => {
    if (obj.type === ObjectType.DEVICE) {
      if (obj.instance !== o.deviceInstance && obj.instance !== 4_194_303) return { errorClass: OBJECT, errorCode: UNKNOWN_OBJECT };
      switch (prop) {
        case PropertyIdentifier.OBJECT_NAME:
          return [{ type: ApplicationTag.CHARACTER_STRING, value: `edgeferry-sim-${o.deviceInstance}` }];
        case PropertyIdentifier.SYSTEM_STATUS:
          return [{ type: ApplicationTag.ENUMERATED, value: 0 /* operational */ }];
        case PropertyIdentifier.OBJECT_IDENTIFIER:
          return [{ type: ApplicationTag.OBJECTIDENTIFIER, value: device }];
        case PropertyIdentifier.VENDOR_IDENTIFIER:
          return [{ type: ApplicationTag.UNSIGNED_INTEGER, value: 999 }];
        case PropertyIdentifier.MAX_MASTER:
          return [{ type: ApplicationTag.UNSIGNED_INTEGER, value: o.maxMaster ?? 127 }];
        default:
          return { errorClass: PROPERTY, errorCode: UNKNOWN_PROPERTY };
      }
    }
    const s = objects.get(`${obj.type}:${obj.instance}`);
    if (!s) return { errorClass: OBJECT, errorCode: UNKNOWN_OBJECT };
    const t = (performance.now() - t0) / 1000;
    const analog = obj.type === ObjectType.ANALOG_INPUT || obj.type === ObjectType.ANALOG_OUTPUT || obj.type === ObjectType.ANALOG_VALUE;
    const binary = obj.type === ObjectType.BINARY_INPUT || obj.type === ObjectType.BINARY_OUTPUT || obj.type === ObjectType.BINARY_VALUE;
    switch (prop) {
      case PropertyIdentifier.PRESENT_VALUE: {
        const commanded = commands.get(`${obj.type}:${obj.instance}`)?.find((x) => x !== null);
        const v = commanded ?? s.value(t);
        if (analog) return [{ type: ApplicationTag.REAL, value: Number(v) }];
        if (binary) return [{ type: ApplicationTag.ENUMERATED, value: v ? 1 : 0 }];
        return [{ type: ApplicationTag.UNSIGNED_INTEGER, value: Number(v) }];
      }
      case PropertyIdentifier.STATUS_FLAGS:
        return [{ type: ApplicationTag.BIT_STRING, value: { bitsUsed: 4, value: [0] } }];
      case PropertyIdentifier.OBJECT_NAME:
        return [{ type: ApplicationTag.CHARACTER_STRING, value: s.name }];
      case PropertyIdentifier.OUT_OF_SERVICE:
        return [{ type: ApplicationTag.BOOLEAN, value: false }];
      case PropertyIdentifier.UNITS:
        if (analog) return [{ type: ApplicationTag.ENUMERATED, value: s.units ?? 95 }];
        return { errorClass: PROPERTY, errorCode: UNKNOWN_PROPERTY };
      default:
        return { errorClass: PROPERTY, errorCode: UNKNOWN_PROPERTY };
    }
  };

  const answer = (d: Decoded): Buffer | undefined => {
    switch (d.kind) {
      case 'rp': {
        served.rp++;
        const v = property(d.object, d.prop.id);
        return Array.isArray(v) ? encodeReadPropertyAck(d.invokeId, d.object, d.prop, v) : encodeError(d.invokeId, 12, v.errorClass, v.errorCode);
      }
      case 'rpm': {
        if (o.noReadMultiple) return encodeReject(d.invokeId, 9);
        served.rpm++;
        const results: RpmResult[] = d.specs.map((s) => ({ object: s.object, values: s.props.map((p) => ({ prop: p, value: property(s.object, p.id) })) }));
        return encodeReadPropertyMultipleAck(d.invokeId, results);
      }
      case 'wp': {
        served.wp++;
        const k = `${d.object.type}:${d.object.instance}`;
        const s = objects.get(k);
        if (!s) return encodeError(d.invokeId, WRITE_PROPERTY, OBJECT, UNKNOWN_OBJECT);
        if (d.prop.id !== PropertyIdentifier.PRESENT_VALUE || /-input:/.test(s.object))
          return encodeError(d.invokeId, WRITE_PROPERTY, PROPERTY, WRITE_ACCESS_DENIED);
        const slots = commands.get(k) ?? new Array<number | boolean | null>(16).fill(null);
        commands.set(k, slots);
        const v = d.values[0];
        const binary = /^binary-/.test(s.object);
        slots[(d.priority || 16) - 1] = !v || v.type === ApplicationTag.NULL ? null : binary ? v.value === 1 : Number(v.value);
        return encodeSimpleAck(d.invokeId, WRITE_PROPERTY);
      }
      case 'confirmed':
        return encodeReject(d.invokeId, 9 /* unrecognized-service */);
      default:
        return undefined;
    }
  };

  node.onData = (_source, npdu, reply) => {
    let d: Decoded;
    try {
      d = decode(npdu);
    } catch {
      return;
    }
    if (d.kind === 'who-is' && !reply) {
      const inRange = d.low === undefined || d.high === undefined || (o.deviceInstance >= d.low && o.deviceInstance <= d.high);
      if (inRange && role === 'master') {
        served.whoIs++;
        node.send(BROADCAST, encodeIAm(o.deviceInstance, 999), false);
      }
      return;
    }
    if (!reply) return;
    const a = answer(d);
    if (!a) return;
    if (o.answerDelayMs) setTimeout(() => reply(a), o.answerDelayMs);
    else reply(a);
  };
  serial = await openMstpSerial(
    o.path,
    baudRate,
    (chunk) => node.receive(chunk),
    () => node.stop(),
  );
  node.start();
  return {
    node,
    served,
    async stop() {
      node.stop();
      await serial?.close();
      serial = undefined;
    },
  };
}
