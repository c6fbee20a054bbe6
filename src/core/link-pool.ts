// The connection pool that ../shared/DESIGN.md draws: one link runner per endpoint (made by its
// first device, shared by every device on it), the device ↔ link map, and for a device with a
// backup channel its second membership (`<device>~backup`) and the Failover that chooses between
// them. The gateway asks it to join and part devices and to stop and start links; what the pool
// learns (a device's state, a failover switch) goes out through its hooks.
import type { Logger } from 'pino';
import type { LoadedDevice } from '../config/load.js';
import type { HealthSnapshot } from './device-health.js';
import type { BackupChannel, Joined } from './device-pipeline.js';
import type { DriverSpec } from './driver.js';
import { Failover } from './failover.js';
import { LinkRunner, type LinkHooks } from './link-runner.js';

const BACKUP = '~backup';

export interface LinkPoolDeps {
  drivers: readonly DriverSpec[];
  log: Logger;
  baseDir: string;
  /** Site and gateway id (drivers name the gateway with them). */
  gateway?: { site: string; id: string };
  /** A device's primary link state changed (or is refreshed). */
  onPrimary(device: string, health: HealthSnapshot): void;
  /** Something a device's published status shows changed (its primary, its backup, a switch). */
  onDeviceChanged(device: string): void;
  /** Critical points switched channel. */
  onSwitch(device: string, to: 'primary' | 'backup', reason: string, failover: Failover): void;
  onExchange: LinkHooks['onExchange'];
  onReconnect: LinkHooks['onReconnect'];
}

export class LinkPool {
  /** Runners by link key. */
  private readonly links = new Map<string, LinkRunner>();
  private readonly deviceLink = new Map<string, LinkRunner>();
  /** Link keys each joined device uses (its own, then its backup's). */
  private readonly keys = new Map<string, string[]>();
  private readonly failovers = new Map<string, Failover>();
  private readonly hooks: LinkHooks;

  constructor(private readonly deps: LinkPoolDeps) {
    this.hooks = {
      onStatus: (member, h) => {
        if (member.endsWith(BACKUP)) {
          const device = member.slice(0, -BACKUP.length);
          this.failovers.get(device)?.backup(h);
          return deps.onDeviceChanged(device);
        }
        deps.onPrimary(member, h);
        this.failovers.get(member)?.primary(h);
        deps.onDeviceChanged(member);
      },
      onExchange: deps.onExchange,
      onReconnect: deps.onReconnect,
    };
  }

  /** The link keys a device (with its backup channel) uses. */
  keysOf = (d: LoadedDevice): string[] => [d, ...(d.backup ? [d.backup.device] : [])].map((x) => this.spec(x).linkKey(x));

  /** Each joined device's link keys. */
  get wired(): ReadonlyMap<string, readonly string[]> {
    return this.keys;
  }

  /** Joins a device — and its backup channel, with the failover between them — to its links. */
  join(device: LoadedDevice): { primary: Joined; backup?: BackupChannel } {
    const primary = this.member(device);
    this.deviceLink.set(device.name, primary.runner);
    this.keys.set(device.name, [primary.key]);
    if (!device.backup) return { primary };
    const b = this.member(device.backup.device);
    this.keys.get(device.name)!.push(b.key);
    const failover: Failover = new Failover(primary.runner.link.endpoint, b.runner.link.endpoint, device.backup.switchBackAfterMs, (to, reason) =>
      this.deps.onSwitch(device.name, to, reason, failover),
    );
    this.failovers.set(device.name, failover);
    return { primary, backup: { ...b, failover, points: new Set(device.backup.device.points.map((p) => p.name)) } };
  }

  /** Forgets devices whose polls have ended (their links are stopped separately). */
  part(names: readonly string[]): void {
    for (const n of names) {
      this.failovers.get(n)?.stop();
      this.failovers.delete(n);
      this.deviceLink.delete(n);
      this.keys.delete(n);
    }
  }

  /** Stops links and forgets them; devices that join again make new ones. */
  async drop(keys: Iterable<string>): Promise<void> {
    const list = [...keys];
    await Promise.all(list.map((k) => this.links.get(k)?.stop() ?? Promise.resolve()));
    for (const k of list) this.links.delete(k);
  }

  /** Starts the given links (all when no keys are given). */
  start(keys?: Iterable<string>): void {
    for (const r of keys ? [...keys].map((k) => this.links.get(k)) : this.links.values()) r?.start();
  }

  async stop(): Promise<void> {
    for (const f of this.failovers.values()) f.stop();
    await Promise.all([...this.links.values()].map((r) => r.stop()));
  }

  has(device: string): boolean {
    return this.deviceLink.has(device);
  }

  devices(): string[] {
    return [...this.deviceLink.keys()];
  }

  health(device: string): HealthSnapshot | undefined {
    return this.deviceLink.get(device)?.health(device);
  }

  failover(device: string): Failover | undefined {
    return this.failovers.get(device);
  }

  get size(): { devices: number; links: number } {
    return { devices: this.deviceLink.size, links: this.links.size };
  }

  /** Requests queued or running on all links. */
  pending(): number {
    return [...this.links.values()].reduce((n, r) => n + r.pending, 0);
  }

  private spec(device: LoadedDevice): DriverSpec {
    return this.deps.drivers.find((s) => s.type === device.driver)!;
  }

  /** Adds a device (or a backup channel) to the runner of its link, made by its first user. */
  private member(device: LoadedDevice): Joined & { key: string } {
    const spec = this.spec(device);
    const { log, baseDir, gateway } = this.deps;
    const driver = spec.create(device, { log: log.child({ component: 'driver', driver: spec.type, device: device.name }), baseDir, gateway });
    const key = spec.linkKey(device);
    let runner = this.links.get(key);
    if (!runner) {
      const link = spec.createLink(device, { log: log.child({ component: 'link', driver: spec.type, link: key }), baseDir, gateway });
      runner = new LinkRunner(link, device.link, this.hooks, log.child({ component: 'link', link: key }));
      this.links.set(key, runner);
    }
    runner.add(device.name, driver);
    return { spec, driver, runner, key };
  }
}
