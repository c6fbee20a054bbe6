// What a reload changes, decided from the old and new device lists alone: which devices were
// added, removed or changed, which links must restart, and which running devices go down with
// them. Pure (no I/O, no gateway state) so that the rules are unit-tested; the gateway carries
// the plan out (src/gateway.ts, reload).
import type { LoadedDevice } from '../config/load.js';

export interface ReloadPlan {
  added: string[];
  removed: string[];
  changed: string[];
  /** Link keys to stop and start again (sorted). */
  relink: string[];
  /** Running devices to take down because one of their links restarts. */
  down: string[];
  /** Devices of the new config to wire up (enabled, on a restarted link). */
  wire: string[];
}

/** A device's configuration as compared on reload (where it was written does not matter). */
export const canon = (v: unknown) => JSON.stringify(v, (k, x: unknown) => (k === 'source' ? undefined : x));

/**
 * @param before the devices running now (their config)
 * @param next the new config's devices
 * @param wired each running device's link keys (primary, then backup)
 * @param keysOf the link keys a device of the new config would use
 */
export function planReload(
  before: readonly LoadedDevice[],
  next: readonly LoadedDevice[],
  wired: ReadonlyMap<string, readonly string[]>,
  keysOf: (d: LoadedDevice) => string[],
): ReloadPlan {
  const was = new Map(before.filter((d) => d.enabled).map((d) => [d.name, d]));
  const will = new Map(next.filter((d) => d.enabled).map((d) => [d.name, d]));
  const added = [...will.keys()].filter((n) => !was.has(n));
  const removed = [...was.keys()].filter((n) => !will.has(n));
  const changed = [...will.keys()].filter((n) => was.has(n) && canon(was.get(n)) !== canon(will.get(n)));
  // The links to restart: those of every added, removed or changed device, and — since a link
  // is restarted with all its devices — the links of those devices' other channels, until closed.
  const affected = new Set<string>([...removed, ...changed].flatMap((n) => wired.get(n) ?? []));
  for (const n of [...added, ...changed]) for (const k of keysOf(will.get(n)!)) affected.add(k);
  const touches = (keys: readonly string[]) => keys.some((k) => affected.has(k));
  for (let size = -1; size !== affected.size;) {
    size = affected.size;
    for (const keys of wired.values()) if (touches(keys)) keys.forEach((k) => affected.add(k));
    for (const d of will.values()) if (touches(keysOf(d))) keysOf(d).forEach((k) => affected.add(k));
  }
  return {
    added,
    removed,
    changed,
    relink: [...affected].sort(),
    down: [...wired].filter(([, keys]) => touches(keys)).map(([n]) => n),
    wire: [...will.values()].filter((d) => touches(keysOf(d))).map((d) => d.name),
  };
}
