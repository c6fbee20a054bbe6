// The BACnet layers above MS/TP — NPDU and APDU — for the few services a gateway needs: Who-Is /
// I-Am, ReadProperty and ReadPropertyMultiple, and the Error / Reject / Abort answers. The octet
// encodings come from @bacnet-js/client (a maintained BACnet stack); this file only puts them
// together and turns answers into plain values. Non-segmented, max APDU 480 (MS/TP's limit).
import { BadFrameError } from '../../src/errors.js';
import * as npdu from '@bacnet-js/client/dist/lib/npdu.js';
import * as apdu from '@bacnet-js/client/dist/lib/apdu.js';
import * as services from '@bacnet-js/client/dist/lib/services/index.js';
import {
  AbortReason,
  ApplicationTag,
  ASN1_ARRAY_ALL,
  ConfirmedServiceChoice,
  ErrorClass,
  ErrorCode,
  MaxApduLengthAccepted,
  MaxSegmentsAccepted,
  NpduControlBit,
  NpduControlPriority,
  ObjectType,
  PduType,
  PropertyIdentifier,
  RejectReason,
  UnconfirmedServiceChoice,
} from '@bacnet-js/client';

/** The shapes of @bacnet-js/client's decoded ReadPropertyMultiple (its typings leave them loose). */
interface RpmAckObject {
  objectId: ObjectId;
  values: { id: number; index?: number; value?: { type: number; value: unknown }[] }[];
}
interface RpmRequestSpec {
  objectId: ObjectId;
  properties: { id: number; index?: number }[];
}
export const MAX_APDU = 480;
export const ARRAY_ALL = ASN1_ARRAY_ALL;
export { ObjectType, PropertyIdentifier, ApplicationTag };

export interface ObjectId {
  type: number;
  instance: number;
}
export interface PropertyRef {
  id: number;
  index?: number;
}
/** A decoded application value as the library gives it. */
export interface AppValue {
  type: number;
  value: unknown;
}

const buffer = () => ({ buffer: Buffer.alloc(MAX_APDU + 24), offset: 0 });
const done = (b: { buffer: Buffer; offset: number }) => Buffer.from(b.buffer.subarray(0, b.offset));
const HOPS = 255;

function header(expectingReply: boolean) {
  const b = buffer();
  npdu.encode(b, NpduControlPriority.NORMAL_MESSAGE | (expectingReply ? NpduControlBit.EXPECTING_REPLY : 0), undefined, undefined, HOPS, 0, 0);
  return b;
}

function confirmed(service: number, invokeId: number) {
  const b = header(true);
  apdu.encodeConfirmedServiceRequest(b, PduType.CONFIRMED_REQUEST, service, MaxSegmentsAccepted.SEGMENTS_0, MaxApduLengthAccepted.OCTETS_480, invokeId, 0, 0);
  return b;
}

export function encodeReadProperty(invokeId: number, object: ObjectId, prop: PropertyRef): Buffer {
  const b = confirmed(ConfirmedServiceChoice.READ_PROPERTY, invokeId);
  services.ReadProperty.encode(b, object.type, object.instance, prop.id, prop.index ?? ASN1_ARRAY_ALL);
  return done(b);
}

export function encodeReadPropertyMultiple(invokeId: number, specs: { object: ObjectId; props: PropertyRef[] }[]): Buffer {
  const b = confirmed(ConfirmedServiceChoice.READ_PROPERTY_MULTIPLE, invokeId);
  services.ReadPropertyMultiple.encode(
    b,
    specs.map((s) => ({ objectId: s.object, properties: s.props.map((p) => ({ id: p.id, index: p.index ?? ASN1_ARRAY_ALL })) })),
  );
  return done(b);
}

/** WriteProperty of one value at a command priority (1–16). */
export function encodeWriteProperty(invokeId: number, object: ObjectId, prop: PropertyRef, values: AppValue[], priority: number): Buffer {
  const b = confirmed(ConfirmedServiceChoice.WRITE_PROPERTY, invokeId);
  services.WriteProperty.encode(b, object.type, object.instance, prop.id, prop.index ?? ASN1_ARRAY_ALL, priority, values as never);
  return done(b);
}

export function encodeSimpleAck(invokeId: number, service: number): Buffer {
  const b = header(false);
  apdu.encodeSimpleAck(b, PduType.SIMPLE_ACK, service, invokeId);
  return done(b);
}

export function encodeWhoIs(low?: number, high?: number): Buffer {
  const b = header(false);
  apdu.encodeUnconfirmedServiceRequest(b, PduType.UNCONFIRMED_REQUEST, UnconfirmedServiceChoice.WHO_IS);
  services.WhoIs.encode(b, low ?? -1, high ?? -1);
  return done(b);
}

