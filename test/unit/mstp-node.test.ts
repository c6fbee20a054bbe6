// The master node state machine fed frame by frame (no serial port): who it passes the token to,
// that it ignores a token that predates its own last transmission, and that a sole master keeps
// polling rather than leave the line silent.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameReceiver, FrameType, type Frame } from '../../drivers/bacnet-mstp/frame.js';
import { MstpNode } from '../../drivers/bacnet-mstp/node.js';

// A node waits Tturnaround (40 bit times, ~1 ms at 38400) after the last octet before it sends:
// wait for what it sends (a loaded machine may take longer than a few ms), and where the point is
// that it sends nothing more, give it a few turnarounds' time to do so. Frames fed to the node
// before its own last frame has left the wire are older than that frame (and ignored, as the
// standard's stale-frame rule wants): the test waits a turnaround after each of its sends too.
const turnaround = () => new Promise((r) => setTimeout(r, 5));
async function sentAtLeast(sent: unknown[], n: number, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (sent.length < n && performance.now() < end) await new Promise((r) => setTimeout(r, 1));
}
const frame = (type: number, source: number, dest: number) => encodeFrame({ type, source, dest });
const nodes: MstpNode[] = [];
afterEach(() => nodes.splice(0).forEach((n) => n.stop()));

function node(address: number, maxMaster: number) {
  const sent: (Frame & { at: number })[] = [];
  const rx = new FrameReceiver(-1, true);
  const n = new MstpNode(
    // Tusage_timeout at the standard's 100 ms upper end: the test answers a token pass in a few ms,
    // but a stalled test process (CI on a busy machine stalled one past 20 ms) would otherwise see
    // the node retry its pass and poll for a new successor before the answer arrived.
    { address, maxMaster, baudRate: 38400, usageTimeoutMs: 100 },
    { write: (b) => rx.feed(b, (e) => e.kind === 'frame' && sent.push({ ...e.frame, at: performance.now() })) },
  );
  nodes.push(n);
  n.start();
  return { n, sent };
}

