// MS/TP frames: the CRC worked examples of ASHRAE 135 Annex G, encoding, and the receive state
// machine with garbage, split, corrupted, foreign, oversized and cut-off frames.
import { describe, expect, it } from 'vitest';
import { dataCrc, dataCrcStep, headerCrc, headerCrcStep } from '../../drivers/bacnet-mstp/crc.js';
import { encodeFrame, FrameReceiver, FrameType, type ReceiveEvent } from '../../drivers/bacnet-mstp/frame.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
function receive(rx: FrameReceiver, ...chunks: Buffer[]): ReceiveEvent[] {
  const out: ReceiveEvent[] = [];
  for (const c of chunks) rx.feed(c, (e) => out.push(e));
  return out;
}

describe('CRCs (Annex G worked examples)', () => {
  it('header CRC of a Token frame from 0x05 to 0x10 runs 55 C2 BC 95 73 and sends 8C', () => {
    let crc = 0xff;
    const steps = [0x00, 0x10, 0x05, 0x00, 0x00].map((b) => (crc = headerCrcStep(b, crc)));
    expect(steps).toEqual([0x55, 0xc2, 0xbc, 0x95, 0x73]);
    expect(headerCrc(hex('0010050000'))).toBe(0x8c);
    // The receiver's register over the header and the sent CRC ends at 0x55.
    expect(headerCrcStep(0x8c, crc)).toBe(0x55);
  });

  it('data CRC of 01 22 30 runs 1E0E EB70 42EF, sends BD10 low octet first, residue F0B8', () => {
    let crc = 0xffff;
    const steps = [0x01, 0x22, 0x30].map((b) => (crc = dataCrcStep(b, crc)));
    expect(steps).toEqual([0x1e0e, 0xeb70, 0x42ef]);
    expect(dataCrc(hex('012230'))).toBe(0xbd10);
    crc = dataCrcStep(0x10, crc);
    expect(crc).toBe(0x0f3a);
    expect(dataCrcStep(0xbd, crc)).toBe(0xf0b8);
  });
});

describe('frame encoding', () => {
  it('encodes the Annex G token frame', () => {
    expect(encodeFrame({ type: FrameType.Token, dest: 0x10, source: 0x05 }).toString('hex')).toBe('55ff00100500008c');
  });
  it('encodes a data frame with its data CRC low octet first', () => {
    const f = encodeFrame({ type: FrameType.DataNotExpectingReply, dest: 1, source: 2, data: hex('012230') });
    expect(f.subarray(0, 7).toString('hex')).toBe('55ff0601020003');
    expect(f.subarray(8).toString('hex')).toBe('01223010bd');
  });
  it('refuses data over 501 octets', () => {
    expect(() => encodeFrame({ type: 6, dest: 1, source: 2, data: Buffer.alloc(502) })).toThrow(/501/);
  });
});

describe('receive state machine', () => {
  const data = encodeFrame({ type: FrameType.DataExpectingReply, dest: 7, source: 3, data: hex('0104000c0c') });
  const token = encodeFrame({ type: FrameType.Token, dest: 7, source: 3 });

  it('finds frames behind garbage and repeated preambles, fed an octet at a time', () => {
    const rx = new FrameReceiver(7);
    const stream = Buffer.concat([hex('00 ff 55 12 55 55'), data, hex('aa 55'), token]);
    const events = receive(rx, ...[...stream].map((b) => Buffer.from([b])));
    expect(events).toEqual([
      { kind: 'frame', frame: { type: 5, dest: 7, source: 3, data: hex('0104000c0c') } },
      { kind: 'frame', frame: { type: 0, dest: 7, source: 3, data: Buffer.alloc(0) } },
    ]);
  });

  it('reports a corrupted header and still finds the next frame', () => {
    const bad = Buffer.from(token);
    bad[4]! ^= 0x01; // source octet flipped: header CRC fails
    const events = receive(new FrameReceiver(7), bad, token);
    expect(events.map((e) => e.kind)).toEqual(['invalid', 'frame']);
    expect(events[0]).toEqual({ kind: 'invalid', reason: 'header crc' });
  });

  it('reports corrupted data (and a corrupted data CRC) as invalid', () => {
    const badData = Buffer.from(data);
    badData[9]! ^= 0x40;
    const badCrc = Buffer.from(data);
    badCrc[badCrc.length - 1]! ^= 0x01;
    expect(receive(new FrameReceiver(7), badData, badCrc, token).map((e) => (e.kind === 'invalid' ? e.reason : e.kind))).toEqual([
      'data crc',
      'data crc',
      'frame',
    ]);
  });

  it('skips the data of frames for other stations but reports them as traffic', () => {
    const other = encodeFrame({
      type: FrameType.DataNotExpectingReply,
      dest: 9,
      source: 3,
      data: Buffer.from([0x55, 0xff, 0x00, 0x07, 0x03, 0x00, 0x00, 0x00]),
    });
    const events = receive(new FrameReceiver(7), other, token);
    expect(events.map((e) => e.kind)).toEqual(['not-for-us', 'frame']);
  });

  it('takes broadcasts', () => {
    const bc = encodeFrame({ type: FrameType.DataNotExpectingReply, dest: 255, source: 3, data: hex('0100') });
    expect(receive(new FrameReceiver(7), bc)[0]).toMatchObject({ kind: 'frame', frame: { dest: 255 } });
  });

  it('drops a frame announcing more than 501 data octets', () => {
    const head = hex('55ff 06 07 03 0200');
    const h = Buffer.concat([head, Buffer.from([headerCrc(head.subarray(2))])]);
    const events = receive(new FrameReceiver(7), h, Buffer.alloc(514, 0x11), token);
    expect(events.map((e) => (e.kind === 'invalid' ? e.reason : e.kind))).toEqual(['too long', 'frame']);
  });

  it('aborts a partial frame after silence (Tframe_abort) and resynchronises', () => {
    const rx = new FrameReceiver(7);
    expect(receive(rx, data.subarray(0, 10))).toEqual([]);
    expect(rx.inFrame).toBe(true);
    expect(rx.abort()).toEqual({ kind: 'invalid', reason: 'aborted' });
    expect(receive(rx, token).map((e) => e.kind)).toEqual(['frame']);
  });
});
