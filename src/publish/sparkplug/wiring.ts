// The gateway's Sparkplug edge node (mqtt.format: sparkplug): its identity from the config, its
// view of the running devices and their latest samples, and DCMD writes through the same write
// gate as the command topics (writable, allowed, min/max, the driver's type check, the shared rate
// limit, expiry, audit).
import type { Logger } from 'pino';
import type { WriteGate } from '../../commands/write-gate.js';
import type { LoadedConfig } from '../../config/loaded.js';
import type { LatestSamples } from '../../core/device-pipeline.js';
import type { DriverSpec, Value } from '../../core/driver.js';
import type { RunningDevices } from '../../core/running-devices.js';
import type { Metrics } from '../../health/metrics.js';
import { EdgeNode, type Unsent } from './edge-node.js';

export function sparkplugNode(
  config: LoadedConfig,
  bufferPath: string,
  deps: { log: Logger; gate: WriteGate; latest: LatestSamples; devices: RunningDevices; drivers: readonly DriverSpec[]; metrics: Metrics },
): EdgeNode | undefined {
  const m = config.gateway.mqtt;
  if (m.format !== 'sparkplug' || !m.sparkplug) return undefined;
  const log = deps.log.child({ component: 'sparkplug' });
  const command = async (device: string, point: string, value: Value): Promise<void> => {
    const r = m.commands.enabled
      ? await deps.gate.write(device, point, value, Date.now() + m.commands.default_expiry_ms)
      : { outcome: 'refused' as const, reason: 'mqtt.commands.enabled is false: DCMD writes are off' };
    deps.gate.audit({ via: 'DCMD', device, point, value, outcome: r.outcome, reason: r.reason, code: r.code });
  };
  return new EdgeNode(
    {
      group: m.sparkplug.group_id,
      node: m.sparkplug.edge_node_id ?? config.gateway.gateway_id,
      primaryHost: m.sparkplug.primary_host_id,
      dataQos: m.sparkplug.data_qos,
      reportByException: m.sparkplug.report_by_exception,
      bdSeqFile: `${bufferPath}.bdseq`,
    },
    {
      log,
      devices: () =>
        deps.devices.running().map((d) => {
          const spec = deps.drivers.find((s) => s.type === d.driver);
          return { name: d.name, points: d.points, declared: (p) => spec?.valueType(p) };
        }),
      latest: (device, point) => deps.latest.get(device)?.get(point),
      command,
      unsent: (reason: Unsent) => deps.metrics.sparkplugUnsent.inc({ reason }),
    },
  );
}
