// Every script, simulator and benchmark an engineer may start answers --help with its usage
// (exit 0), and a wrong option with one line and the usage (exit 2) — never a stack trace.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
/** Entry points; bench/lib, bench/profile and the line hub (forked by a bench) are not commands. */
const entries = [
  ...readdirSync(join(root, 'dist/bench'))
    .filter((f) => f.endsWith('.js') && !['lib.js', 'profile.js', 'line-hub.js'].includes(f))
    .map((f) => `dist/bench/${f}`),
  'dist/simulators/modbus/cli.js',
  ...readdirSync(join(root, 'dist/scripts'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => `dist/scripts/${f}`),
  ...readdirSync(join(root, 'scripts'))
    .filter((f) => f.endsWith('.mjs'))
    .map((f) => `scripts/${f}`),
];

describe('scripts answer --help', () => {
  it('finds the entry points', () => {
    expect(entries.length).toBeGreaterThanOrEqual(18);
  });
  it.each(entries)('%s', (file) => {
    const help = spawnSync(process.execPath, [file, '--help'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^usage: /);
    if (file === 'scripts/test-runtime.mjs' || file === 'scripts/ensure-test-deps.mjs') return; // test-runtime and ensure-test-deps take no options
    const wrong = spawnSync(process.execPath, [file, '--no-such-option'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/Unknown option '--no-such-option'/);
    expect(wrong.stderr).not.toMatch(/^\s+at /m);
  });
});
