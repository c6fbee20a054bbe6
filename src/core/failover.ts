// Failover of one device's critical points between its primary channel and a backup channel.
// The link pool's verdict on the primary decides: down → backup at once; up again → back to the
// primary only after it has stayed up for `switchBackAfterMs` (hysteresis, so a flapping primary
// does not drag the points back and forth). Reads are chosen per poll by `active`, and a device's
// polls are never concurrent, so samples keep their order across a switch.
import type { Channel, FailoverStatus, HealthSnapshot, HealthState } from './device-health.js';

export type { Channel, FailoverStatus } from './device-health.js';

export class Failover {
  active: Channel = 'primary';
  switches = 0;
  since = Date.now();
  private backTimer: NodeJS.Timeout | undefined;
  private backupState: HealthState = 'connecting';
  private stopped = false;

  constructor(
    readonly primaryEndpoint: string,
    readonly backupEndpoint: string,
    private readonly switchBackAfterMs: number,
    private readonly onSwitch: (to: Channel, reason: string) => void,
  ) {}

  /** The primary's health changed (or was refreshed). */
  primary(h: HealthSnapshot): void {
    if (this.stopped) return;
    if (h.state === 'down') {
      this.cancelBack();
      if (this.active === 'primary') this.switchTo('backup', `primary down: ${h.reason ?? 'no answer'}`);
    } else if (h.state === 'up') {
      if (this.active === 'backup' && !this.backTimer) {
        this.backTimer = setTimeout(() => {
          this.backTimer = undefined;
          this.switchTo('primary', `primary up for ${this.switchBackAfterMs} ms`);
        }, this.switchBackAfterMs);
      }
    } else this.cancelBack(); // degraded or reconnecting: not healthy, the hold starts over
  }

  backup(h: HealthSnapshot): void {
    this.backupState = h.state;
  }

  status(): FailoverStatus {
    return {
      active: this.active,
      primary: this.primaryEndpoint,
      backup: this.backupEndpoint,
      backup_state: this.backupState,
      switches: this.switches,
      since: this.since,
    };
  }

  /** The channel a sample read now would name. */
  get endpoint(): string {
    return this.active === 'primary' ? this.primaryEndpoint : this.backupEndpoint;
  }

  private switchTo(to: Channel, reason: string): void {
    if (this.active === to) return;
    this.active = to;
    this.switches++;
    this.since = Date.now();
    this.onSwitch(to, reason);
  }

  private cancelBack(): void {
    clearTimeout(this.backTimer);
    this.backTimer = undefined;
  }

  stop(): void {
    this.stopped = true;
    this.cancelBack();
  }
}
