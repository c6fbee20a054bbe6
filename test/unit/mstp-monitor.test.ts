// The line monitor the MS/TP tests rely on must catch out-of-turn frames, or its "no violations"
// proves nothing.
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameType } from '../../drivers/bacnet-mstp/frame.js';
import { MstpMonitor } from '../../simulators/bacnet-mstp/monitor.js';

const f = (type: number, source: number, dest: number, data?: Buffer) => encodeFrame({ type, source, dest, data });

describe('MS/TP monitor', () => {
  it('accepts a token ring with a request, its answer, and a retried token', () => {
    const m = new MstpMonitor({ usageTimeoutMs: 20 });
    m.feed(f(FrameType.Token, 1, 5), 0);
    m.feed(f(FrameType.DataExpectingReply, 5, 1, Buffer.from([1, 4])), 3);
    m.feed(f(FrameType.DataNotExpectingReply, 1, 5, Buffer.from([1, 0])), 10);
    m.feed(f(FrameType.Token, 5, 9), 12);
    m.feed(f(FrameType.Token, 5, 9), 40); // 9 silent for Tusage_timeout: 5 retries
    m.feed(f(FrameType.PollForMaster, 5, 10), 70);
    m.feed(f(FrameType.Token, 5, 1), 100);
    m.feed(f(FrameType.Token, 1, 5), 103);
    expect(m.violations).toEqual([]);
    expect(m.tokenLoops(5)).toEqual([103]);
  });

  it('flags a frame sent without the token and an answer nobody asked for', () => {
    const m = new MstpMonitor({ usageTimeoutMs: 20 });
    m.feed(f(FrameType.Token, 1, 5), 0);
    m.feed(f(FrameType.DataExpectingReply, 9, 5, Buffer.from([1, 4])), 2);
    m.feed(f(FrameType.ReplyToPollForMaster, 7, 5), 4);
    expect(m.violations[0]).toMatch(/DataExpectingReply 9→5: sent without the token/);
    expect(m.violations.some((v) => /ReplyToPFM 7→5: an answer nobody asked for/.test(v))).toBe(true);
  });
});
