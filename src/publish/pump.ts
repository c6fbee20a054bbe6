// The pump: buffer rows → MQTT messages on the current connection, in seq order, at most
// mqtt.max_inflight unacknowledged, the backlog of an outage rate-limited (replay-gate.ts), loss
// and recovery events first. Each connection starts from the oldest unacknowledged row in SQLite
// (cursor 0); the rows it has handed out are protected from eviction until their PUBACK deletes
// them (ack-batcher.ts). Rows the broker refuses for good (MQTT 5 reason code ≥ 0x80) are moved
// to dead_letter instead of blocking the queue. A QoS 0 message (Sparkplug DDATA) has no PUBACK:
// its row is deleted only once a later round trip on the same connection (an UNSUBSCRIBE of a
// topic nobody subscribes, answered by UNSUBACK) proves the broker read everything before it —
// written into a cut connection, it is sent again on the next one instead of being lost.
//
// A message the broker answers by dropping the connection (MQTT 3.1.1 has no way to refuse one:
// NATS 2.9 does so on a topic it cannot carry, a broker on a message above its size limit) would
// be sent again first on every connection, forever, and nothing behind it would move. So the
// oldest message in flight when a connection is lost is watched: lost with it in flight
// POISON_SUSPECT times in a row, it is sent alone; lost POISON_ALONE more times with it alone, the
// next connection sends what follows it first, and once the broker has acknowledged one of those,
// the suspect once more: if the broker drops that connection too, the message is set aside in
// dead_letter (with its topic and what happened), with a dead_letter event and an error line. A
// broker that acknowledges nothing sets nothing aside — that is the broker, not the message
// (/healthz says so) — and one acknowledged try clears the suspicion.
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { withSeq } from '../buffer/body.js';
import type { BufferedRow, BufferView } from '../buffer/sqlite-buffer.js';
import type { Metrics } from '../health/metrics.js';
import { AckBatcher } from './ack-batcher.js';
import { ReplayGate } from './replay-gate.js';
import type { DataTopics } from './topics.js';

/** Connections lost in a row with the same oldest message in flight before it is sent alone. */
export const POISON_SUSPECT = 2;
/** Connections lost with that message alone in flight before it is set aside (once the broker accepts others). */
export const POISON_ALONE = 2;

/** A loss counts against the oldest message in flight only this soon after it was written. */
export const POISON_WITHIN_MS = 2000;

/** After the buffer refused a read, the next try. */
const RETRY_MS = 1000;
/**
 * QoS 0 rows written are confirmed by one round trip at most this often, their deletes committed
 * with it: after a kill -9, what was written in the last CONFIRM_MS goes out again.
 */
const CONFIRM_MS = 50;

export interface PumpOptions {
  qos: 0 | 1 | 2;
  maxInflight: number;
  /** Rows read from the buffer per batch (buffer.batch_size). */
  batchSize: number;
  replayRate: number;
  replayOrder: 'strict' | 'live_first';
  /** Where loss and recovery events go (mqtt.events_topic, rendered). */
  eventsTopic: string;
  /** A topic filter nobody subscribes: its UNSUBSCRIBE is the round trip that confirms QoS 0 rows. */
  confirmTopic: string;
}

/**
 * Another wire format for a row (Sparkplug): its topic, payload and QoS; 'json' for the JSON topics
 * (e.g. EL verdicts), 'skip' for a row that has no message in that format (taken as delivered).
 */
export type RowEncoder = (row: BufferedRow, historical: boolean) => { topic: string; payload: Buffer | string; qos: 0 | 1 } | 'json' | 'skip';

export interface PumpDeps {
  /** The MQTT output's view of the buffer (its own cursor: src/buffer/output-slots.ts). */
  buffer: BufferView;
  topics: DataTopics;
  encode?: RowEncoder;
  log: Logger;
  metrics: Metrics;
  fault(err: unknown): void;
}

