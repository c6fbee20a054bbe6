// MS/TP timing parameters (ASHRAE 135 Clause 9.5.3), in milliseconds. Bit-time values depend on the
// baud rate; the fixed ones are the standard's, with the latitude it allows noted.

export interface MstpTiming {
  /** Tno_token: silence after which the token is presumed lost. 500 ms. */
  noTokenMs: number;
  /** Tslot: the width of each station's slot for regenerating a lost token. 10 ms. */
  slotMs: number;
  /** Treply_timeout: wait for a station to begin replying to a request. 255 ms. */
  replyTimeoutMs: number;
  /** Treply_delay: the most we may take to begin our own reply before sending Reply Postponed. 250 ms. */
  replyDelayMs: number;
  /** Tusage_timeout: wait for a token or Poll-For-Master receiver to begin using it. ≥ 20 ms, ≤ 100 ms. */
  usageTimeoutMs: number;
  /** Tframe_abort: silence inside a frame after which the partial frame is dropped. ≥ 60 bit times, ≤ 100 ms. */
  frameAbortMs: number;
  /** Tturnaround: silence after the last octet received before we may drive the line. 40 bit times. */
  turnaroundMs: number;
  /** Wire time of one octet (start + 8 data + stop bits). */
  octetMs: number;
}

export const Npoll = 50;
export const NretryToken = 1;
export const NminOctets = 4;

export function mstpTiming(baudRate: number, over: Partial<Pick<MstpTiming, 'usageTimeoutMs' | 'frameAbortMs'>> = {}): MstpTiming {
  const bit = 1000 / baudRate;
  const t: MstpTiming = {
    noTokenMs: 500,
    slotMs: 10,
    replyTimeoutMs: 255,
    replyDelayMs: 250,
    usageTimeoutMs: over.usageTimeoutMs ?? 30,
    // 60 bit times is 1.6 ms at 38400 baud: shorter than the gaps USB adapters and the OS put
    // between chunks of one frame. The standard allows up to 100 ms; 30 ms covers a USB latency
    // timer left at 16 ms with room to spare.
    frameAbortMs: over.frameAbortMs ?? Math.max(30, 60 * bit),
    turnaroundMs: 40 * bit,
    octetMs: 10 * bit,
  };
  if (t.usageTimeoutMs < 20 || t.usageTimeoutMs > 100) throw new RangeError('Tusage_timeout must be 20…100 ms');
  if (t.frameAbortMs < 60 * bit || t.frameAbortMs > 100) throw new RangeError('Tframe_abort must be 60 bit times…100 ms');
  return t;
}
