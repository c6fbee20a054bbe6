// Golden cases: each folder under test/check holds a broken config (gateway.yaml, else
// devices.yaml) and expected.txt, the exact lines `edgeferry check` must print. Adding a case
// takes no code.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/yaml-file.js';

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

  it('passes the shipped example and demo configs with exit code 0', () => {
    const files = ['config/gateway.example.yaml', 'config/demo.yaml', 'config/devices/line1.example.yaml', 'config/demo-devices.yaml'];
    const r = spawnSync(process.execPath, [cli, 'check', ...files], { cwd: root, encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
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

  it('exits 2 on a usage error', () => {
    expect(() => execFileSync(process.execPath, [cli, 'check'], { cwd: root, stdio: 'pipe' })).toThrow(expect.objectContaining({ status: 2 }));
  });
});