export class BufferPump {
  private client: MqttClient | undefined;
  /** Highest seq handed to the current connection; 0 on every new connection. */
  private cursor = 0;
  /** With replay_order live_first: highest live seq handed to the current connection. */
  private liveCursor = 0;
  private inflight = 0;
  /** Rows with seq <= this were buffered before the current connection: they are replayed history. */
  private replayUntil = 0;
  /** Event ids handed to the current connection. */
  private readonly eventsInFlight = new Set<number>();
  private pumping = false;
  /** Paused on the current connection (start() goes on). */
  private paused = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** QoS 0 rows written to the current connection, not yet confirmed by a round trip. */
  private unconfirmed: number[] = [];
  private confirming = false;
  private confirmTimer: NodeJS.Timeout | undefined;
  private settleWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private readonly gate: ReplayGate;
  private readonly acks: AckBatcher;
  /** QoS 1 data rows written to the current connection and not yet acknowledged, with when. */
  private readonly unacked = new Map<number, number>();
  /** The message suspected of making the broker drop the connection (see the top of this file). */
  private suspect: { seq: number; losses: number; alone: number; topic?: string } | undefined;
  /** On this connection: the suspect is sent alone / skipped until the broker accepts others / sent again after that. */
  private mode: 'normal' | 'alone' | 'skip' | 'verdict' = 'normal';
  /** Rows acknowledged by the broker since start, and when last. */
  delivered = 0;
  lastDeliveryMs: number | undefined;

  constructor(
    private readonly opts: PumpOptions,
    private readonly deps: PumpDeps,
  ) {
    this.gate = new ReplayGate(opts.replayRate, () => this.pump());
    this.acks = new AckBatcher({
      accept: (seqs) => deps.buffer.accept(seqs),
      flushed: (n) => {
        deps.metrics.published.inc(n);
        deps.metrics.outputDelivered.inc({ output: 'mqtt' }, n);
        this.delivered += n;
        this.lastDeliveryMs = Date.now();
        if (this.inflight === 0 && this.drainWaiters.length && deps.buffer.depth() === 0) for (const w of this.drainWaiters.splice(0)) w();
      },
      fault: deps.fault,
    });
  }

  get inFlight(): number {
    return this.inflight;
  }

  /** A new connection: everything unacknowledged is sent again from the oldest row. */
  attach(client: MqttClient): void {
    this.client = client;
    this.paused = false;
    this.reset();
    const s = this.suspect;
    this.mode = !s || s.losses < POISON_SUSPECT ? 'normal' : s.alone < POISON_ALONE ? 'alone' : 'skip';
    // From the oldest row this output has not acknowledged (0 with MQTT the only output).
    this.cursor = this.deps.buffer.start();
    this.eventsInFlight.clear();
    this.replayUntil = this.deps.buffer.lastSeq();
    this.gate.refill();
    this.protect();
    this.pump();
  }

  /**
   * Starts the pump on `client`: a new connection starts over from the oldest unacknowledged row
   * (attach); the connection it already has goes on from where it paused — its rows in flight
   * are still in flight, and sending them again would deliver them twice (a Sparkplug rebirth
   * during a backlog replay did: issue 32).
   */
  start(client: MqttClient): void {
    if (this.client !== client) return this.attach(client);
    this.paused = false;
    this.pump();
  }

  /** Stops handing out rows on this connection (a Sparkplug birth is being sent); what is in flight lands as usual. */
  pause(): void {
    this.paused = true;
  }

