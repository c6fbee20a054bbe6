// node dist/simulators/modbus/cli.js --map config/devices/line1.example.yaml --device press-1 --port 5020
// Serves the points of one device of a device map with generated values until Ctrl-C.
import { scriptArgs } from '../../src/core/script-args.js';
import { DRIVERS } from '../../drivers/registry.js';
import type { ModbusPointConfig } from '../../drivers/modbus/schema.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem, YamlFile } from '../../src/config/yaml-file.js';
import { registersFromPoints } from './from-device-map.js';
import { start } from './index.js';

const values = scriptArgs('sim:modbus', 'Serves the points of one device of a device map with generated values until Ctrl-C.', {
  map: { type: 'string' },
  device: { type: 'string' },
  port: { type: 'string', default: '5020' },
  host: { type: 'string', default: '127.0.0.1' },
});
if (!values.map) {
  console.error('usage: modbus-sim --map DEVICE_MAP.yaml [--device NAME] [--port 5020] [--host 127.0.0.1]');
  process.exit(2);
}
const loader = new ConfigLoader(DRIVERS, process.cwd());
const { devices, problems } = loader.loadDeviceMap(new YamlFile(values.map, values.map));
if (problems.length) {
  for (const p of problems) console.error(formatProblem(p));
  process.exit(3);
}
const device = values.device ? devices.find((d) => d.name === values.device) : devices[0];
if (!device) {
  console.error(`no device "${values.device}" in ${values.map}`);
  process.exit(2);
}
const sim = await start({ port: Number(values.port), host: values.host, registers: registersFromPoints(device.points as ModbusPointConfig[]) });
console.log(`simulating "${device.name}" (${device.points.length} points) on ${values.host}:${sim.port}`);
process.on('SIGINT', () => void sim.stop().then(() => process.exit(0)));
process.on('SIGTERM', () => void sim.stop().then(() => process.exit(0)));
