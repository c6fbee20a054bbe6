// Every output kind besides MQTT (which carries commands and statuses too and is always on). A
// new output is its folder and one line here: its schema becomes outputs.<key> in the gateway
// file, and the gateway makes it when its section is there and enabled.
import { influxdbOutput } from './influxdb/index.js';
import type { OutputKind } from './types.js';

export const OUTPUT_KINDS: readonly OutputKind[] = [influxdbOutput];
