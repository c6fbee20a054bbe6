// A paced virtual RS485 line in a process of its own, for bench/mstp-peer.ts: the wire must not
// wait for the gateway's or the peer's CPU, so it runs apart from both and, when allowed, at a
// raised priority. It measures on the wire what Clause 9 asks of each master:
//   - token use: from the moment the last octet of a Token reaches a station to the moment that
//     station starts to send (Tusage_delay: 15 ms); "missed" when somebody else spoke first
//     (the passer retried after Tusage_timeout);
//   - token loss: the line silent for Tno_token (500 ms) or more, charged to the station that was
//     to speak next.
// Protocol (IPC): parent sends {mark} to start counting, {report} to get the figures.
import { setPriority } from 'node:os';
import { FrameReceiver, FrameType, type Frame } from '../drivers/bacnet-mstp/frame.js';
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
let lastFrame: (Frame & { at: number }) | undefined;
let lastAt = performance.now();

const rx = new FrameReceiver(-1, true);
bus.observe((chunk, _from, at) => {
  rx.feed(chunk, (e) => {
    if (e.kind !== 'frame') return;
    const f = e.frame;
    // Silence of Tno_token or more before this frame: the token was lost.
    if (counting && lastFrame && at - lastAt >= 500) {
      const l = lastFrame;
      const next = l.type === FrameType.Token ? l.dest : l.type === FrameType.ReplyToPollForMaster || l.type === FrameType.DataNotExpectingReply ? l.dest : l.source;
      const s = fig.get(next);
      if (s) s.lost++;
      else lostOther++;
    }
    lastAt = at;
    lastFrame = { ...f, at };
    if (counting) frames++;
    if (f.type === FrameType.Token && tapOf.has(f.dest)) {
      awaiting = { mac: f.dest, since: at };
      if (counting) fig.get(f.dest)!.tokens++;
    }
  });
});
bus.observeSent((_chunk, from, at) => {
  if (!awaiting) return;
  const s = fig.get(awaiting.mac)!;
  if (tapOf.get(awaiting.mac) === from) {
    if (counting) s.delays.push(at - awaiting.since);
  } else if (counting) s.missed++;
  awaiting = undefined;
});

process.on('message', (m: { t: string }) => {
  if (m.t === 'mark') {
    counting = true;
    for (const s of fig.values()) Object.assign(s, { tokens: 0, delays: [], missed: 0, lost: 0 });
    frames = 0;
    lostOther = 0;
  } else if (m.t === 'report') {
    process.send!({ t: 'report', priority, frames, lostOther, stations: Object.fromEntries(fig) });
  } else if (m.t === 'stop') {
    void bus.stop().then(() => process.exit(0));
  }
});
process.send!({ t: 'ready', ports: bus.ports, priority });