  /**
   * Paused, before the session ends on purpose (a Sparkplug NDEATH): resolves once every row
   * written is confirmed and deleted, or the connection is gone, or after `ms` — so that what the
   * broker has is not sent again on the next connection.
   */
  async settle(ms: number): Promise<void> {
    const client = this.client;
    if (!client || (!this.unconfirmed.length && !this.confirming && this.inflight === 0)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => {
        this.settleWaiters.push(r);
        this.confirm(client);
      }),
      new Promise<void>((r) => (timer = setTimeout(r, ms))),
    ]);
    clearTimeout(timer);
  }

  /** The connection went away: acknowledged rows are deleted, the rest waits for the next one. */
  detach(): void {
    this.acks.flush();
    this.watchLoss();
    this.client = undefined;
    this.reset();
    this.protect();
  }

  /** Tells the pump there is new data. Cheap; called after every append. */
  wake(): void {
    if (this.client && !this.pumping && !this.paused) this.pump();
  }

  /** Resolves true when the buffer is empty and nothing is in flight, false after `ms`. */
  async drain(ms: number): Promise<boolean> {
    this.acks.flush();
    if (this.client && this.unconfirmed.length) this.confirm(this.client);
    if (this.deps.buffer.depth() === 0 && this.inflight === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((r) => this.drainWaiters.push(() => r(true))),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  close(): void {
    this.gate.close();
    clearTimeout(this.retryTimer);
    clearTimeout(this.confirmTimer);
    this.acks.close();
    this.client = undefined;
    this.reset();
    this.protect();
  }

  /** The connection was lost: was the oldest message in flight the same as last time? */
  private watchLoss(): void {
    if (!this.client || this.mode === 'skip') return; // skipping proves nothing about the suspect
    // The broker accepted others on this connection and dropped it once the suspect was sent.
    const at = this.suspect && this.unacked.get(this.suspect.seq);
    if (this.mode === 'verdict' && at) return Date.now() - at <= POISON_WITHIN_MS ? this.setAside() : undefined;
    let head: number | undefined;
    for (const seq of this.unacked.keys()) if (head === undefined || seq < head) head = seq;
    if (head === undefined) return;
    // A broker that drops the connection on a message does so as it reads it; a loss long after
    // the write (an outage, a restart) says nothing about the message.
    if (Date.now() - this.unacked.get(head)! > POISON_WITHIN_MS) return void (this.suspect = undefined);
    const s = this.suspect;
    if (s?.seq !== head) {
      this.suspect = { seq: head, losses: 1, alone: 0 };
      return;
    }
    if (this.mode === 'alone') s.alone++;
    else s.losses++;
    if (s.losses === POISON_SUSPECT && this.mode === 'normal')
      this.deps.log.warn({ seq: head, losses: s.losses }, 'the broker dropped the connection with the same message in flight each time: sending it alone');
  }

  /** The broker accepted other messages where the suspect made it drop the connection: set it aside. */
  private setAside(): void {
    const s = this.suspect!;
    this.suspect = undefined;
    this.mode = 'normal';
    const tries = s.losses + s.alone + 1;
    const reason = `the broker dropped the connection each time this message was sent (${tries} connections: ${s.alone} with it alone, 1 after it had accepted others)${s.topic ? `; topic "${s.topic}"` : ''}`;
    this.deps.log.error({ seq: s.seq, topic: s.topic, tries }, 'message set aside in dead_letter: the broker drops the connection on it');
    try {
      this.deps.buffer.reject([s.seq], reason);
      this.deps.buffer.addEvent({ event: 'dead_letter', seq: s.seq, topic: s.topic, reason, tries, ts: new Date().toISOString() });
    } catch (e) {
      this.deps.fault(e); // the row stays and is tried again
    }
  }

  private reset(): void {
    this.unacked.clear();
    this.cursor = 0;
    this.liveCursor = 0;
    this.inflight = 0;
    // Written but unconfirmed: they stay in the buffer and go out again on the next connection.
    this.unconfirmed = [];
    for (const w of this.settleWaiters.splice(0)) w();
    this.confirming = false;
    clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
  }

  /** Tells the buffer which rows await a PUBACK, so that eviction leaves them alone (after every cursor change). */
  private protect(): void {
    const ranges: [number, number][] = [];
    if (this.client) {
      ranges.push([0, this.cursor]);
      if (this.opts.replayOrder === 'live_first' && this.liveCursor > this.replayUntil) ranges.push([this.replayUntil + 1, this.liveCursor]);
    }
    this.deps.buffer.protect(ranges);
  }

  private pump(): void {
    try {
      this.pumpOnce();
    } catch (err) {
      // The buffer refused a read (a locked or failing disk): what is unsent stays in it; try again.
      this.pumping = false;
      this.deps.fault(err);
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, RETRY_MS);
    }
  }

  private pumpOnce(): void {
    const client = this.client;
    if (!client || this.pumping || this.paused) return;
    this.pumping = true;
    const { buffer } = this.deps;
    const { maxInflight, batchSize } = this.opts;
    // One write (one TLS record, one syscall) for the whole batch instead of one per message.
    const stream = client.stream as { cork?(): void; uncork?(): void };
    stream.cork?.();
    try {
      if (buffer.hasEvents) this.sendEvents(client);
      if (this.mode === 'alone') return this.sendSuspectAlone(client);
      const newest = buffer.lastSeq();
      const liveFirst = this.opts.replayOrder === 'live_first';
      pumping: while (this.client === client && this.inflight < maxInflight) {
        const room = Math.min(maxInflight - this.inflight, batchSize);
        if (liveFirst) {
          // Live data first, the backlog after it at replay_rate: fresh values reach SCADA at
          // once, at the price of per-point order between backlog and live (both carry seq).
          const liveFrom = Math.max(this.liveCursor, this.replayUntil);
          const live = liveFrom < newest ? buffer.readRange(liveFrom, Infinity, room) : [];
          for (const row of live) this.skipped(row) || this.send(client, row, false);
          if (live.length) continue;
          if (this.cursor >= this.replayUntil) break;
          const old = buffer.readRange(this.cursor, this.replayUntil, room);
          if (!old.length) break;
          for (const row of old) {
            if (this.skipped(row)) continue;
            if (!this.gate.take()) break pumping;
            this.send(client, row, true);
          }
          continue;
        }
        // Nothing appended beyond what was sent: no query (this runs after PUBACKs too).
        if (this.cursor >= newest) break;
        const rows = buffer.readRange(this.cursor, Infinity, room);
        if (!rows.length) break;
        for (const row of rows) {
          // Strict order (default): the backlog goes first (rate-limited), live data queues behind
          // it, so every point's samples reach the broker in the order they were taken.
          const historical = row.seq <= this.replayUntil;
          if (this.skipped(row)) continue;
          if (historical && !this.gate.take()) break pumping;
          this.send(client, row, historical);
        }
      }
    } finally {
      this.pumping = false;
      this.protect();
      process.nextTick(() => stream.uncork?.());
    }
    this.deps.metrics.inflight.set(this.inflight);
  }

  /** With the suspect skipped on this connection: passes over its row (true), as if sent. */
  private skipped(row: BufferedRow): boolean {
    if (this.mode !== 'skip' || row.seq !== this.suspect?.seq) return false;
    if (row.seq > this.replayUntil && this.opts.replayOrder === 'live_first') this.liveCursor = row.seq;
    else this.cursor = row.seq;
    return true;
  }

  /** The suspect's row; when it is gone meanwhile (evicted, or acknowledged after all), nothing is suspected any more. */
  private suspectRow(): BufferedRow | undefined {
    const seq = this.suspect!.seq;
    const [row] = this.deps.buffer.readRange(seq - 1, seq, 1);
    if (!row) [this.suspect, this.mode] = [undefined, 'normal'];
    return row;
  }

  /** The broker accepts others on this connection: the suspect once more (out of order, the cursor stays). */
  private sendSuspectAgain(client: MqttClient): void {
    this.mode = 'verdict';
    const row = this.suspectRow();
    if (!row) return;
    const [cursor, liveCursor] = [this.cursor, this.liveCursor];
    this.send(client, row, row.seq <= this.replayUntil);
    [this.cursor, this.liveCursor] = [cursor, liveCursor];
  }

  /** The suspect, alone on this connection: nothing else until the broker answers it. */
  private sendSuspectAlone(client: MqttClient): void {
    const s = this.suspect!;
    if (this.unacked.has(s.seq)) return;
    const row = this.suspectRow();
    if (!row) return void process.nextTick(() => this.pump());
    s.topic = this.deps.topics.of(row.kind, row.device, row.point);
    this.send(client, row, row.seq <= this.replayUntil);
  }

  private send(client: MqttClient, row: BufferedRow, historical: boolean): void {
    if (row.seq > this.replayUntil && this.opts.replayOrder === 'live_first') this.liveCursor = row.seq;
    else this.cursor = row.seq;
    const seq = row.seq;
    const out = this.deps.encode?.(row, historical) ?? 'json';
    if (out === 'skip') return this.acks.add(seq);
    this.inflight++;
    let topic: string, payload: Buffer | string, qos: 0 | 1 | 2;
    if (out === 'json') {
      const body = historical ? `${row.body.slice(0, -1)},"historical":true}` : row.body;
      [topic, payload, qos] = [this.deps.topics.of(row.kind, row.device, row.point), withSeq(seq, body), this.opts.qos];
    } else ({ topic, payload, qos } = out);
    if (qos > 0) this.unacked.set(seq, Date.now());
    client.publish(topic, payload, { qos }, (err) => {
      if (this.client !== client) return; // an old connection's callbacks: its rows are resent
      this.inflight--;
      this.unacked.delete(seq);
      if (!err && this.suspect) {
        // Acknowledged: the suspect itself was innocent; another one, while skipping it, means the
        // broker takes others on this connection, so the suspect is tried once more on it.
        if (seq === this.suspect.seq) [this.suspect, this.mode] = [undefined, 'normal'];
        else if (this.mode === 'skip') this.sendSuspectAgain(client);
      }
      if (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number' && code >= 0x80) this.deadLetter(seq, err.message, code);
        return; // otherwise the connection is going away; the row is resent on the next one
      }
      if (historical) this.deps.metrics.replayed.inc();
      if (qos === 0) {
        this.unconfirmed.push(seq);
        this.settleWaiters.length ? this.confirm(client) : this.confirmSoon(client);
      } else this.acks.add(seq);
      // Draining (a stop): every delete at once, so the drain ends as soon as the broker has everything.
      if (this.drainWaiters.length && this.inflight === 0) {
        this.acks.flush();
        this.confirm(client);
      }
      // Refill at half the window, not after every ack: one query per batch instead of per message.
      if (this.inflight <= this.opts.maxInflight / 2) this.pump();
    });
  }

  private confirmSoon(client: MqttClient): void {
    if (this.confirming || this.confirmTimer) return;
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      this.confirm(client);
    }, CONFIRM_MS);
  }

  /**
   * One round trip for the QoS 0 rows written so far: the broker answers an UNSUBSCRIBE after it
   * has read every packet sent before it on this connection. Then their deletes are committed.
   */
  private confirm(client: MqttClient): void {
    if (this.client !== client || this.confirming || !this.unconfirmed.length) return;
    clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
    const batch = this.unconfirmed;
    this.unconfirmed = [];
    this.confirming = true;
    client.unsubscribe(this.opts.confirmTopic, (err) => {
      if (this.client !== client) return; // the connection ended first: the rows are sent again
      this.confirming = false;
      if (err) {
        this.unconfirmed = batch.concat(this.unconfirmed);
        return;
      }
      for (const seq of batch) this.acks.add(seq);
      this.acks.flush();
      const hurry = this.drainWaiters.length > 0 || this.settleWaiters.length > 0;
      if (this.unconfirmed.length) hurry ? this.confirm(client) : this.confirmSoon(client);
      else if (this.inflight === 0) for (const w of this.settleWaiters.splice(0)) w();
    });
  }

  /** The broker refused this message for good: resending would block the queue forever. It is counted and kept. */
  private deadLetter(seq: number, reason: string, code: number): void {
    this.deps.log.error({ seq, reason_code: code, reason }, 'message refused by the broker; moved to dead_letter');
    try {
      this.deps.buffer.reject([seq], `${reason} (reason code 0x${code.toString(16)})`);
    } catch (e) {
      this.deps.fault(e); // the row stays and is sent again on the next connection
    }
    this.pump();
  }

  /** Loss and recovery events go out before data, each deleted from the buffer after its PUBACK. */
  private sendEvents(client: MqttClient): void {
    for (const ev of this.deps.buffer.pendingEvents(50)) {
      if (this.eventsInFlight.has(ev.id)) continue;
      this.eventsInFlight.add(ev.id);
      client.publish(this.opts.eventsTopic, ev.body, { qos: 1 }, (err) => {
        if (this.client !== client) return;
        this.eventsInFlight.delete(ev.id);
        if (err) return;
        try {
          this.deps.buffer.ackEvent(ev.id);
        } catch (e) {
          this.deps.fault(e); // sent again later: a duplicate event, not a lost one
        }
      });
    }
  }
}
