// A paced virtual RS485 line in a process of its own, for bench/mstp-peer.ts: the wire must not
// wait for the gateway's or the peer's CPU, so it runs apart from both and, when allowed, at a
// raised priority. It measures on the wire what Clause 9 asks of each master:
//   - token use: from the moment the last octet of a Token reaches a station to the moment that
//     station starts to send (Tusage_delay: 15 ms); "missed" when somebody else spoke first
//     (the passer retried after Tusage_timeout);
//   - token loss: the line silent for Tno_token (500 ms) or more, charged to the station that was
//     to speak next — unless a station sent out of turn (a frame without the token, seen by the
//     Clause 9 line monitor) within the second before: then to that station, whose frame made
//     the rightful holder drop the token as the standard says it must. Except: when that frame was
//     the passer's retry after Tusage_timeout and the station it had passed the token to began
//     using it later than Tusage_delay (15 ms) — the receiver broke the rule first, and the two
//     frames met on the line — the loss is charged to the late receiver (and said so in the context).
// Protocol (IPC): parent sends {mark} to start counting, {report} to get the figures.
import { spawnSync } from 'node:child_process';
import { setPriority } from 'node:os';
import { FrameType } from '../drivers/bacnet-mstp/frame.js';
import { frameName, MstpMonitor, type SeenFrame } from '../simulators/bacnet-mstp/monitor.js';
import { startRs485Bus } from '../simulators/rs485-bus.js';

const BAUD = Number(process.argv[2] ?? 38400);
const NODES = Number(process.argv[3] ?? 2);
/** MAC of the station on each tap, e.g. "3,5": tap 0 is MAC 3. */
const MACS = (process.argv[4] ?? '3,5').split(',').map(Number);

let priority = 'normal';
try {
  setPriority(process.pid, -15);
  priority = 'nice -15';
} catch {
  /* not root: the figures then include the line's own scheduling delays */
}

const bus = await startRs485Bus(NODES, { baudRate: BAUD });
// The socat processes joining the ptys are part of the wire too: at normal priority, under busy
// loops, they held octets back for up to seconds and the figures measured them, not the nodes.
if (priority !== 'normal') {
  const socats = spawnSync('pgrep', ['-P', String(process.pid), 'socat'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  for (const pid of socats) setPriority(pid, -15);
}
const tapOf = new Map(MACS.map((mac, i) => [mac, i]));

interface StationFigures {
  tokens: number;
  delays: number[];
  missed: number;
  lost: number;
}
const fig = new Map<number, StationFigures>(MACS.map((m) => [m, { tokens: 0, delays: [], missed: 0, lost: 0 }]));
let counting = false;
let frames = 0;
let lostOther = 0;
/** The station that was handed the token and has not spoken yet, and when it got it. */
let awaiting: { mac: number; since: number } | undefined;
let lastFrame: SeenFrame | undefined;
let lastAt = performance.now();
/** The frames before each lost token and each token used late, for whoever has to find out why. */
const recent: string[] = [];
const contexts: string[] = [];
const note = (why: string) => {
  if (!counting) return;
  const lost = why.startsWith('lost');
  if (contexts.filter((c) => c.startsWith('lost') === lost).length < 20) contexts.push(`${why}: ${recent.join(' | ')}`);
};

// The line monitor decodes every frame and checks who may send when. The standard's smallest Tusage_timeout (20 ms), so any station's retry counts as in turn.
const monitor = new MstpMonitor({ usageTimeoutMs: 20, slackMs: 2 });
let lastViolation: { mac: number; at: number } | undefined;
/** The last token used later than Tusage_delay (15 ms): by whom, when it began, how late. */
let lateUse: { mac: number; at: number; delay: number } | undefined;
bus.observe((chunk, _from, at) => {
  const before = monitor.violations.length;
  const seen = monitor.frames.length;
  monitor.feed(chunk, at);
  for (const v of monitor.violations.slice(before)) {
    const m = /^\S+ (\d+)→\d+: sent without the token/.exec(v);
    if (m) lastViolation = { mac: Number(m[1]), at };
  }
  for (const f of monitor.frames.slice(seen)) {
    // Silence of Tno_token or more before this frame: the token was lost.
    if (counting && lastFrame && at - lastAt >= 500) {
      const l = lastFrame;
      const holder =
        l.type === FrameType.Token ? l.dest : l.type === FrameType.ReplyToPollForMaster || l.type === FrameType.DataNotExpectingReply ? l.dest : l.source;
      let next = lastViolation && at - lastViolation.at < 1500 ? lastViolation.mac : holder;
      let why = '';
      // The out-of-turn frame was a retry into a late token use: the late user broke the rule first.
      if (next !== holder && lastViolation && lateUse && lateUse.mac !== next && lastViolation.at - lateUse.at >= 0 && lastViolation.at - lateUse.at < 20) {
        why = ` (its token use began ${lateUse.delay.toFixed(1)} ms after the token, past Tusage_delay; ${next}'s retry ${(lastViolation.at - lateUse.at).toFixed(1)} ms later met it)`;
        next = lateUse.mac;
      }
      const s = fig.get(next);
      if (s) s.lost++;
      else lostOther++;
      note(`lost, charged to ${next}${why}`);
    }
    lastAt = at;
    lastFrame = f;
    recent.push(`${at.toFixed(1)} ${frameName(f.type)} ${f.source}→${f.dest}`);
    if (recent.length > 10) recent.shift();
    if (counting) frames++;
    if (f.type === FrameType.Token && tapOf.has(f.dest)) {
      awaiting = { mac: f.dest, since: at };
      if (counting) fig.get(f.dest)!.tokens++;
    }
  }
  if (monitor.frames.length > 1000) monitor.frames.splice(0, 500);
});
bus.observeSent((_chunk, from, at) => {
  if (!awaiting) return;
  const s = fig.get(awaiting.mac)!;
  if (tapOf.get(awaiting.mac) === from) {
    if (counting) s.delays.push(at - awaiting.since);
    if (at - awaiting.since > 15) lateUse = { mac: awaiting.mac, at, delay: at - awaiting.since };
    if (at - awaiting.since > 15) note(`${awaiting.mac} used the token after ${(at - awaiting.since).toFixed(1)} ms (sent at ${at.toFixed(1)})`);
  } else if (counting) {
    s.missed++;
    note(`${awaiting.mac} missed the token (tap ${from} spoke at ${at.toFixed(1)})`);
  }
  awaiting = undefined;
});

process.on('message', (m: { t: string }) => {
  if (m.t === 'mark') {
    counting = true;
    for (const s of fig.values()) Object.assign(s, { tokens: 0, delays: [], missed: 0, lost: 0 });
    frames = 0;
    lostOther = 0;
    contexts.length = 0;
  } else if (m.t === 'report') {
    process.send!({ t: 'report', priority, frames, lostOther, stations: Object.fromEntries(fig), contexts });
  } else if (m.t === 'stop') {
    void bus.stop().then(() => process.exit(0));
  }
});
process.send!({ t: 'ready', ports: bus.ports, priority });
