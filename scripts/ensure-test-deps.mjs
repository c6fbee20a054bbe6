// Part of `npm test`: the integration tests need Debian's mosquitto (broker), mosquitto-clients
// (the demo prints a mosquitto_sub command that a test runs) and socat (virtual serial lines for
// Modbus RTU), systemd (systemd-analyze checks the unit file), chromium (the status page test,
// headless), influxdb and influxdb-client (the InfluxDB output's server, and the query docs/outputs.md shows),
// nats-server and rabbitmq-server (the brokers plants scale out to, test/integration/brokers.test.ts) and what the independent peers need (test/peers: pymodbus, libmodbus built with gcc,
// the mbedTLS libraries of the open62541 builds in ../shared/peers). Installs them when run as root, otherwise says exactly what to install.
import { execSync } from 'node:child_process';
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node scripts/ensure-test-deps.mjs\nInstalls (as root) or names the Debian packages the tests need.');
  process.exit(0);
}
import { existsSync, readdirSync } from 'node:fs';

/** A shared library in any of the multiarch folders. */
const lib = (name) => {
  for (const d of [
    '/usr/lib',
    ...readdirSync('/usr/lib')
      .filter((x) => x.endsWith('-linux-gnu'))
      .map((x) => `/usr/lib/${x}`),
  ])
    if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  return `/usr/lib/${name}`;
};

const need = [
  ['/usr/sbin/mosquitto', 'mosquitto'],
  ['/usr/bin/mosquitto_sub', 'mosquitto-clients'],
  ['/usr/bin/socat', 'socat'],
  ['/usr/bin/systemd-analyze', 'systemd'],
  ['/usr/lib/python3/dist-packages/pymodbus', 'python3-pymodbus'],
  ['/usr/lib/python3/dist-packages/serial_asyncio', 'python3-serial-asyncio'],
  ['/usr/include/modbus/modbus.h', 'libmodbus-dev'],
  ['/usr/bin/gcc', 'gcc'],
  ['/usr/include/stdio.h', 'libc6-dev'],
  ['/usr/bin/mbpoll', 'mbpoll'],
  ['/usr/bin/chromium', 'chromium'],
  ['/usr/bin/influxd', 'influxdb'],
  ['/usr/bin/influx', 'influxdb-client'],
  ['/usr/bin/protoc', 'protobuf-compiler'],
  ['/usr/lib/python3/dist-packages/google/protobuf', 'python3-protobuf'],
  ['/usr/lib/python3/dist-packages/paho', 'python3-paho-mqtt'],
  ['/usr/sbin/nats-server', 'nats-server'],
  ['/usr/lib/rabbitmq/bin/rabbitmq-server', 'rabbitmq-server'],
  [lib('libmbedcrypto.so.7'), 'libmbedcrypto7'],
  [lib('libmbedx509.so.1'), 'libmbedx509-1'],
]
  .filter(([bin]) => !existsSync(bin))
  .map(([, pkg]) => pkg);

if (need.length) {
  const cmd = `apt-get update && apt-get install -y ${need.join(' ')}`;
  if (process.getuid?.() === 0) {
    console.error(`installing test dependencies: ${cmd}`);
    execSync(cmd, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    console.error(
      `The tests need Debian packages that are missing: ${need.join(', ')}.\nInstall them with:\n  sudo ${cmd.replace('&& apt-get', '&& sudo apt-get')}`,
    );
    process.exit(1);
  }
}
