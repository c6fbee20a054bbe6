// Checks of the write settings of a device's points (writable, min, max, allowed) that hold for
// every driver; the driver's own (which areas or objects can be written) are in its validate().
import type { DeviceConfig, DeviceIssue, DriverSpec } from '../core/driver.js';

export function writeIssues(spec: DriverSpec, device: DeviceConfig): DeviceIssue[] {
  const issues: DeviceIssue[] = [];
  device.points.forEach((p, i) => {
    const at = (field: string) => ['points', i, field];
    if (p.writable && !spec.writes) {
      issues.push({ path: at('writable'), message: `expected writable only with a driver that writes, got writable: true with driver ${spec.type}` });
    }
    if (!p.writable) {
      for (const key of ['min', 'max', 'allowed'] as const) {
        if (p[key] !== undefined)
          issues.push({ path: at(key), message: `expected ${key} only on a writable point (writable: true), got ${key} on a read-only one` });
      }
    }
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) issues.push({ path: at('max'), message: `expected max ≥ min (${p.min}), got ${p.max}` });
    if (p.allowed && (p.min !== undefined || p.max !== undefined)) {
      issues.push({ path: at('allowed'), message: 'expected either allowed or min/max, got both' });
    }
  });
  return issues;
}
