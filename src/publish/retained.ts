// The retained messages the gateway keeps current on the broker: its own status (online with the
// last reload's outcome, offline on a clean stop, the Last Will while connected), one status per
// device, and any other retained message (the EL stage's status, cleared device statuses). They
// are remembered while the broker is away and all sent again on every connect.
import type { MqttClient } from 'mqtt';
import type { MqttConfig } from '../config/schema.js';
import type { HealthSnapshot } from '../core/device-health.js';
import { renderTopic } from './topics.js';

/** Retained device statuses (refreshed every 60 s) expire after this long without a refresh (MQTT 5). */
export const DEVICE_STATUS_EXPIRY_S = 180;

const RETAINED = { qos: 1, retain: true } as const;

export class RetainedStatuses {
  readonly statusTopic: string;
  private client: MqttClient | undefined;
  private gatewayExtra: Record<string, unknown> = {};
  private readonly devices = new Map<string, HealthSnapshot>();
  private readonly other = new Map<string, string>();

  constructor(
    private readonly cfg: MqttConfig,
    private readonly id: { site: string; gateway: string },
  ) {
    this.statusTopic = renderTopic(cfg.status_topic, id, cfg.topic_dot);
  }

  /**
   * The Last Will of a connection made now. The broker sends it when it notices the loss, long
   * after this payload was made: it carries when the lost session began, not a time of its own.
   */
  will(): { topic: string; payload: Buffer; qos: 1; retain: true } {
    const payload = JSON.stringify({ state: 'offline', reason: 'connection lost', session_since: new Date().toISOString() });
    return { topic: this.statusTopic, payload: Buffer.from(payload), ...RETAINED };
  }

  /** A connection is up: everything retained goes out again, the gateway's "online" first. */
  attach(client: MqttClient): void {
    this.client = client;
    client.publish(this.statusTopic, this.payload('online', this.gatewayExtra), RETAINED);
    for (const [device, s] of this.devices) this.sendDevice(device, s);
    for (const [topic, payload] of this.other) client.publish(topic, payload, RETAINED);
  }

  detach(): void {
    this.client = undefined;
  }

  /** Whether the statuses went out on `client` already. */
  attachedTo(client: MqttClient): boolean {
    return this.client === client;
  }

  /** Extra fields of the retained gateway status ("online") message, e.g. the last reload's outcome. */
  setGatewayStatus(extra: Record<string, unknown>): void {
    this.gatewayExtra = extra;
    this.client?.publish(this.statusTopic, this.payload('online', extra), RETAINED);
  }

  /** Latest state of a device; published now if connected, else on the next connect. */
  setDeviceStatus(device: string, s: HealthSnapshot): void {
    this.devices.set(device, s);
    this.other.delete(this.deviceTopic(device));
    this.sendDevice(device, s);
  }

  /** A device left the configuration: its retained status is cleared (an empty retained message). */
  removeDevice(device: string): void {
    this.devices.delete(device);
    this.set(this.deviceTopic(device), '');
  }

  /** A retained message kept current across reconnects (e.g. the inference stage's status). */
  set(topic: string, payload: string): void {
    this.other.set(topic, payload);
    this.client?.publish(topic, payload, RETAINED);
  }

  /** The "offline, stopped" status of a clean stop; resolves on its PUBACK. */
  stopped(client: MqttClient): Promise<void> {
    return new Promise<void>((r) => client.publish(this.statusTopic, this.payload('offline', { reason: 'stopped' }), RETAINED, () => r()));
  }

  private payload(state: string, extra: Record<string, unknown>): string {
    // Which MQTT version this connection speaks (mqtt.protocol_version: auto may have fallen back).
    const v = this.client?.options.protocolVersion;
    return JSON.stringify({ state, ts: new Date().toISOString(), ...extra, ...(v ? { mqtt_protocol: v === 5 ? 'MQTT 5' : 'MQTT 3.1.1' } : {}) });
  }

  private deviceTopic(device: string): string {
    return renderTopic(this.cfg.device_status_topic, { ...this.id, device }, this.cfg.topic_dot);
  }

  private sendDevice(device: string, s: HealthSnapshot): void {
    // Refreshed every minute; with MQTT 5 the retained copy expires after three missed refreshes,
    // so a gateway that went away does not leave its devices "up" on the broker for good.
    const expiry = this.client?.options.protocolVersion === 5 ? { properties: { messageExpiryInterval: DEVICE_STATUS_EXPIRY_S } } : {};
    // Every time on this topic is ISO 8601 (the failover's `since` too).
    const failover = s.failover ? { failover: { ...s.failover, since: new Date(s.failover.since).toISOString() } } : {};
    const body = JSON.stringify({ ...s, since: new Date(s.since).toISOString(), ...failover, ts: new Date().toISOString() });
    this.client?.publish(this.deviceTopic(device), body, { ...RETAINED, ...expiry });
  }
}
