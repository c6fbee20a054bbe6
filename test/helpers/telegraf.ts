// A real Telegraf (not in Debian 12): built once from the Go module proxy into .cache/telegraf with
// only the plugins the tests use — the MQTT consumer of docs/integration.md, and the InfluxDB v1
// and v2 write listeners an output of the gateway writes to (an implementation of InfluxDB's
// write API nobody here wrote).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
export const TELEGRAF = 'v1.37.2';
const PLUGINS = 'custom,inputs.mqtt_consumer,inputs.influxdb_listener,inputs.influxdb_v2_listener,outputs.file,parsers.json_v2,serializers.json';

/** The telegraf binary, built if needed (Go from /usr/local/go or PATH). */
export function installTelegraf(): string {
  const home = join(root, '.cache/telegraf');
  const bin = join(home, 'bin', 'telegraf');
  const stamp = join(home, 'bin', 'VERSION');
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8') === `${TELEGRAF} ${PLUGINS}`) return bin;
  const go = ['/usr/local/go/bin/go', '/usr/lib/go/bin/go'].find(existsSync) ?? 'go';
  mkdirSync(join(home, 'bin'), { recursive: true });
  execFileSync(go, ['install', '-tags', PLUGINS, `github.com/influxdata/telegraf/cmd/telegraf@${TELEGRAF}`], {
    env: { ...process.env, GOBIN: join(home, 'bin'), GOPATH: join(home, 'go'), GOFLAGS: '-modcacherw', CGO_ENABLED: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(stamp, `${TELEGRAF} ${PLUGINS}`);
  return bin;
}

/** One metric as Telegraf's file output writes it with data_format "json" (json_timestamp_units "1ms"). */
export interface TelegrafMetric {
  name: string;
  fields: { value?: number; seq?: number; quality?: string };
  tags: Record<string, string>;
  timestamp: number;
}

/** Every metric in a Telegraf JSON output file so far (none before the file exists). */
export function telegrafMetrics(file: string): TelegrafMetric[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as TelegrafMetric)
    : [];
}