export function encodeIAm(deviceInstance: number, vendorId: number): Buffer {
  const b = header(false);
  apdu.encodeUnconfirmedServiceRequest(b, PduType.UNCONFIRMED_REQUEST, UnconfirmedServiceChoice.I_AM);
  services.IAm.encode(b, deviceInstance, MAX_APDU, 3 /* no segmentation */, vendorId);
  return done(b);
}

// ── answers (server side, for the simulator) ─────────────────────────────────────────────────────

export function encodeReadPropertyAck(invokeId: number, object: ObjectId, prop: PropertyRef, values: AppValue[]): Buffer {
  const b = header(false);
  apdu.encodeComplexAck(b, PduType.COMPLEX_ACK, ConfirmedServiceChoice.READ_PROPERTY, invokeId);
  services.ReadProperty.encodeAcknowledge(b, object, prop.id, prop.index ?? ASN1_ARRAY_ALL, values);
  return done(b);
}

export type RpmResult = { object: ObjectId; values: { prop: PropertyRef; value: AppValue[] | { errorClass: number; errorCode: number } }[] };

export function encodeReadPropertyMultipleAck(invokeId: number, results: RpmResult[]): Buffer {
  const b = header(false);
  apdu.encodeComplexAck(b, PduType.COMPLEX_ACK, ConfirmedServiceChoice.READ_PROPERTY_MULTIPLE, invokeId);
  services.ReadPropertyMultiple.encodeAcknowledge(
    b,
    results.map((r) => ({
      objectId: r.object,
      values: r.values.map((v) => ({
        property: { id: v.prop.id, index: v.prop.index ?? ASN1_ARRAY_ALL },
        value: Array.isArray(v.value) ? v.value : [{ type: 0, value: { type: 'BacnetError', ...v.value } }],
      })),
    })),
  );
  return done(b);
}

export function encodeError(invokeId: number, service: number, errorClass: number, errorCode: number): Buffer {
  const b = header(false);
  apdu.encodeError(b, PduType.ERROR, service, invokeId);
  services.ErrorService.encode(b, errorClass, errorCode);
  return done(b);
}

export function encodeReject(invokeId: number, reason: number): Buffer {
  const b = header(false);
  apdu.encodeAbort(b, PduType.REJECT, invokeId, reason);
  return done(b);
}

export function encodeAbort(invokeId: number, reason: number): Buffer {
  const b = header(false);
  apdu.encodeAbort(b, PduType.ABORT | 1 /* server */, invokeId, reason);
  return done(b);
}

// ── decoding ─────────────────────────────────────────────────────────────────────────────────────

export type Decoded =
  | { kind: 'rp-ack'; invokeId: number; object: ObjectId; prop: PropertyRef; values: AppValue[] }
  | { kind: 'rpm-ack'; invokeId: number; results: RpmResult[] }
  | { kind: 'simple-ack'; invokeId: number; service: number }
  | { kind: 'wp'; invokeId: number; object: ObjectId; prop: PropertyRef; values: AppValue[]; priority: number }
  | { kind: 'error'; invokeId: number; reason: string }
  | { kind: 'reject'; invokeId: number; reason: string }
  | { kind: 'abort'; invokeId: number; reason: string }
  | { kind: 'i-am'; deviceInstance: number; vendorId: number }
  | { kind: 'who-is'; low?: number; high?: number }
  | { kind: 'rp'; invokeId: number; object: ObjectId; prop: PropertyRef }
  | { kind: 'rpm'; invokeId: number; specs: { object: ObjectId; props: PropertyRef[] }[] }
  | { kind: 'confirmed'; invokeId: number; service: number }
  | { kind: 'other'; what: string };

const kebab = (s: string | undefined) => (s ?? '').toLowerCase().replace(/_/g, '-');
export const errorText = (errorClass: number, errorCode: number) =>
  `${kebab(ErrorClass[errorClass]) || errorClass}/${kebab(ErrorCode[errorCode]) || errorCode}`;

const indexOf = (i: number | undefined) => (i === undefined || i === ASN1_ARRAY_ALL ? undefined : i);

