// The configuration blocks the docs tell a user to paste (issue 34), taken from the Markdown
// (test/helpers/doc-recipes.ts) and put into a gateway file and a device map as a user would —
// only the broker's address and the CA replaced — then judged by `edgeferry check`'s own loader:
// as written, and with every commented-out option line uncommented (a doc that shows an option
// with a value the loader refuses, or an option that no longer exists, fails here).
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/yaml-file.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeferry-doc-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(join(import.meta.dirname, '../fixtures/ca.pem'), join(dir, 'ca.pem'));
writeFileSync(join(dir, 'command-token'), 'a-long-shared-secret-for-the-test\n');
writeFileSync(join(dir, 'influx-token'), 'an-influxdb-api-token\n');
copyFileSync(join(import.meta.dirname, '../fixtures/ca.pem'), join(dir, 'influx-ca.pem'));

/** `# key: value  # note` → `key: value  # note` (an option shown commented out). */
const uncomment = (block: string) => block.replace(/^(\s*)# ([a-z_]+: )/gm, '$1$2');
/** Where the doc names a file on the installed box, this test's folder. */
const local = (block: string) => block.replaceAll('/etc/edgeferry/', `${dir}/`);
type Obj = Record<string, unknown>;
const merge = (a: Obj, b: Obj): Obj => {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k] as Obj, v as Obj) : v;
  }
  return out;
};
const gateway = (): Obj => ({
  version: 1,
  site: 'plant-a',
  gateway_id: 'gw-01',
  mqtt: { url: 'mqtts://127.0.0.1:8883', tls: { ca: 'ca.pem' } },
  devices: ['devices.yaml'],
});
const device = (points: unknown[]): Obj => ({
  version: 1,
  devices: [{ name: 'boiler', driver: 'modbus_tcp', poll_interval_ms: 1000, connection: { host: '127.0.0.1', port: 502 }, points }],
});

function check(gw: Obj, devices: Obj): string[] {
  writeFileSync(join(dir, 'gateway.yaml'), stringify(gw));
  writeFileSync(join(dir, 'devices.yaml'), stringify(devices));
  return new ConfigLoader(DRIVERS, dir).check([join(dir, 'gateway.yaml')]).problems.map(formatProblem);
}
const plainPoints = device([{ name: 'temp', address: 0 }]);

describe('config blocks in the docs pass check', () => {
  for (const shown of ['as written', 'with every option uncommented'] as const) {
    const take = (block: string) => local(shown === 'as written' ? block : uncomment(block));

    it(`sparkplug.md: sparkplug-config, ${shown}`, () => {
      const block = parse(take(recipe('sparkplug.md', 'yaml sparkplug-config'))) as Obj;
      // Only the broker's address is this test's.
      const gw = merge(gateway(), merge(block, { mqtt: { url: 'mqtts://127.0.0.1:8883' } }));
      expect(check(gw, plainPoints)).toEqual([]);
    });

    it(`writes.md: commands-config and writable-points, ${shown}`, () => {
      const commands = parse(take(recipe('writes.md', 'yaml commands-config'))) as Obj;
      const points = parse(take(recipe('writes.md', 'yaml writable-points'))) as { points: unknown[] };
      expect(points.points.length).toBeGreaterThan(0);
      expect(check(merge(gateway(), commands), device(points.points))).toEqual([]);
    });

    it(`outputs.md: influxdb-config and influxdb-v2-config, ${shown}`, () => {
      const v1 = parse(take(recipe('outputs.md', 'yaml influxdb-config'))) as Obj;
      const v2 = parse(take(recipe('outputs.md', 'yaml influxdb-v2-config'))) as Obj;
      expect(check(merge(gateway(), v1), plainPoints)).toEqual([]);
      expect(check(merge(gateway(), v2), plainPoints)).toEqual([]);
    });
  }

  it('a block that drifted fails: an option the loader does not know is named', () => {
    const block = parse(recipe('sparkplug.md', 'yaml sparkplug-config').replace('group_id:', 'group:')) as Obj;
    expect(check(merge(gateway(), block), plainPoints).join('\n')).toMatch(/sparkplug/);
  });
});
