// Which MQTT version the gateway's broker connections speak, and what a connection attempt that
// ended without a CONNACK means. With mqtt.protocol_version: auto (the default) a connection offers
// MQTT 5 until the broker refuses it — a CONNACK "unacceptable protocol version" (NATS) or a close
// before any CONNACK (RabbitMQ 3.10) — and then 3.1.1 for the life of the process, said once in the
// log and in the status. A broker that refuses the connection is reported as refusing, with its
// answer, never as unreachable. Shared by the publisher and the command connection.
import type { Logger } from 'pino';

export type ProtocolSetting = 'auto' | 4 | 5;
export type ProtocolVersion = 4 | 5;

/** How one attempt ended without a CONNACK that accepted it. */
export interface NoConnack {
  /** The transport was up, so CONNECT reached the broker. */
  transportUp: boolean;
  /** The broker closed the connection (not our connect timeout, not a network error). */
  brokerClosed: boolean;
  /** The broker's CONNACK refusal (mqtt.js's message and return/reason code), if it sent one. */
  refusal?: { message: string; code?: number };
}

/** The broker's CONNACK refusal in an mqtt.js 'error' (message and return/reason code), if it is one. */
export function connackRefusal(err: Error): { message: string; code: number } | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && /^Connection refused/.test(err.message) ? { message: err.message, code } : undefined;
}

/** CONNACK codes that mean "not this protocol version": 3.1.1 return code 1, MQTT 5 reason 0x84. */
const VERSION_REFUSED = new Set([1, 0x84]);

const NAMES: Record<ProtocolVersion, string> = { 4: 'MQTT 3.1.1', 5: 'MQTT 5' };

export class MqttProtocol {
  private current: ProtocolVersion;
  private fellBack: string | undefined;
  /** The last refusal (the broker's answer), until a connection is accepted. */
  private refusing: string | undefined;

  constructor(
    readonly setting: ProtocolSetting,
    private readonly log: Logger,
  ) {
    this.current = setting === 'auto' ? 5 : setting;
  }

  get version(): ProtocolVersion {
    return this.current;
  }

  /** Why the broker refuses this gateway's connections, while it does. */
  get refusal(): string | undefined {
    return this.refusing;
  }

  /** For the status: the version in use, and why when auto fell back. */
  describe(): { protocol_version: ProtocolVersion; protocol: string; fallback?: string } {
    return { protocol_version: this.current, protocol: NAMES[this.current], ...(this.fellBack ? { fallback: this.fellBack } : {}) };
  }

  accepted(): void {
    this.refusing = undefined;
  }

  /**
   * An attempt (`who`: the publisher or the command connection) got no accepting CONNACK. True when
   * the next attempt should be made at once: auto has fallen back to 3.1.1 (now, or while this
   * attempt, made with `used`, was on its way: the other connection learnt it first).
   */
  noConnack(a: NoConnack, used: ProtocolVersion, who: string, url: string): boolean {
    if (used !== this.current) return true;
    const answer = a.refusal
      ? `CONNACK refused: ${a.refusal.message}${a.refusal.code !== undefined ? ` (code ${a.refusal.code})` : ''}`
      : a.transportUp && a.brokerClosed
        ? 'the broker closed the connection before any CONNACK'
        : undefined;
    if (!answer) return false; // unreachable or no answer in time: not a refusal
    const versionRefused = a.refusal ? a.refusal.code !== undefined && VERSION_REFUSED.has(a.refusal.code) : true;
    if (this.setting === 'auto' && this.current === 5 && versionRefused) {
      this.current = 4;
      this.fellBack = `the broker refused MQTT 5 (${answer})`;
      this.log.warn(
        { url, connection: who, answer },
        'the broker does not accept MQTT 5: using MQTT 3.1.1 from now on (set mqtt.protocol_version: 4 to say so in the config)',
      );
      return true;
    }
    this.refusing = `${NAMES[this.current]}: ${answer}`;
    this.log.warn({ url, connection: who, protocol: NAMES[this.current], answer }, `the broker refuses the connection: ${answer}`);
    return false;
  }
}
