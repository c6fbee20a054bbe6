// A device as its retained status topic and the status page show it: the primary link's health,
// and with a backup channel, which channel serves — reachable through the backup counts as
// degraded, since only the critical points come through. Pure: health and failover state in,
// the published view out.
import type { HealthSnapshot } from '../core/device-health.js';
import type { Failover } from '../core/failover.js';

export function deviceStatusView(h: HealthSnapshot, failover?: Pick<Failover, 'status' | 'endpoint'>): HealthSnapshot {
  if (!failover) return { ...h, channel: h.endpoint };
  const status = failover.status();
  if (status.active === 'backup' && (status.backup_state === 'up' || status.backup_state === 'degraded')) {
    return {
      ...h,
      state: 'degraded',
      reason: `primary ${h.state}${h.reason ? ` (${h.reason})` : ''}; critical points through the backup channel`,
      channel: failover.endpoint,
      failover: status,
    };
  }
  return { ...h, channel: failover.endpoint, failover: status };
}
