// The reload rules, without a gateway: what is added, removed, changed, which links restart (a
// link restarts with all its devices, and so do those devices' other channels), which running
// devices go down with them, and which new devices are wired up.
import { describe, expect, it } from 'vitest';
import type { LoadedDevice } from '../../src/config/load.js';
import { planReload } from '../../src/core/reload-plan.js';

const dev = (name: string, host: string, extra: Partial<LoadedDevice> = {}): LoadedDevice =>
  ({
    name,
    driver: 'modbus_tcp',
    enabled: true,
    poll_interval_ms: 1000,
    connection: { host },
    points: [{ name: 'v', address: 0 }],
    source: { file: {} as never, index: 0 },
    ...extra,
  }) as unknown as LoadedDevice;
const withBackup = (d: LoadedDevice, port: string): LoadedDevice => ({ ...d, backup: { device: dev(`${d.name}~backup`, port), switchBackAfterMs: 1000 } });
const keysOf = (d: LoadedDevice) => [d, ...(d.backup ? [d.backup.device] : [])].map((x) => (x.connection as { host: string }).host);
const wiredOf = (ds: LoadedDevice[]) => new Map(ds.filter((d) => d.enabled).map((d) => [d.name, keysOf(d)]));

describe('planReload', () => {
  it('changes nothing for the same config, wherever it was written', () => {
    const a = [dev('a', 'h1'), dev('b', 'h2')];
    const b = a.map((d) => ({ ...d, source: { file: {} as never, index: 7 } })) as LoadedDevice[];
    expect(planReload(a, b, wiredOf(a), keysOf)).toEqual({ added: [], removed: [], changed: [], relink: [], down: [], wire: [] });
  });

  it('restarts only the link of a changed device, with every device on it', () => {
    const before = [dev('a', 'h1'), dev('a2', 'h1'), dev('b', 'h2')];
    const after = [dev('a', 'h1', { poll_interval_ms: 500 }), dev('a2', 'h1'), dev('b', 'h2')];
    expect(planReload(before, after, wiredOf(before), keysOf)).toEqual({
      added: [],
      removed: [],
      changed: ['a'],
      relink: ['h1'],
      down: ['a', 'a2'],
      wire: ['a', 'a2'],
    });
  });

  it('follows a device onto its other channel: the backup line restarts too, and its other users', () => {
    const before = [withBackup(dev('chiller', 'h1'), '/dev/ttyUSB0'), dev('meter', '/dev/ttyUSB0'), dev('other', 'h9')];
    const after = [withBackup(dev('chiller', 'h1', { poll_interval_ms: 2000 }), '/dev/ttyUSB0'), dev('meter', '/dev/ttyUSB0'), dev('other', 'h9')];
    const plan = planReload(before, after, wiredOf(before), keysOf);
    expect(plan.relink).toEqual(['/dev/ttyUSB0', 'h1']);
    expect(plan.down).toEqual(['chiller', 'meter']);
    expect(plan.wire).toEqual(['chiller', 'meter']);
  });

  it('adds, removes and treats enabled: false as removed', () => {
    const before = [dev('a', 'h1'), dev('b', 'h2'), dev('c', 'h3')];
    const after = [dev('a', 'h1'), dev('c', 'h3', { enabled: false }), dev('d', 'h4')];
    expect(planReload(before, after, wiredOf(before), keysOf)).toEqual({
      added: ['d'],
      removed: ['b', 'c'],
      changed: [],
      relink: ['h2', 'h3', 'h4'],
      down: ['b', 'c'],
      wire: ['d'],
    });
  });
});
