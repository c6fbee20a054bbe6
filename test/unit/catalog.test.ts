// Meta-tests: the error catalog matches docs/errors.md, and every drivers/* folder is registered.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../../drivers/registry.js';
import { ERROR_CODES } from '../../src/errors.js';

const root = join(import.meta.dirname, '../..');

describe('error catalog', () => {
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/`(GW_ERR_[A-Z_]+)`/g)].map((m) => m[1]));

  it('documents every code in docs/errors.md', () => {
    expect(Object.keys(ERROR_CODES).filter((c) => !documented.has(c))).toEqual([]);
  });

  it('documents no code that no longer exists (retired codes are listed as retired)', () => {
    const retired = new Set([...doc.matchAll(/`(GW_ERR_[A-Z_]+)` \(retired\)/g)].map((m) => m[1]));
    expect([...documented].filter((c) => !(c! in ERROR_CODES) && !retired.has(c))).toEqual([]);
  });
});

describe('driver registry', () => {
  const folders = readdirSync(join(root, 'drivers')).filter((f) => statSync(join(root, 'drivers', f)).isDirectory());

  it('registers a driver for every drivers/* folder', async () => {
    for (const folder of folders) {
      const mod = (await import(/* @vite-ignore */ new URL(`../../drivers/${folder}/index.ts`, import.meta.url).href)) as Record<string, { type?: string }>;
      const types = Object.values(mod)
        .map((v) => v?.type)
        .filter(Boolean);
      expect(types.length, `drivers/${folder} exports no DriverSpec`).toBeGreaterThan(0);
      for (const t of types) expect(DRIVERS.map((d) => d.type)).toContain(t);
    }
  });

  it('names each driver type after its folder (modbus_tcp lives in drivers/modbus)', () => {
    for (const d of DRIVERS) expect(folders.some((f) => d.type.startsWith(f.replace(/-/g, '_')))).toBe(true);
  });
});
