// MS/TP frames (ASHRAE 135 Clause 9.3) and the receive state machine (Clause 9.5.4) as a pure
// octet-driven parser: it never reads a clock itself. The node feeds it octets and tells it when the
// line has been silent longer than Tframe_abort inside a frame.
//
//   55 FF | type | dest | src | len hi | len lo | header CRC | data (len) | data CRC lo | hi
import { DATA_CRC_RESIDUE, HEADER_CRC_RESIDUE, dataCrc, dataCrcStep, headerCrc, headerCrcStep } from './crc.js';

export const FrameType = {
  Token: 0,
  PollForMaster: 1,
  ReplyToPollForMaster: 2,
  TestRequest: 3,
  TestResponse: 4,
  DataExpectingReply: 5,
  DataNotExpectingReply: 6,
  ReplyPostponed: 7,
} as const;
export type FrameTypeName = keyof typeof FrameType;

export const BROADCAST = 255;
/** Largest data field of a frame types 0–7 frame (an NPDU of 501 octets). */
export const MAX_DATA = 501;

export interface Frame {
  type: number;
  dest: number;
  source: number;
  data: Buffer;
}

export function encodeFrame(f: { type: number; dest: number; source: number; data?: Uint8Array }): Buffer {
  const data = f.data ?? new Uint8Array(0);
  if (data.length > MAX_DATA) throw new RangeError(`MS/TP data of ${data.length} octets is over the ${MAX_DATA}-octet limit`);
  const out = Buffer.alloc(8 + data.length + (data.length ? 2 : 0));
  out[0] = 0x55;
  out[1] = 0xff;
  out[2] = f.type;
  out[3] = f.dest;
  out[4] = f.source;
  out.writeUInt16BE(data.length, 5);
  out[7] = headerCrc(out.subarray(2, 7));
  if (data.length) {
    out.set(data, 8);
    out.writeUInt16LE(dataCrc(data), 8 + data.length);
  }
  return out;
}

export type ReceiveEvent =
  | { kind: 'frame'; frame: Frame }
  /** Dest is neither us nor broadcast; the node still counts it as traffic (a token user). */
  | { kind: 'not-for-us'; frame: Omit<Frame, 'data'> & { length: number } }
  | { kind: 'invalid'; reason: 'header crc' | 'data crc' | 'too long' | 'aborted' };

type State = 'idle' | 'preamble' | 'header' | 'data' | 'skip';

/**
 * Clause 9.5.4. `ownAddress` decides which frames are ours; a frame to another station is skipped
 * over (its data is not kept) but still reported, since its octets are traffic. Everything that is
 * not a preamble between frames is eaten silently; a bad header CRC drops back to looking for a
 * preamble at the octet after it, so a frame hidden behind garbage is still found.
 */
export class FrameReceiver {
  private state: State = 'idle';
  private header = Buffer.alloc(6);
  private index = 0;
  private crc8 = 0xff;
  private crc16 = 0xffff;
  private length = 0;
  private data = Buffer.alloc(MAX_DATA + 2);
  private forUs = false;

  constructor(
    public ownAddress: number,
    private readonly promiscuous = false,
  ) {}

  /** True while a frame is partly received (so the silence timer means Tframe_abort). */
  get inFrame(): boolean {
    return this.state === 'header' || this.state === 'data' || this.state === 'skip';
  }

  /** True from a frame's first preamble octet until it ends (when its octets began to arrive matters). */
  get started(): boolean {
    return this.state !== 'idle';
  }

  /** The line was silent for Tframe_abort: drop a partial frame. */
  abort(): ReceiveEvent | undefined {
    const was = this.state;
    this.state = 'idle';
    if (was === 'header' || was === 'data' || was === 'skip') return { kind: 'invalid', reason: 'aborted' };
    return undefined;
  }

  feed(chunk: Uint8Array, out: (e: ReceiveEvent) => void): void {
    for (const b of chunk) this.octet(b, out);
  }

  private octet(b: number, out: (e: ReceiveEvent) => void): void {
    switch (this.state) {
      case 'idle':
        if (b === 0x55) this.state = 'preamble';
        return;
      case 'preamble':
        if (b === 0xff) {
          this.state = 'header';
          this.index = 0;
          this.crc8 = 0xff;
        } else if (b !== 0x55) this.state = 'idle';
        return;
      case 'header': {
        this.crc8 = headerCrcStep(b, this.crc8);
        this.header[this.index++] = b;
        if (this.index < 6) return;
        if (this.crc8 !== HEADER_CRC_RESIDUE) {
          this.state = 'idle';
          out({ kind: 'invalid', reason: 'header crc' });
          return;
        }
        const [type, dest, source] = [this.header[0]!, this.header[1]!, this.header[2]!];
        this.length = this.header.readUInt16BE(3);
        this.forUs = this.promiscuous || dest === this.ownAddress || dest === BROADCAST;
        this.index = 0;
        this.crc16 = 0xffff;
        if (!this.forUs) {
          out({ kind: 'not-for-us', frame: { type, dest, source, length: this.length } });
          this.state = this.length ? 'skip' : 'idle';
          return;
        }
        if (this.length === 0) {
          this.state = 'idle';
          out({ kind: 'frame', frame: { type, dest, source, data: Buffer.alloc(0) } });
          return;
        }
        if (this.length > MAX_DATA) {
          out({ kind: 'invalid', reason: 'too long' });
          this.state = 'skip';
          return;
        }
        this.state = 'data';
        return;
      }
      case 'data':
        this.crc16 = dataCrcStep(b, this.crc16);
        this.data[this.index++] = b;
        if (this.index < this.length + 2) return;
        this.state = 'idle';
        if (this.crc16 !== DATA_CRC_RESIDUE) {
          out({ kind: 'invalid', reason: 'data crc' });
          return;
        }
        out({
          kind: 'frame',
          frame: { type: this.header[0]!, dest: this.header[1]!, source: this.header[2]!, data: Buffer.from(this.data.subarray(0, this.length)) },
        });
        return;
      case 'skip':
        // Data (and its CRC) of a frame that is not ours, or too long to keep.
        if (++this.index >= this.length + 2) this.state = 'idle';
        return;
    }
  }
}
