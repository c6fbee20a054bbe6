// The gateway's Sparkplug edge node (mqtt.format: sparkplug): its identity from the config, its
// view of the running devices and their latest samples, and DCMD writes through the same checks
// as the command topics (writable, allowed, min/max, the driver's type check, rate limit, expiry).
import type { Logger } from 'pino';
import { judgeValue, WriteRateLimit } from '../../commands/command.js';
import type { LoadedConfig } from '../../config/loaded.js';
import type { LatestSamples } from '../../core/device-pipeline.js';
import type { Value } from '../../core/driver.js';
import type { RunningDevices } from '../../core/running-devices.js';
import type { Metrics } from '../../health/metrics.js';
import { EdgeNode } from './edge-node.js';

export function sparkplugNode(
  config: LoadedConfig,
  bufferPath: string,
  deps: { log: Logger; metrics: Metrics; latest: LatestSamples; devices: () => RunningDevices },
): EdgeNode | undefined {
  const m = config.gateway.mqtt;
  if (m.format !== 'sparkplug' || !m.sparkplug) return undefined;
  const log = deps.log.child({ component: 'sparkplug' });
  const rate = new WriteRateLimit();
  const command = async (device: string, point: string, value: Value): Promise<void> => {
    const audit = (outcome: string, reason?: string) => {
      deps.metrics.writes.inc({ device, outcome });
      (outcome === 'ok' ? log.info : log.warn).call(log, { audit: 'write', via: 'DCMD', device, point, value, outcome, reason }, `write ${outcome}`);
    };
    const writer = deps.devices().writer(device);
    const p = writer?.point(point);
    if (!writer || !p) return audit('refused', `no running point ${device}/${point}`);
    if (!m.commands.enabled) return audit('refused', 'mqtt.commands.enabled is false: DCMD writes are off');
    const judged = judgeValue(p, value);
    if (!judged.ok) return audit(judged.outcome, judged.reason);
    const checked = writer.check(p, value);
    if (!checked.ok) return audit('refused', checked.reason);
    const turn = rate.take(`${device}/${point}`, p, Date.now());
    if (!turn.ok) return audit('refused', turn.reason);
    const r = await writer.write(p, checked.value, Date.now() + m.commands.default_expiry_ms);
    audit(r.outcome, r.reason);
  };
  return new EdgeNode(
    {
      group: m.sparkplug.group_id,
      node: m.sparkplug.edge_node_id ?? config.gateway.gateway_id,
      primaryHost: m.sparkplug.primary_host_id,
      dataQos: m.sparkplug.data_qos,
      bdSeqFile: `${bufferPath}.bdseq`,
    },
    {
      log,
      devices: () => deps.devices().running(),
      latest: (device, point) => deps.latest.get(device)?.get(point),
      command,
    },
  );
}
