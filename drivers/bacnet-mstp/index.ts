import type { DeviceConfig, DeviceIssue, DriverSpec } from '../../src/core/driver.js';
import { didYouMean } from '../../src/config/messages.js';
import { MstpDriver, type MstpPlan } from './driver.js';
import { MstpLink } from './link.js';
import { declaredType, parseObject, PROPERTY_NAMES, propertyId } from './objects.js';
import { MstpConnection, MstpPoint, type MstpConnectionConfig, type MstpPointConfig } from './schema.js';

export function validateMstpDevice(d: DeviceConfig<MstpConnectionConfig, MstpPointConfig>): DeviceIssue[] {
  const issues: DeviceIssue[] = [];
  const c = d.connection;
  if (c.mac === c.station)
    issues.push({ path: ['connection', 'mac'], message: `expected the device's MAC to differ from the gateway's station ${c.station}, got ${c.mac}` });
  if (c.station > c.max_master)
    issues.push({ path: ['connection', 'station'], message: `expected the gateway's station at or below max_master ${c.max_master}, got ${c.station}` });
  d.points.forEach((p, i) => {
    if (p.writable && (!/^(analog|binary|multi-state)-(output|value):/.test(p.object) || p.property !== 'present-value')) {
      issues.push({
        path: ['points', i, 'writable'],
        message: `expected writable only on the present-value of an output or value object, got writable: true on ${p.object} ${p.property}`,
      });
    }
    if (p.write_priority !== undefined && !p.writable)
      issues.push({ path: ['points', i, 'write_priority'], message: 'expected write_priority only on a writable point' });
    if (propertyId(p.property) === undefined) {
      issues.push({
        path: ['points', i, 'property'],
        message: `expected a BACnet property name such as present-value or status-flags, got "${p.property}"${didYouMean(p.property, PROPERTY_NAMES)}`,
      });
    }
  });
  return issues;
}

export const bacnetMstp: DriverSpec<MstpConnectionConfig, MstpPointConfig, MstpPlan, MstpLink> = {
  type: 'bacnet_mstp',
  summary: 'BACnet MS/TP master node on an RS485 line (our own Clause 9 data link): Who-Is/I-Am, ReadProperty, ReadPropertyMultiple and WriteProperty.',
  connectionSchema: MstpConnection,
  pointSchema: MstpPoint,
  validate: validateMstpDevice,
  writes: true,
  valueType: (p) => declaredType(parseObject(p.object), propertyId(p.property)!),
  linkKey: (d) => `mstp:${d.connection.port}`,
  sharedConnectionKeys: ['baud_rate', 'station', 'max_master', 'max_info_frames', 'usage_timeout_ms'],
  createLink: (d, ctx) => new MstpLink(d.connection, ctx.log),
  create: (device, ctx) => new MstpDriver(device, ctx),
};
