// The one list of drivers (STYLE rule 1). Adding a driver = one folder + one line here.
import type { DriverSpec } from '../src/core/driver.js';
import { modbusRtu, modbusTcp } from './modbus/index.js';
import { opcua } from './opcua/index.js';
import { bacnetMstp } from './bacnet-mstp/index.js';

export const DRIVERS: readonly DriverSpec[] = [modbusTcp, modbusRtu, opcua, bacnetMstp];

export const driverByType = (type: string): DriverSpec | undefined => DRIVERS.find((d) => d.type === type);
