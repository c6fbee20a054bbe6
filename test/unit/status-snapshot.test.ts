// The status page's snapshot stays small however big the plant (issue 33: 689 KB at 137 devices).
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.js';
import { statusSnapshot, VALUES_IN_ALL, VALUES_PER_DEVICE } from '../../src/health/status.js';
import type { HealthAnswer } from '../../src/health/judge.js';

const latest = (device: string, n: number) =>
  new Map<string, Sample>(
    Array.from({ length: n }, (_, k) => [`p${k}`, { ts: 1, device, point: `p${k}`, value: 1.25 * k, quality: 'good', channel: 'primary' }] as const),
  );

describe('status snapshot', () => {
  it(`shows at most ${VALUES_PER_DEVICE} values per device and ${VALUES_IN_ALL} in all, and says how many points each has`, () => {
    for (const [devices, points] of [
      [3, 80],
      [137, 50],
      [5000, 20],
    ] as const) {
      const snap = statusSnapshot({
        site: 's',
        gateway: 'g',
        health: { ok: true } as unknown as HealthAnswer,
        devices: Array.from({ length: devices }, (_, i) => ({ name: `d${i}`, status: undefined, latest: latest(`d${i}`, points) })),
      });
      const shown = snap.devices.reduce((n, d) => n + d.values.length, 0);
      expect(shown).toBeLessThanOrEqual(Math.max(VALUES_IN_ALL, devices));
      expect(snap.devices.every((d) => d.values.length >= 1 && d.values.length <= VALUES_PER_DEVICE && d.points === points)).toBe(true);
      if (devices === 3) expect(snap.devices[0]!.values.length).toBe(VALUES_PER_DEVICE);
    }
  });
});
