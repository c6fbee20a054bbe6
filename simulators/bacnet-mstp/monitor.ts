// A passive MS/TP line monitor: decodes every frame on the wire and checks the rules of Clause 9
// on who may send when. Used by tests (no violations allowed) and by the bench (token loop time,
// request round trips measured on the wire).
import { BROADCAST, FrameReceiver, FrameType, type Frame } from '../../drivers/bacnet-mstp/frame.js';

export interface SeenFrame extends Frame {
  /** When its last octet was on the wire (ms, performance.now()). */
  at: number;
}

export interface MonitorOptions {
  usageTimeoutMs: number;
  /** Slack for a busy test machine on top of the standard's times. */
  slackMs?: number;
}

const NAMES = ['Token', 'PollForMaster', 'ReplyToPFM', 'TestRequest', 'TestResponse', 'DataExpectingReply', 'DataNotExpectingReply', 'ReplyPostponed'];
export const frameName = (t: number) => NAMES[t] ?? `type ${t}`;

export class MstpMonitor {
  readonly frames: SeenFrame[] = [];
  readonly violations: string[] = [];
  invalid = 0;
  private readonly rx = new FrameReceiver(-1, true);
  /** Who holds the token (the last Token's destination, or the sender of a PFM cycle). */
  private holder: number | undefined;
  /** After a request: who must answer, and who asked. */
  private expect: { from: number; asker: number; kind: 'reply' | 'pfm-reply'; withinMs: number } | undefined;
  private lastAt = -Infinity;

  constructor(private readonly o: MonitorOptions) {}

  feed(chunk: Buffer, at: number): void {
    this.rx.feed(chunk, (e) => {
      if (e.kind === 'invalid') this.invalid++;
      else if (e.kind === 'frame') this.check({ ...e.frame, at });
    });
  }

  private violation(f: SeenFrame, why: string): void {
    this.violations.push(`${frameName(f.type)} ${f.source}→${f.dest}: ${why}`);
    // The frames before it, for whoever has to find out why.
    const recent = this.frames.slice(-8).map((x) => `${x.at.toFixed(1)} ${frameName(x.type)} ${x.source}→${x.dest}`);
    this.context.push(recent.join(' | '));
  }
  /** For each violation, the last frames seen up to it. */
  readonly context: string[] = [];

  private check(f: SeenFrame): void {
    const silence = f.at - this.lastAt;
    this.lastAt = f.at;
    this.frames.push(f);
    const slack = this.o.slackMs ?? 0;
    const usageOver = silence >= this.o.usageTimeoutMs - slack;
    const tokenLost = silence >= 500 - slack;
    const isAnswer = f.type === FrameType.ReplyToPollForMaster || f.type === FrameType.TestResponse || f.type === FrameType.ReplyPostponed;
    // The addressed station answers a Poll-For-Master within Tusage_timeout and a data request
    // within Treply_timeout (255 ms); after that the asker goes on.
    if (this.expect && silence < this.expect.withinMs + slack) {
      const e = this.expect;
      this.expect = undefined;
      if (f.source === e.from) {
        // The addressed station answers (or, for a data request, may answer with data).
        if (e.kind === 'pfm-reply' && f.type !== FrameType.ReplyToPollForMaster) this.violation(f, `answered a Poll-For-Master with ${frameName(f.type)}`);
        if (f.dest !== e.asker && f.dest !== BROADCAST) this.violation(f, `answered to ${f.dest} instead of ${e.asker}`);
        this.after(f);
        return;
      }
      if (f.source !== e.asker) this.violation(f, `sent while ${e.from} was to answer ${e.asker}`);
    } else if (this.expect) this.expect = undefined;
    if (isAnswer) {
      this.violation(f, 'an answer nobody asked for');
      return;
    }
    // A frame that needs the token: from the holder; from the previous holder retrying after
    // Tusage_timeout; from anybody once the token is lost (Tno_token).
    if (this.holder !== undefined && f.source !== this.holder && !tokenLost) {
      const retry = usageOver && this.prevHolder === f.source;
      if (!retry) this.violation(f, `sent without the token (held by ${this.holder}, silence ${silence.toFixed(1)} ms)`);
    }
    if (this.holder === undefined || tokenLost) this.holder = f.source;
    this.after(f);
  }

  private prevHolder: number | undefined;

  private after(f: SeenFrame): void {
    switch (f.type) {
      case FrameType.Token:
        this.prevHolder = f.source;
        this.holder = f.dest;
        break;
      case FrameType.PollForMaster:
        this.holder = f.source;
        this.expect = { from: f.dest, asker: f.source, kind: 'pfm-reply', withinMs: this.o.usageTimeoutMs };
        break;
      case FrameType.DataExpectingReply:
      case FrameType.TestRequest:
        if (f.dest !== BROADCAST) this.expect = { from: f.dest, asker: f.source, kind: 'reply', withinMs: 255 };
        break;
      default:
        break;
    }
  }

  /** Times between successive tokens received by `station` (the token loop), ms. */
  tokenLoops(station: number): number[] {
    const at = this.frames.filter((f) => f.type === FrameType.Token && f.dest === station).map((f) => f.at);
    return at.slice(1).map((t, i) => t - at[i]!);
  }
}

/** Token passing on the wire, per station, from a monitor's frames. */
export interface TokenTally {
  /** Tokens a station passed (first tries). */
  passes: Map<number, number>;
  /** Token frames a station sent again to the same station with nothing on the line in between (RetrySendToken). */
  retries: Map<number, number>;
  /** Silences of Tno_token (500 ms) or more, charged to the station that held the token then (the last Token's destination). */
  lost: Map<number, number>;
}

export function tallyTokens(frames: readonly SeenFrame[], noTokenMs = 500): TokenTally {
  const t: TokenTally = { passes: new Map(), retries: new Map(), lost: new Map() };
  const add = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  let prev: SeenFrame | undefined;
  let holder: number | undefined;
  for (const f of frames) {
    if (prev && f.at - prev.at >= noTokenMs && holder !== undefined) add(t.lost, holder);
    if (f.type === FrameType.Token) {
      const again = prev?.type === FrameType.Token && prev.source === f.source && prev.dest === f.dest;
      add(again ? t.retries : t.passes, f.source);
      holder = f.dest;
    } else if (f.type === FrameType.PollForMaster || f.type === FrameType.DataExpectingReply) holder = f.source;
    prev = f;
  }
  return t;
}
