// The MS/TP master node state machine (ASHRAE 135 Clause 9.5.6) and the slave node's answering
// part (9.5.7), driven by octets from the line and by one timer on the silence since the last octet.
//
//        ┌──────── LostToken (Tno_token) ───────► NO_TOKEN ── my slot ──► POLL_FOR_MASTER
//        ▼                                            │ SawFrame                │ reply / timeouts
//      IDLE ◄─────────────────────────────────────────┘                         ▼
//   token│   ▲ SawTokenUser                                              USE_TOKEN / PASS_TOKEN
//        ▼   │                                                                   …
//   USE_TOKEN ─► WAIT_FOR_REPLY ─► DONE_WITH_TOKEN ─► PASS_TOKEN / POLL_FOR_MASTER
//
// The node owns nothing but the state machine: the port hands it octets (receive()) and takes its
// frames (write). Frames for the upper layer go out through onData.
import { EventEmitter } from 'node:events';
import { BROADCAST, FrameReceiver, FrameType, encodeFrame, type Frame, type ReceiveEvent } from './frame.js';
import {
  zeroCounters,
  type DataHandler,
  type MasterState,
  type MstpCounters,
  type MstpNodeOptions,
  type MstpPort,
  type NodeEvents,
  type Outgoing,
} from './node-types.js';
import { NminOctets, Npoll, NretryToken, mstpTiming, type MstpTiming } from './timing.js';

export type { DataHandler, MasterState, MstpCounters, MstpNodeOptions, MstpPort } from './node-types.js';

export class MstpNode extends EventEmitter<NodeEvents> {
  readonly ts: number;
  readonly role: 'master' | 'slave';
  readonly timing: MstpTiming;
  readonly counters: MstpCounters = zeroCounters();

  /** Lateness of our timers past their deadline, ms (jitter figures for the bench). */
  readonly timerLateness: number[] = [];
  onData: DataHandler = () => undefined;

