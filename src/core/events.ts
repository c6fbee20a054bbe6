// What the gateway's rooms tell each other, as typed events. A room that has news (the health
// judge, the link pool, the running devices, the sample sink) emits; the composition root
// (src/gateway.ts) subscribes the rooms that act on it once every room exists, so no room holds a
// closure over one built after it. Listeners run synchronously, in the order they were added; one
// that throws is reported to `fault` and the others still run.
import type { HealthSnapshot } from './device-health.js';
import type { HealthState } from './gateway-health.js';

export interface GatewayEventMap {
  /** The gateway's health changed (a component degraded or recovered). */
  health: [state: HealthState];
  /** A device's status changed (up, down, failover switch); the pool has the new snapshot. */
  'device-changed': [device: string];
  /** A device's status set outright: disabled by the configuration. */
  'device-status': [device: string, status: HealthSnapshot];
  /** A device left the configuration: its retained status goes. */
  'device-removed': [device: string];
  /** Samples were committed to the buffer: the outputs read on. */
  buffered: [];
}

type Listener<K extends keyof GatewayEventMap> = (...args: GatewayEventMap[K]) => void;

export class GatewayEvents {
  private readonly listeners: { [K in keyof GatewayEventMap]?: Listener<K>[] } = {};

  constructor(private readonly fault: (event: string, err: unknown) => void) {}

  on<K extends keyof GatewayEventMap>(event: K, listener: Listener<K>): void {
    ((this.listeners[event] ??= []) as Listener<K>[]).push(listener);
  }

  emit<K extends keyof GatewayEventMap>(event: K, ...args: GatewayEventMap[K]): void {
    const list = this.listeners[event];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(...args);
      } catch (err) {
        this.fault(event, err);
      }
    }
  }
}