describe('MS/TP master node', () => {
  it('finds its successor by Poll-For-Master, passes the token, and ignores a retried token it already used', async () => {
    const { n, sent } = node(5, 7);
    n.receive(frame(FrameType.Token, 1, 5));
    await sentAtLeast(sent, 1);
    // First token: the successor is unknown, so it polls the next address.
    expect(sent.at(-1)).toMatchObject({ type: FrameType.PollForMaster, source: 5, dest: 6 });
    n.receive(frame(FrameType.ReplyToPollForMaster, 6, 5));
    await sentAtLeast(sent, 2);
    await turnaround(); // its Token on the wire (2 ms at 38400) before anyone answers it
    expect(sent.at(-1)).toMatchObject({ type: FrameType.Token, source: 5, dest: 6 });
    expect(n.nextStation).toBe(6);
    n.receive(frame(FrameType.Token, 6, 1)); // 6 used it: 5 is idle again
    expect(n.currentState).toBe('IDLE');
    // Station 1's token and its retry arrive in one read (this process was stalled): one use only.
    const before = sent.length;
    n.receive(Buffer.concat([frame(FrameType.Token, 1, 5), frame(FrameType.Token, 1, 5)]));
    await sentAtLeast(sent, before + 1);
    await turnaround();
    expect(sent.slice(before).map((f) => `${f.type}:${f.source}→${f.dest}`)).toEqual([`${FrameType.Token}:5→6`]);
    expect(n.counters.staleFrames).toBe(1);
    expect(n.counters.tokensReceived).toBe(2);
  });

  it('answers a Poll-For-Master addressed to it, and only that one', async () => {
    const { n, sent } = node(3, 7);
    n.receive(frame(FrameType.PollForMaster, 1, 4));
    await turnaround();
    expect(sent).toHaveLength(0);
    n.receive(frame(FrameType.PollForMaster, 1, 3));
    await sentAtLeast(sent, 1);
    expect(sent).toMatchObject([{ type: FrameType.ReplyToPollForMaster, source: 3, dest: 1 }]);
  });

  it('as the sole master, keeps polling for others and never leaves the line silent for Tno_token', async () => {
    const { n, sent } = node(0, 3);
    await new Promise((r) => setTimeout(r, 1500));
    expect(n.isSoleMaster).toBe(true);
    const polls = sent.filter((f) => f.type === FrameType.PollForMaster);
    expect(new Set(polls.map((f) => f.dest))).toEqual(new Set([1, 2, 3]));
    const after = sent.filter((f) => f.at > sent.find((x) => x.type === FrameType.PollForMaster)!.at);
    const gaps = after.slice(1).map((f, i) => f.at - after[i]!.at);
    expect(Math.max(...gaps)).toBeLessThan(500);
  });

  /** Node 5 with station 6 as its successor, holding nothing: it has just passed the token to 6. */
  /**
   * The token from 6 to 5, passed again after a turnaround until 5 sends a frame `pred` accepts (and
   * returns it). On a loaded machine this process may answer 5's pass after Tusage_timeout: 5 has
   * then retried or polled, and a token that arrives before that frame has left the wire is stale
   * — so 6 passes again, as a real station's retry would.
   */
  async function tokenFrom6Until(n: MstpNode, sent: Frame[], pred: (f: Frame) => boolean): Promise<Frame> {
    for (let i = 0; i < 10; i++) {
      const from = sent.length;
      n.receive(frame(FrameType.Token, 6, 5));
      await sentAtLeast(sent, from + 1);
      const hit = sent.slice(from).find(pred);
      if (hit) return hit;
      await turnaround();
    }
    throw new Error(`5 never used the token: it sent ${sent.map((f) => `${f.type}:${f.source}→${f.dest}`).join(' ')}`);
  }

  async function passedTo6() {
    const { n, sent } = node(5, 7);
    n.receive(frame(FrameType.Token, 1, 5));
    await sentAtLeast(sent, 1);
    n.receive(frame(FrameType.ReplyToPollForMaster, 6, 5));
    await sentAtLeast(sent, 2);
    expect(sent.at(-1)).toMatchObject({ type: FrameType.Token, source: 5, dest: 6 });
    return { n, sent };
  }

  it('takes a token passed straight back after its own pass (a ring of two on a line with no delay)', async () => {
    const { n, sent } = await passedTo6();
    // 6 answers the moment our token is written, well within the 8 octet times the token takes on a real wire.
    n.receive(frame(FrameType.Token, 6, 5));
    await sentAtLeast(sent, 3);
    expect(sent.at(-1)).toMatchObject({ type: FrameType.Token, source: 5, dest: 6 });
    expect(n.counters).toMatchObject({ tokensReceived: 2, staleFrames: 0, tokenRetries: 0 });
  });

  it('drops a token whose first octets arrived before its own pass was written (a retry already under way)', async () => {
    const { n, sent } = node(5, 7);
    n.receive(frame(FrameType.Token, 1, 5));
    await sentAtLeast(sent, 1);
    // The reply to the Poll-For-Master, then at once the first octets of 6's retry: our Token waits
    // out Tturnaround after the last octet received, so the retry began before it went out.
    const retry = frame(FrameType.Token, 6, 5);
    n.receive(Buffer.concat([frame(FrameType.ReplyToPollForMaster, 6, 5), retry.subarray(0, 3)]));
    await sentAtLeast(sent, 2);
    expect(sent.at(-1)).toMatchObject({ type: FrameType.Token, source: 5, dest: 6 });
    n.receive(retry.subarray(3));
    await turnaround();
    expect(sent).toHaveLength(2);
    expect(n.counters).toMatchObject({ tokensReceived: 1, staleFrames: 1 });
  });

  it('says at once that a request will get no reply when the line shows another conversation, and after Treply_timeout', async () => {
    const { n, sent } = await passedTo6();
    const lost: [number, string][] = [];
    n.on('no-reply', (dest, why) => lost.push([dest, why]));
    n.send(6, Buffer.from([1, 4, 0, 5, 1, 12]), true);
    expect(await tokenFrom6Until(n, sent, (f) => f.type === FrameType.DataExpectingReply)).toMatchObject({ source: 5, dest: 6 });
    await turnaround();
    // 6 polls for a master instead of answering (it thinks it holds the token): the request is lost.
    n.receive(frame(FrameType.PollForMaster, 6, 7));
    expect(lost).toEqual([[6, '6 sent to 7 while the reply was due']]);
    expect(n.currentState).toBe('IDLE');
    // Sent again with the next token; this time nothing comes back within Treply_timeout.
    n.send(6, Buffer.from([1, 4, 0, 5, 1, 12]), true);
    expect(await tokenFrom6Until(n, sent, (f) => f.type === FrameType.DataExpectingReply)).toMatchObject({ source: 5, dest: 6 });
    const t0 = performance.now();
    while (lost.length < 2 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(lost[1]).toEqual([6, 'no reply began within Treply_timeout (255 ms)']);
    expect(n.counters.repliesLost).toBe(2);
  });
});