  private state: MasterState = 'INITIALIZE';
  private readonly maxMaster: number;
  private readonly maxInfoFrames: number;
  private readonly postponeAfterMs: number;
  private ns: number;
  private ps: number;
  private tokenCount = 0;
  private frameCount = 0;
  private retryCount = 0;
  private soleMaster = false;
  private eventCount = 0;
  private silenceStart = 0;
  private lastRxAt = -Infinity;
  private readonly receiver: FrameReceiver;
  private readonly queue: Outgoing[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = 0;
  private running = false;
  /** Set while answering a Data Expecting Reply (ANSWER_DATA_REQUEST). */
  private answering: { source: number; done: boolean } | undefined;
  /** Whom we are waiting for in WAIT_FOR_REPLY. */
  private awaiting = -1;

  constructor(
    opts: MstpNodeOptions,
    private readonly port: MstpPort,
  ) {
    super();
    this.role = opts.role ?? 'master';
    const top = this.role === 'master' ? 127 : 254;
    if (!Number.isInteger(opts.address) || opts.address < 0 || opts.address > top)
      throw new RangeError(`MS/TP ${this.role} address must be 0…${top}, got ${opts.address}`);
    this.ts = opts.address;
    this.maxMaster = opts.maxMaster ?? 127;
    this.maxInfoFrames = opts.maxInfoFrames ?? 1;
    this.postponeAfterMs = Math.min(opts.postponeAfterMs ?? 50, 245);
    this.timing = mstpTiming(opts.baudRate, { usageTimeoutMs: opts.usageTimeoutMs, frameAbortMs: opts.frameAbortMs });
    this.ns = this.ps = this.ts;
    this.receiver = new FrameReceiver(this.ts);
  }

  get currentState(): MasterState {
    return this.state;
  }
  get nextStation(): number {
    return this.ns;
  }
  get isSoleMaster(): boolean {
    return this.soleMaster;
  }
  /** Frames waiting for the token. */
  get queued(): number {
    return this.queue.length;
  }

  start(): void {
    this.running = true;
    this.silenceStart = performance.now();
    // INITIALIZE: NS = PS = TS, TokenCount = Npoll so the first token we hold starts a poll cycle.
    this.ns = this.ps = this.ts;
    this.tokenCount = Npoll;
    this.soleMaster = false;
    this.enter('IDLE');
  }

  stop(): void {
    this.running = false;
    this.timerGen++;
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.held.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.state = 'INITIALIZE';
  }

  /** Queues an NPDU; it goes out when we hold the token (a slave may only answer). */
  send(dest: number, npdu: Buffer, expectReply: boolean): void {
    if (this.role === 'slave') throw new Error('an MS/TP slave cannot originate frames');
    if (expectReply && dest === BROADCAST) throw new Error('a broadcast cannot expect a reply');
    this.queue.push({ dest, npdu, expectReply });
  }

  /** Drops queued frames for `dest` (a request given up on before it went out). */
  cancel(dest: number, npdu: Buffer): void {
    const i = this.queue.findIndex((q) => q.dest === dest && q.npdu === npdu);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Octets from the line. */
  receive(chunk: Buffer): void {
    if (!this.running) return;
    const now = performance.now();
    this.silenceStart = now;
    this.lastRxAt = now;
    this.eventCount += chunk.length;
    // SawTokenUser / SawFrame: traffic within Tusage_timeout (or before our slot) means someone
    // else has the token.
    if ((this.state === 'PASS_TOKEN' || this.state === 'NO_TOKEN') && this.eventCount > NminOctets) this.enter('IDLE');
    // When each frame's first octet arrived: a frame carried over from an earlier read began then.
    let began = this.receiver.started ? this.partialSince : now;
    this.receiver.feed(chunk, (e) => {
      this.frameBegan = began;
      this.onReceive(e);
      began = now;
    });
    this.partialSince = began;
    this.arm();
  }

  // ── receive events ────────────────────────────────────────────────────────────────────────────

  private onReceive(e: ReceiveEvent): void {
    if (e.kind === 'invalid') {
      this.counters.invalidFrames++;
      if (this.state === 'WAIT_FOR_REPLY') {
        this.replyLost(`an invalid frame (${e.reason}) came instead of the reply`);
        this.doneWithToken();
      } else if (this.state === 'POLL_FOR_MASTER') this.pfmSilent();
      return;
    }
    if (e.kind === 'not-for-us') {
      // A valid frame between other stations: in WAIT_FOR_REPLY or POLL_FOR_MASTER it means
      // somebody else is using the line (ReceivedUnexpectedFrame).
      if (this.state === 'WAIT_FOR_REPLY') this.replyLost(`${e.frame.source} sent to ${e.frame.dest} while the reply was due`);
      if (this.state === 'WAIT_FOR_REPLY' || this.state === 'POLL_FOR_MASTER') this.enter('IDLE');
      return;
    }
    const f = e.frame;
    // Our own octets echoed back by a half-duplex adapter are traffic, never a request.
    if (f.source === this.ts) return;
    // Octets read in the same event-loop turn as our last transmission were on the line before
    // it: a token or request for us among them predates what we just did (typically the
    // predecessor's retry while this process was stalled). Acting on it would duplicate the token.
    if (
      this.transmittedThisTurn &&
      f.dest === this.ts &&
      f.type !== FrameType.DataNotExpectingReply &&
      f.type !== FrameType.TestResponse &&
      f.type !== FrameType.ReplyPostponed &&
      f.type !== FrameType.ReplyToPollForMaster
    ) {
      this.counters.staleFrames++;
      return;
    }
    if (f.type === FrameType.Token && f.dest === this.ts && this.staleToken()) {
      this.counters.staleFrames++;
      return;
    }
    if (this.role === 'slave') return this.slaveFrame(f);
    switch (this.state) {
      case 'IDLE':
      case 'NO_TOKEN':
      case 'PASS_TOKEN':
        return this.idleFrame(f);
      case 'WAIT_FOR_REPLY':
        return this.waitFrame(f);
      case 'POLL_FOR_MASTER':
        if (f.dest === this.ts && f.type === FrameType.ReplyToPollForMaster) {
          // ReceivedReplyToPFM: a new successor.
          this.soleMaster = false;
          this.setSuccessor(f.source);
          this.ps = this.ts;
          this.tokenCount = 0;
          this.passToken();
        } else this.enter('IDLE');
        return;
      default:
        return;
    }
  }

  /**
   * A token for us is its sender's stale retry while we hold the token, or when its first octet
   * arrived before we wrote our last frame — judged from the frames and our state, never from an
   * assumed line delay (a pty pair passes the token back within a millisecond; README "Timing").
   */
  private staleToken(): boolean {
    return this.state === 'WAIT_FOR_REPLY' || this.state === 'POLL_FOR_MASTER' || this.frameBegan < this.lastWriteAt;
  }

  private idleFrame(f: Frame): void {
    const toUs = f.dest === this.ts;
    switch (f.type) {
      case FrameType.Token:
        if (!toUs) return;
        this.counters.tokensReceived++;
        this.emit('token', performance.now());
        this.frameCount = 0;
        this.soleMaster = false;
        return this.useToken();
      case FrameType.PollForMaster:
        if (toUs) this.transmit(FrameType.ReplyToPollForMaster, f.source);
        return this.enter('IDLE');
      case FrameType.DataNotExpectingReply:
      case FrameType.TestResponse:
        if (f.type === FrameType.DataNotExpectingReply) this.onData(f.source, f.data, undefined);
        return this.enter('IDLE');
      case FrameType.DataExpectingReply:
      case FrameType.TestRequest:
        if (!toUs) return this.enter('IDLE'); // a broadcast cannot expect a reply: unwanted
        return this.answer(f);
      default:
        return this.enter('IDLE');
    }
  }

  private slaveFrame(f: Frame): void {
    if (f.dest !== this.ts && f.dest !== BROADCAST) return;
    if (f.type === FrameType.DataNotExpectingReply) this.onData(f.source, f.data, undefined);
    else if ((f.type === FrameType.DataExpectingReply || f.type === FrameType.TestRequest) && f.dest === this.ts) this.answer(f);
  }

  /** ANSWER_DATA_REQUEST: the upper layer answers within Treply_delay, or we postpone. */
  private answer(f: Frame): void {
    const started = performance.now();
    if (f.type === FrameType.TestRequest) {
      this.transmit(FrameType.TestResponse, f.source, f.data);
      return this.enter('IDLE');
    }
    const ctx = { source: f.source, done: false };
    this.answering = ctx;
    this.enter('ANSWER_DATA_REQUEST');
    this.onData(f.source, f.data, (npdu) => {
      if (ctx.done) {
        // Too late for the immediate reply: it goes out as our own frame when we hold the token.
        if (this.role === 'master') this.queue.push({ dest: f.source, npdu, expectReply: false });
        return;
      }
      ctx.done = true;
      this.answering = undefined;
      if (this.state !== 'ANSWER_DATA_REQUEST' || performance.now() - started > this.postponeAfterMs) {
        if (this.role === 'master') this.queue.push({ dest: f.source, npdu, expectReply: false });
        return;
      }
      this.transmit(FrameType.DataNotExpectingReply, f.source, npdu);
      this.enter('IDLE');
    });
  }

  private waitFrame(f: Frame): void {
    if (f.dest === this.ts && (f.type === FrameType.DataNotExpectingReply || f.type === FrameType.TestResponse)) {
      // ReceivedReply
      if (f.type === FrameType.DataNotExpectingReply) this.onData(f.source, f.data, undefined);
      return this.doneWithToken();
    }
    if (f.dest === this.ts && f.type === FrameType.ReplyPostponed) return this.doneWithToken();
    // ReceivedUnexpectedFrame: a synchronisation error; give up the token quietly.
    this.replyLost(`${f.source} sent frame type ${f.type} to ${f.dest} while the reply was due`);
    this.enter('IDLE');
  }

  /** The request we wait on gets no reply this turn (timeout, or another conversation): the upper layer may resend it at once. */
  private replyLost(why: string): void {
    if (this.awaiting < 0) return;
    const dest = this.awaiting;
    this.awaiting = -1;
    this.counters.repliesLost++;
    this.emit('no-reply', dest, why);
  }

  // ── holding the token ─────────────────────────────────────────────────────────────────────────

  private useToken(): void {
    this.state = 'USE_TOKEN';
    const next = this.queue.shift();
    if (!next) {
      // NothingToSend
      this.frameCount = this.maxInfoFrames;
      return this.doneWithToken();
    }
    this.frameCount++;
    if (next.expectReply) {
      this.transmit(FrameType.DataExpectingReply, next.dest, next.npdu);
      this.awaiting = next.dest;
      return this.enter('WAIT_FOR_REPLY');
    }
    this.transmit(FrameType.DataNotExpectingReply, next.dest, next.npdu);
    this.doneWithToken();
  }

  private nextAddr(a: number): number {
    return (a + 1) % (this.maxMaster + 1);
  }

  private doneWithToken(): void {
    this.state = 'DONE_WITH_TOKEN';
    if (this.frameCount < this.maxInfoFrames && this.queue.length) return this.useToken(); // SendAnotherFrame
    if (!this.soleMaster && this.ns === this.ts) {
      // NextStationUnknown
      this.ps = this.nextAddr(this.ts);
      return this.pollForMaster();
    }
    if (this.tokenCount < Npoll - 1) {
      if (this.soleMaster && this.ns !== this.nextAddr(this.ts)) {
        // SoleMaster: nobody to pass to; use the token again. With nothing to send this runs
        // through Npoll turns at once and polls the next address, so a sole master keeps
        // searching (and the line never falls silent long enough for another master to think the
        // token lost).
        this.frameCount = 0;
        this.tokenCount++;
        return this.useToken();
      }
      this.tokenCount++; // SendToken
      return this.passToken();
    }
    if (this.nextAddr(this.ps) === this.ns) {
      if (!this.soleMaster) {
        // ResetMaintenancePFM
        this.ps = this.ts;
        this.tokenCount = 1;
        return this.passToken();
      }
      // SoleMasterRestartMaintenancePFM
      this.ps = this.nextAddr(this.ns);
      this.setSuccessor(this.ts);
      this.tokenCount = 1;
      return this.pollForMaster();
    }
    // SendMaintenancePFM
    this.ps = this.nextAddr(this.ps);
    this.pollForMaster();
  }

  private passToken(): void {
    this.retryCount = 0;
    this.eventCount = 0;
    this.counters.tokensPassed++;
    this.transmit(FrameType.Token, this.ns);
    this.enter('PASS_TOKEN');
  }

  private pollForMaster(): void {
    this.retryCount = 0;
    this.eventCount = 0;
    this.counters.pollForMaster++;
    this.transmit(FrameType.PollForMaster, this.ps);
    this.enter('POLL_FOR_MASTER');
  }

  /** POLL_FOR_MASTER saw silence for Tusage_timeout (or a bad frame). */
  private pfmSilent(): void {
    if (this.soleMaster) {
      this.frameCount = 0;
      return this.useToken();
    }
    if (this.ns !== this.ts) {
      // DoneWithPFM
      return this.passToken();
    }
    if (this.nextAddr(this.ps) !== this.ts) {
      // SendNextPFM
      this.ps = this.nextAddr(this.ps);
      return this.pollForMaster();
    }
    // DeclareSoleMaster
    this.soleMaster = true;
    this.setSuccessor(this.ts);
    this.frameCount = 0;
    this.useToken();
  }

  private setSuccessor(ns: number): void {
    const changed = ns !== this.ns;
    this.ns = ns;
    if (changed || this.soleMaster) this.emit('successor', ns, this.soleMaster);
  }

  // ── timers ────────────────────────────────────────────────────────────────────────────────────

  private enter(s: MasterState): void {
    this.state = s;
    if (s === 'IDLE') this.awaiting = -1;
    this.arm();
  }

  /** One timer: the next deadline the current state (or a partial frame) has on the silence timer. */
  private arm(): void {
    if (!this.running) return;
    const t = this.timing;
    let deadline = Infinity;
    if (this.receiver.inFrame) deadline = this.silenceStart + t.frameAbortMs;
    switch (this.state) {
      case 'IDLE':
        if (this.role === 'master') deadline = Math.min(deadline, this.silenceStart + t.noTokenMs);
        break;
      case 'NO_TOKEN': {
        // Our slot; if we are already past it, the end of every master's slot.
        const mine = this.silenceStart + t.noTokenMs + t.slotMs * this.ts;
        const late = performance.now() >= this.silenceStart + t.noTokenMs + t.slotMs * (this.ts + 1);
        deadline = Math.min(deadline, late ? this.silenceStart + this.allSlotsMs() : mine);
        break;
      }
      case 'WAIT_FOR_REPLY':
        deadline = Math.min(deadline, this.silenceStart + t.replyTimeoutMs);
        break;
      case 'PASS_TOKEN':
      case 'POLL_FOR_MASTER':
        deadline = Math.min(deadline, this.silenceStart + t.usageTimeoutMs);
        break;
      case 'ANSWER_DATA_REQUEST':
        deadline = Math.min(deadline, this.silenceStart + this.postponeAfterMs);
        break;
      default:
        break;
    }
    if (deadline === this.timerDeadline && this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDeadline = deadline;
    if (deadline === Infinity) return;
    const gen = ++this.timerGen;
    // The silence timer must not expire on octets that have arrived but not been read yet: when
    // the event loop was late, the timers phase runs before the poll phase reads the port. Acting
    // in setImmediate (after the poll phase) lets receive() see those octets first.
    this.timer = setTimeout(
      () =>
        setImmediate(() => {
          if (gen !== this.timerGen) return;
          this.timer = undefined;
          this.fire();
        }),
      Math.max(0, deadline - performance.now()),
    );
  }
  private timerGen = 0;

  private fire(): void {
    if (!this.running) return;
    const now = performance.now();
    if (now < this.timerDeadline) return this.arm();
    this.timerLateness.push(now - this.timerDeadline);
    if (this.timerLateness.length > 10_000) this.timerLateness.splice(0, 5_000);
    const silence = now - this.silenceStart;
    const t = this.timing;
    if (this.receiver.inFrame && silence >= t.frameAbortMs) {
      const e = this.receiver.abort();
      if (e) this.onReceive(e);
    }
    switch (this.state) {
      case 'IDLE':
        if (this.role === 'master' && silence >= t.noTokenMs) {
          // LostToken
          this.counters.lostToken++;
          this.state = 'NO_TOKEN';
          this.eventCount = 0;
          if (this.mayGenerate(silence)) return this.generateToken();
        }
        break;
      case 'NO_TOKEN':
        if (this.mayGenerate(silence)) return this.generateToken();
        break;
      case 'WAIT_FOR_REPLY':
        if (silence >= t.replyTimeoutMs) {
          // ReplyTimeout
          this.counters.replyTimeouts++;
          this.frameCount = this.maxInfoFrames;
          this.replyLost(`no reply began within Treply_timeout (${t.replyTimeoutMs} ms)`);
          return this.doneWithToken();
        }
        break;
      case 'PASS_TOKEN':
        if (silence >= t.usageTimeoutMs) {
          if (this.retryCount < NretryToken) {
            // RetrySendToken
            this.retryCount++;
            this.counters.tokenRetries++;
            this.eventCount = 0;
            this.transmit(FrameType.Token, this.ns);
            break;
          }
          // FindNewSuccessor
          this.ps = this.nextAddr(this.ns);
          this.setSuccessor(this.ts);
          this.tokenCount = 0;
          return this.pollForMaster();
        }
        break;
      case 'POLL_FOR_MASTER':
        if (silence >= t.usageTimeoutMs) return this.pfmSilent();
        break;
      case 'ANSWER_DATA_REQUEST': {
        // DeferredReply: the answer was not ready within Treply_delay.
        const a = this.answering;
        if (a && !a.done) {
          a.done = true;
          this.answering = undefined;
          if (this.role === 'master') {
            this.counters.replyPostponedSent++;
            this.transmit(FrameType.ReplyPostponed, a.source);
          }
        }
        return this.enter('IDLE');
      }
      default:
        break;
    }
    this.arm();
  }

  /**
   * GenerateToken is allowed in our slot (Tno_token + Tslot×TS up to the next station's slot), or
   * once every master's slot has passed with nobody starting (we were late for ours).
   */
  private mayGenerate(silence: number): boolean {
    const t = this.timing;
    return (silence >= t.noTokenMs + t.slotMs * this.ts && silence < t.noTokenMs + t.slotMs * (this.ts + 1)) || silence >= this.allSlotsMs();
  }

  private allSlotsMs(): number {
    return this.timing.noTokenMs + this.timing.slotMs * (this.maxMaster + 1);
  }

  /** GenerateToken: our slot after a lost token; find a successor from TS + 1. */
  private generateToken(): void {
    this.ps = this.nextAddr(this.ts);
    this.setSuccessor(this.ts);
    this.tokenCount = 0;
    this.pollForMaster();
  }

  // ── transmit ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Sends a frame, no sooner than Tturnaround after the last octet we received (the sender's
   * driver may still be on the line). The silence timer restarts at the end of our frame on the wire.
   */
  private transmittedThisTurn = false;

  private transmit(type: number, dest: number, data?: Buffer): void {
    if (!this.transmittedThisTurn) {
      this.transmittedThisTurn = true;
      setImmediate(() => (this.transmittedThisTurn = false));
    }
    const frame = encodeFrame({ type, dest, source: this.ts, data });
    const now = performance.now();
    const at = Math.max(now, this.lastRxAt + this.timing.turnaroundMs);
    this.counters.framesSent++;
    if (!this.held.length && at <= now + 0.05) this.port.write(frame);
    else {
      // Frames held for Tturnaround go out in order: a later frame never overtakes a held one.
      this.held.push(frame);
      if (!this.heldTimer) this.heldTimer = setTimeout(() => this.flushHeld(), Math.max(0, at - now));
    }
    this.silenceStart = Math.max(at, this.silenceStart) + frame.length * this.timing.octetMs;
    this.lastWriteAt = at;
  }
  /** When we wrote (or will write, after Tturnaround) our last frame. */
  private lastWriteAt = -Infinity;
  /** When the first octet of the frame being handled arrived, and of a frame still arriving. */
  private frameBegan = -Infinity;
  private partialSince = -Infinity;
  private readonly held: Buffer[] = [];
  private heldTimer: NodeJS.Timeout | undefined;

  private flushHeld(): void {
    this.heldTimer = undefined;
    const frames = this.held.splice(0);
    if (this.running) for (const f of frames) this.port.write(f);
  }
}
