// The shipped unit file, as systemd itself reads it: `systemd-analyze verify` finds nothing, and
// `systemd-analyze security --offline=yes` rates its exposure 2.0 or lower. The unit is checked
// with this machine's node in place of the bundled runtime's (systemd-analyze wants the file to exist).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const unitText = readFileSync(join(import.meta.dirname, '../../systemd/edgeferry.service'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'edgeferry-unit-'));
const unit = join(dir, 'edgeferry.service');
writeFileSync(unit, unitText.replaceAll('/opt/edgeferry/current/runtime/bin/node ', `${process.execPath} `));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const analyze = '/usr/bin/systemd-analyze';

const setting = (key: string) =>
  unitText
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe('systemd unit', () => {
  it('passes systemd-analyze verify with no findings', () => {
    const r = spawnSync(analyze, ['verify', unit], { encoding: 'utf8' });
    expect(r.error, 'systemd-analyze is missing: apt-get install systemd').toBeUndefined();
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('has an exposure of 2.0 or lower in systemd-analyze security --offline=yes', () => {
    const out = execFileSync(analyze, ['security', '--offline=yes', '--no-pager', unit], { encoding: 'utf8' });
    const m = /Overall exposure level for edgeferry\.service: (\d+\.\d)/.exec(out);
    expect(m, out.slice(-400)).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });

  it('is a notify service with a watchdog, a reload, and a stop timeout longer than the 5 s drain', () => {
    expect(setting('Type')).toEqual(['notify']);
    expect(setting('WatchdogSec')).toEqual(['30s']);
    expect(setting('ExecReload')[0]).toMatch(/kill -HUP \$MAINPID/);
    expect(Number.parseInt(setting('TimeoutStopSec')[0]!, 10)).toBeGreaterThan(5);
    expect(setting('CapabilityBoundingSet')).toEqual(['']);
    expect(setting('ExecStartPre')[0]).toMatch(/main\.js check /);
  });
});
