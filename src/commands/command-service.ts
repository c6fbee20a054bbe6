// The command topics on the broker: a connection of its own with a clean session (the broker keeps
// no subscription and no queued command for us while we are away, so nothing old is replayed after
// an outage), QoS 1 subscription, each command's body and deadline read (command.ts), written
// through the write gate (write-gate.ts: checks, rate limit, the device's link runner, audit) and
// answered on the result topic — and with MQTT 5 on the request's Response Topic with its
// Correlation Data. Commands live in memory only: none survives a restart.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { MqttConfig } from '../config/schema.js';
import type { Value } from '../core/driver.js';
import { GatewayError } from '../errors.js';
import { echo, excerpt, REASON_CHARS } from '../core/bounded.js';
import { securityOptions } from '../publish/client-options.js';
import { connackRefusal, MqttProtocol } from '../publish/protocol.js';
import type { MqttConnect, PublisherIdentity } from '../publish/mqtt-publisher.js';
import { parseCommand, type CommandRules } from './command.js';
import { CommandTopics } from './command-topics.js';
import type { WriteGate, WriteReport } from './write-gate.js';

export interface CommandDeps {
  log: Logger;
  baseDir: string;
  gate: WriteGate;
  connect?: MqttConnect;
  /** The publisher's: the version the broker accepts, learnt by either connection. */
  protocol?: MqttProtocol;
}

interface Answer extends WriteReport {
  id?: string | number;
  read_back?: Value;
  read_back_quality?: string;
  ts: string;
  timings_ms?: { queued?: number; device?: number; total: number };
}

export class CommandService {
  private client: MqttClient | undefined;
  private readonly protocol: MqttProtocol;
  private readonly topics: CommandTopics;
  private readonly rules: CommandRules;
  private readonly inflight = new Set<Promise<void>>();
  private subscribed!: () => void;
  /** Resolves once the broker has acknowledged the command subscription (the first time). */
  readonly ready = new Promise<void>((resolve) => (this.subscribed = resolve));

  constructor(
    private readonly cfg: MqttConfig,
    private readonly id: PublisherIdentity,
    private readonly deps: CommandDeps,
  ) {
    const c = cfg.commands;
    this.topics = new CommandTopics(c.topic_template, c.result_topic_template, id, cfg.topic_dot);
    this.protocol = deps.protocol ?? new MqttProtocol(cfg.protocol_version, deps.log);
    this.rules = { defaultExpiryMs: c.default_expiry_ms, token: c.token_file ? readToken(resolve(deps.baseDir, c.token_file)) : undefined };
  }

  start(): void {
    const opts: IClientOptions = {
      ...securityOptions(this.cfg, this.deps.baseDir),
      ...(/mqttjs/.test(process.env.DEBUG ?? '') ? {} : { log: () => undefined }),
      protocolVersion: this.protocol.version,
      clientId: `${this.cfg.client_id ?? `edgeferry-${this.id.site}-${this.id.gateway}`}-cmd`,
      username: this.cfg.username,
      keepalive: this.cfg.keepalive_s,
      // Clean session (MQTT 5: clean start, session expiry 0): commands published while we were
      // away are not kept for us, under either protocol version.
      clean: true,
      reconnectPeriod: this.cfg.reconnect_ms,
      // A refused CONNACK (a version the broker does not speak, credentials not yet valid) is tried
      // again like a lost connection; mqtt.js would otherwise give up for good.
      reconnectOnConnackError: true,
      connectTimeout: 10_000,
    };
    const client = (this.deps.connect ?? ((url, o) => mqtt.connect(url, o)))(this.cfg.url, opts);
    this.client = client;
    // The version the broker accepts is learnt by whichever connection is refused first (protocol.ts).
    let acked = false;
    let refusal: { message: string; code?: number } | undefined;
    client.on('reconnect', () => {
      acked = false;
      refusal = undefined;
      client.options.protocolVersion = this.protocol.version;
    });
    client.on('close', () => {
      if (!acked && refusal)
        this.protocol.noConnack({ transportUp: true, brokerClosed: true, refusal }, client.options.protocolVersion as 4 | 5, 'commands', this.cfg.url);
    });
    client.on('connect', () => {
      acked = true;
      this.deps.log.info({ filter: this.topics.filter }, 'command topics subscribed');
      // MQTT 5: Retain As Published, so that a retained command published while we are subscribed
      // still carries its retain flag (and is refused); otherwise the broker clears the flag on live
      // messages. MQTT 3.1.1 has no such option: docs/writes.md says what happens there.
      const subOpts = client.options.protocolVersion === 5 ? { qos: 1 as const, rap: true } : { qos: 1 as const };
      client.subscribe(this.topics.filter, subOpts, (err, granted) => {
        const refused = err ?? (granted?.some((g) => g.qos >= 0x80) ? new Error('not authorized (check the broker ACL)') : undefined);
        if (refused)
          return this.deps.log.error({ err: { message: refused.message }, filter: this.topics.filter }, 'command subscription refused by the broker');
        this.subscribed();
      });
    });
    client.on('error', (err) => {
      const refused = acked ? undefined : connackRefusal(err);
      if (refused) return void (refusal = refused);
      this.deps.log.warn({ err: { message: err.message } }, 'command connection error');
    });
    client.on('message', (topic, payload, packet) => {
      const p = this.handle(topic, payload, packet).catch((err: unknown) => this.deps.log.error({ err }, 'command handling failed'));
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    });
  }

