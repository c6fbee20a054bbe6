// Golden cases: each folder under test/check holds a broken config (gateway.yaml, else
// devices.yaml) and expected.txt, the exact lines `edgeferry check` must print. Adding a case
// takes no code.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem, MAX_FILE_BYTES } from '../../src/config/yaml-file.js';

const root = join(import.meta.dirname, '../..');
const casesDir = join(root, 'test/check');
const cases = readdirSync(casesDir).filter((d) => existsSync(join(casesDir, d, 'expected.txt')));

describe('edgeferry check golden cases', () => {
  it('has at least 15 broken configs', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('%s', (name) => {
    const dir = join(casesDir, name);
    const main = existsSync(join(dir, 'gateway.yaml')) ? 'gateway.yaml' : 'devices.yaml';
    const { problems } = new ConfigLoader(DRIVERS, root).check([join('test/check', name, main)]);
    const expected = readFileSync(join(dir, 'expected.txt'), 'utf8').trim().split('\n');
    expect(problems.map(formatProblem)).toEqual(expected);
  });
});

describe('edgeferry check command', () => {
  const cli = join(root, 'dist/src/main.js');

  it('warns about a broker certificate that is not verified, without failing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-check-'));
    try {
      writeFileSync(
        join(dir, 'devices.yaml'),
        'version: 1\ndevices:\n  - { name: plc, driver: modbus_tcp, poll_interval_ms: 1000, connection: { host: 127.0.0.1 }, points: [{ name: v, address: 0 }] }\n',
      );
      writeFileSync(
        join(dir, 'gateway.yaml'),
        'version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtts://broker.plant.lan:8883\n  tls:\n    verify_server: false\n',
      );
      const r = spawnSync(process.execPath, [cli, 'check', 'gateway.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(r.stdout).toMatch(/^gateway\.yaml:8:20 mqtt\.tls\.verify_server: warning: the broker certificate and host name are NOT verified/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("warns, without failing, when topics keep a '.' that NATS 2.9 and RabbitMQ do not carry (mqtt.topic_dot '.')", () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-check-'));
    try {
      writeFileSync(
        join(dir, 'devices.yaml'),
        'version: 1\ndevices:\n  - { name: 10.0.0.5, driver: modbus_tcp, poll_interval_ms: 1000, connection: { host: 127.0.0.1 }, points: [{ name: Line1.Setpoint, address: 0 }] }\n',
      );
      const gateway = (extra: string) =>
        writeFileSync(
          join(dir, 'gateway.yaml'),
          `version: 1\nsite: s\ngateway_id: g\ndevices: [devices.yaml]\nmqtt:\n  url: mqtts://broker.plant.lan:8883\n${extra}`,
        );
      gateway("  topic_dot: '.'\n");
      const kept = spawnSync(process.execPath, [cli, 'check', 'gateway.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(kept.stdout).toMatch(
        /^gateway\.yaml:\d+:\d+ mqtt\.topic_dot: warning: topics keep the '\.' of 2 names \(e\.g\. "10\.0\.0\.5"\): NATS 2\.9 drops the connection on them/m,
      );
      expect(kept.status).toBe(0);
      // The default ('_') carries them on every broker: nothing to say.
      gateway('');
      const mapped = spawnSync(process.execPath, [cli, 'check', 'gateway.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(mapped.stdout).toBe('');
      expect(mapped.status).toBe(0);
      // A space of the template's own: NATS refuses it in any version.
      gateway("  topic_template: 'plant a/{gateway}/{device}/{point}'\n");
      const spaced = spawnSync(process.execPath, [cli, 'check', 'gateway.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(spaced.stdout).toMatch(/mqtt\.topic_template: warning: "plant a\/\{gateway\}\/\{device\}\/\{point\}" has a space of its own/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes the demo configs with exit code 0', () => {
    const r = spawnSync(process.execPath, [cli, 'check', 'config/demo.yaml', 'config/demo-devices.yaml'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('reports every placeholder of the shipped examples (exit 3), and run refuses to start on them', () => {
    const r = spawnSync(process.execPath, [cli, 'check', 'config/gateway.example.yaml', 'config/devices/rs485-meters.example.yaml'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status).toBe(3);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual([
      'mqtt.url:',
      'mqtt.password_file:',
      'mqtt.tls.ca:',
      'devices[0].connection.host:',
      'devices[1].connection.host:',
      'devices[0].connection.port:',
      'devices[1].connection.port:',
    ]);
    expect(r.stdout).toContain('got "broker.plant-a.example", a name reserved for examples');
    expect(r.stdout).toContain('got "192.0.2.11", an address reserved for documentation');
    expect(r.stdout).toContain('(-----BEGIN CERTIFICATE-----), got "secrets/ca.example.pem", which holds none');
    const run = spawnSync(process.execPath, [cli, 'run', '--config', 'config/gateway.example.yaml'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(3);
    expect(run.stderr).toContain('Refusing to start');
    expect(run.stderr).toContain('mqtt.password_file: expected the broker password');
  });

  it('passes the shipped examples once the placeholders are replaced', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-edited-'));
    try {
      cpSync(join(root, 'config'), dir, { recursive: true });
      const edit = (f: string, from: RegExp, to: string) => writeFileSync(join(dir, f), readFileSync(join(dir, f), 'utf8').replace(from, to));
      edit('gateway.example.yaml', /broker\.plant-a\.example/, 'broker.plant-a.lan');
      writeFileSync(join(dir, 'secrets/mqtt-password.example'), 's3cret-from-the-broker-admin\n');
      writeFileSync(join(dir, 'secrets/ca.example.pem'), readFileSync(join(root, 'test/fixtures/ca.pem'), 'utf8'));
      edit('devices/line1.example.yaml', /192\.0\.2\.11/, '10.20.1.11');
      edit('devices/line1.example.yaml', /192\.0\.2\.40/, '10.20.1.40');
      edit('devices/rs485-meters.example.yaml', /CHANGE-ME-/g, '');
      const r = spawnSync(process.execPath, [cli, 'check', 'gateway.example.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(r.stdout).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints one line per problem and exits 3 on a broken config', () => {
    const r = spawnSync(process.execPath, [cli, 'check', 'test/check/wrong-types/devices.yaml'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stdout).toBe(readFileSync(join(casesDir, 'wrong-types/expected.txt'), 'utf8'));
    expect(r.stderr).toContain('7 problems found');
  });

  it('refuses to run a broken config, with the same problems, exit 3', () => {
    const r = spawnSync(process.execPath, [cli, 'run', '--config', 'test/check/topic-collision/gateway.yaml'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('Refusing to start');
    expect(r.stderr).toContain(readFileSync(join(casesDir, 'topic-collision/expected.txt'), 'utf8').trim());
  });

  it('refuses to run an empty gateway file with the same line as check, exit 3 (not a crash)', () => {
    const r = spawnSync(process.execPath, [cli, 'run', '--config', 'test/check/empty-gateway-file/gateway.yaml'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(readFileSync(join(casesDir, 'empty-gateway-file/expected.txt'), 'utf8').trim());
    expect(r.stderr).not.toMatch(/TypeError|at .*\.js/);
  });

  it('refuses a file over the size limit with its name, without reading it, exit 3', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-big-'));
    try {
      const big = join(dir, 'devices.yaml');
      writeFileSync(big, Buffer.alloc(MAX_FILE_BYTES + 1, '#')); // one long comment line
      const r = spawnSync(process.execPath, [cli, 'check', big], { cwd: root, encoding: 'utf8' });
      expect(r.status).toBe(3);
      expect(r.stdout).toMatch(
        new RegExp(
          `^${big.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:1 \\(file\\): expected a file of at most 32 MiB \\(split large device maps over several files\\), got \\d+\\.\\d MiB\\n$`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers --help and -h for every command in edgeferry --help, on stdout with exit 0', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { cwd: root, encoding: 'utf8' });
    expect(help.status).toBe(0);
    const commands = [...new Set([...help.stdout.matchAll(/^ {2}edgeferry (\w+)/gm)].map((m) => m[1]!))];
    expect(commands).toEqual(expect.arrayContaining(['run', 'check', 'demo', 'sub', 'browse', 'buffer', 'model']));
    for (const c of commands) {
      for (const flag of ['--help', '-h']) {
        const r = spawnSync(process.execPath, [cli, c, flag], { cwd: root, encoding: 'utf8' });
        expect(r.status, `edgeferry ${c} ${flag}`).toBe(0);
        expect(r.stdout, `edgeferry ${c} ${flag}`).toMatch(new RegExp(`^usage: edgeferry ${c} `));
      }
    }
    // Subcommands too.
    for (const args of [
      ['buffer', 'stats', '--help'],
      ['model', 'eval', '-h'],
    ]) {
      const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: edgeferry ${args[0]} `));
    }
  });

  it('names the command and prints its usage on an unknown option, exit 2', () => {
    const r = spawnSync(process.execPath, [cli, 'buffer', 'stats', '--bogus'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^edgeferry buffer: Unknown option '--bogus'/);
    expect(r.stderr).toContain('usage: edgeferry buffer stats|peek|export');
  });

  it('exits 2 on a usage error', () => {
    expect(() => execFileSync(process.execPath, [cli, 'check'], { cwd: root, stdio: 'pipe' })).toThrow(expect.objectContaining({ status: 2 }));
  });
});
