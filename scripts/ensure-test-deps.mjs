// Part of `npm test`: the integration tests need Debian's mosquitto (broker), mosquitto-clients
// (the demo prints a mosquitto_sub command that a test runs) and socat (virtual serial lines for
// Modbus RTU) and systemd (systemd-analyze checks the unit file). Installs them when run as root,
// otherwise says exactly what to install.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const need = [
  ['/usr/sbin/mosquitto', 'mosquitto'],
  ['/usr/bin/mosquitto_sub', 'mosquitto-clients'],
  ['/usr/bin/socat', 'socat'],
  ['/usr/bin/systemd-analyze', 'systemd'],
].filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg);

if (need.length) {
  const cmd = `apt-get update && apt-get install -y ${need.join(' ')}`;
  if (process.getuid?.() === 0) {
    console.error(`installing test dependencies: ${cmd}`);
    execSync(cmd, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    console.error(`The tests need Debian packages that are missing: ${need.join(', ')}.\nInstall them with:\n  sudo ${cmd.replace('&& apt-get', '&& sudo apt-get')}`);
    process.exit(1);
  }
}