  private async handle(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const at = Date.now();
    const levels = this.topics.parse(topic);
    // An empty payload is how a retained message is cleared: nothing was asked.
    if (!levels || payload.length === 0) return;
    const { device, point: pointName } = this.deps.gate.resolve(levels.device, levels.point, this.cfg.topic_dot);
    const props = packet.properties;
    const token = props?.userProperties?.token;
    const parsed = parseCommand(
      { payload, at, retained: packet.retain, expiryS: props?.messageExpiryInterval, token: Array.isArray(token) ? token[0] : token },
      this.rules,
    );
    const answer = (a: Omit<Answer, 'device' | 'point' | 'ts'>) =>
      this.answer({ ...a, device, point: pointName, ts: new Date().toISOString(), timings_ms: { ...a.timings_ms, total: Date.now() - at } }, packet);
    if (!parsed.ok) return answer({ id: (parsed as { id?: string | number }).id, value: undefined, outcome: parsed.outcome, reason: parsed.reason });
    const cmd = parsed.value;
    const r = await this.deps.gate.write(device, pointName, cmd.value, cmd.deadline, at);
    answer({
      id: cmd.id,
      value: cmd.value,
      outcome: r.outcome,
      reason: r.reason,
      code: r.code,
      read_back: r.readBack?.value,
      read_back_quality: r.readBack?.quality,
      timings_ms: { queued: r.queuedMs, device: r.deviceMs, total: 0 },
    });
  }

  private answer(full: Answer, request: IPublishPacket): void {
    // What came from outside is repeated bounded (a 1 MiB value is refused with its first characters and its size).
    const a: Answer = { ...full, value: echo(full.value), reason: full.reason === undefined ? undefined : excerpt(full.reason, REASON_CHARS) };
    if (full.read_back !== undefined) a.read_back = echo(full.read_back) as Value;
    this.deps.gate.audit({ device: a.device, point: a.point, value: a.value, request_id: a.id, outcome: a.outcome, reason: a.reason, code: a.code });
    const client = this.client;
    if (!client) return;
    const body = JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    client.publish(this.topics.result(a.device, a.point), body, { qos: 1 });
    const p = request.properties;
    if (p?.responseTopic) client.publish(p.responseTopic, body, { qos: 1, properties: p.correlationData ? { correlationData: p.correlationData } : {} });
  }

  async stop(): Promise<void> {
    // Called after the links stopped: writes still waiting were answered "failed: stopped".
    await Promise.allSettled([...this.inflight]);
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(false).catch(() => client.end(true));
  }
}

function readToken(path: string): string {
  try {
    const t = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    if (!t) throw new Error('empty');
    return t;
  } catch (err) {
    throw new GatewayError(
      'GW_ERR_TLS_FILE',
      `mqtt.commands.token_file: cannot read a token from "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
