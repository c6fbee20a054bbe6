// The MS/TP node's contract: its options, the port it writes to, the handler it hands NPDUs to,
// its counters and events (node.ts holds the state machine).
export type MasterState =
  'INITIALIZE' | 'IDLE' | 'USE_TOKEN' | 'WAIT_FOR_REPLY' | 'DONE_WITH_TOKEN' | 'PASS_TOKEN' | 'NO_TOKEN' | 'POLL_FOR_MASTER' | 'ANSWER_DATA_REQUEST';

export interface MstpNodeOptions {
  /** This station (TS): 0–127 for a master, 0–254 for a slave. */
  address: number;
  role?: 'master' | 'slave';
  /** Nmax_master: the highest master address polled for. Default 127. */
  maxMaster?: number;
  /** Nmax_info_frames: frames we may send per token. Default 1. */
  maxInfoFrames?: number;
  baudRate: number;
  usageTimeoutMs?: number;
  frameAbortMs?: number;
  /**
   * How long the upper layer gets to answer a Data Expecting Reply before we send Reply Postponed
   * instead. The standard's limit is Treply_delay (250 ms) against the asker's Treply_timeout
   * (255 ms); deciding early keeps clear of that 5 ms edge on a busy machine. Default 50 ms.
   */
  postponeAfterMs?: number;
}

export interface MstpPort {
  /** Queues octets for the line. */
  write(frame: Buffer): void;
}

/** An NPDU for us. `reply` is set when the sender waits for an answer (Data Expecting Reply). */
export type DataHandler = (source: number, npdu: Buffer, reply: ((npdu: Buffer) => void) | undefined) => void;

export interface MstpCounters {
  tokensReceived: number;
  tokensPassed: number;
  tokenRetries: number;
  pollForMaster: number;
  lostToken: number;
  invalidFrames: number;
  replyTimeouts: number;
  /** Requests we sent whose reply did not come (timeouts included): each is the upper layer's to resend. */
  repliesLost: number;
  replyPostponedSent: number;
  framesSent: number;
  /** Tokens, polls and requests for us that were already waiting when we last transmitted. */
  staleFrames: number;
}

export function zeroCounters(): MstpCounters {
  return {
    tokensReceived: 0,
    tokensPassed: 0,
    tokenRetries: 0,
    pollForMaster: 0,
    lostToken: 0,
    invalidFrames: 0,
    replyTimeouts: 0,
    repliesLost: 0,
    replyPostponedSent: 0,
    framesSent: 0,
    staleFrames: 0,
  };
}

export interface Outgoing {
  dest: number;
  npdu: Buffer;
  expectReply: boolean;
}

export type NodeEvents = {
  /** The token arrived (token loop timing). */
  token: [at: number];
  /** A request we sent to `dest` will get no reply: none began within Treply_timeout, or the line shows another conversation. */
  'no-reply': [dest: number, why: string];
  /** NS changed (a master joined, left, or we are alone). */
  successor: [next: number, soleMaster: boolean];
};