/** Decodes one NPDU. Throws on octets that are not a well-formed BACnet message. */
export function decode(msg: Buffer): Decoded {
  const n = npdu.decode(msg, 0);
  if (!n) throw new BadFrameError('not a BACnet NPDU');
  if (n.funct & 0x80) return { kind: 'other', what: 'network layer message' };
  let off = n.len;
  const type = apdu.getDecodedType(msg, off) & 0xf0;
  switch (type) {
    case PduType.COMPLEX_ACK: {
      const h = apdu.decodeComplexAck(msg, off);
      if (h.type & 0x08) return { kind: 'abort', invokeId: h.invokeId, reason: 'segmented answer (not supported)' };
      off += h.len;
      if (h.service === ConfirmedServiceChoice.READ_PROPERTY) {
        const r = services.ReadProperty.decodeAcknowledge(msg, off, msg.length - off);
        if (!r) throw new BadFrameError('undecodable ReadProperty answer');
        return { kind: 'rp-ack', invokeId: h.invokeId, object: r.objectId, prop: { id: r.property.id, index: indexOf(r.property.index) }, values: r.values };
      }
      if (h.service === ConfirmedServiceChoice.READ_PROPERTY_MULTIPLE) {
        const r = services.ReadPropertyMultiple.decodeAcknowledge(msg, off, msg.length - off);
        if (!r) throw new BadFrameError('undecodable ReadPropertyMultiple answer');
        return {
          kind: 'rpm-ack',
          invokeId: h.invokeId,
          results: (r.values as RpmAckObject[]).map((o) => ({
            object: o.objectId,
            values: o.values.map((v) => ({
              prop: { id: v.id, index: indexOf(v.index) },
              value: v.value?.[0]?.type === ApplicationTag.ERROR ? (v.value[0].value as { errorClass: number; errorCode: number }) : (v.value as AppValue[]),
            })),
          })),
        };
      }
      return { kind: 'other', what: `complex ack of service ${h.service}` };
    }
    case PduType.SIMPLE_ACK: {
      const h = apdu.decodeSimpleAck(msg, off);
      return { kind: 'simple-ack', invokeId: h.invokeId, service: h.service };
    }
    case PduType.ERROR: {
      const h = apdu.decodeError(msg, off);
      const e = services.ErrorService.decode(msg, off + h.len);
      return { kind: 'error', invokeId: h.invokeId, reason: e ? errorText(e.class, e.code) : 'undecodable error' };
    }
    case PduType.REJECT: {
      const h = apdu.decodeAbort(msg, off);
      return { kind: 'reject', invokeId: h.invokeId, reason: kebab(RejectReason[h.reason]) || String(h.reason) };
    }
    case PduType.ABORT: {
      const h = apdu.decodeAbort(msg, off);
      return { kind: 'abort', invokeId: h.invokeId, reason: kebab(AbortReason[h.reason]) || String(h.reason) };
    }
    case PduType.UNCONFIRMED_REQUEST: {
      const h = apdu.decodeUnconfirmedServiceRequest(msg, off);
      off += h.len;
      if (h.service === UnconfirmedServiceChoice.I_AM) {
        const r = services.IAm.decode(msg, off);
        return { kind: 'i-am', deviceInstance: r.deviceId, vendorId: r.vendorId };
      }
      if (h.service === UnconfirmedServiceChoice.WHO_IS) {
        const r = services.WhoIs.decode(msg, off, msg.length - off);
        return { kind: 'who-is', low: r?.lowLimit, high: r?.highLimit };
      }
      return { kind: 'other', what: `unconfirmed service ${h.service}` };
    }
    case PduType.CONFIRMED_REQUEST: {
      const h = apdu.decodeConfirmedServiceRequest(msg, off);
      off += h.len;
      if (h.service === ConfirmedServiceChoice.READ_PROPERTY) {
        const r = services.ReadProperty.decode(msg, off, msg.length - off);
        if (!r) return { kind: 'confirmed', invokeId: h.invokeId, service: h.service };
        return { kind: 'rp', invokeId: h.invokeId, object: r.objectId, prop: { id: r.property.id, index: indexOf(r.property.index) } };
      }
      if (h.service === ConfirmedServiceChoice.READ_PROPERTY_MULTIPLE) {
        const r = services.ReadPropertyMultiple.decode(msg, off, msg.length - off);
        if (!r) return { kind: 'confirmed', invokeId: h.invokeId, service: h.service };
        return {
          kind: 'rpm',
          invokeId: h.invokeId,
          specs: (r.properties as RpmRequestSpec[]).map((s) => ({
            object: s.objectId,
            props: s.properties.map((p) => ({ id: p.id, index: indexOf(p.index) })),
          })),
        };
      }
      if (h.service === ConfirmedServiceChoice.WRITE_PROPERTY) {
        const r = services.WriteProperty.decode(msg, off, msg.length - off);
        if (!r) return { kind: 'confirmed', invokeId: h.invokeId, service: h.service };
        const prop = { id: r.value.property.id, index: indexOf(r.value.property.index) };
        return { kind: 'wp', invokeId: h.invokeId, object: r.objectId, prop, values: r.value.value, priority: r.value.priority };
      }
      return { kind: 'confirmed', invokeId: h.invokeId, service: h.service };
    }
    default:
      return { kind: 'other', what: `PDU type ${type >> 4}` };
  }
}
