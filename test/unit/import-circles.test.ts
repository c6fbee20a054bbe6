// No module of the gateway imports, through any chain, a module that imports it back (type
// imports included): every room can be read, tested and replaced from the bottom up.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function graph(): Map<string, string[]> {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(join(root, 'src'));
  walk(join(root, 'drivers'));
  const g = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) => m[1] ?? m[2]!);
    g.set(
      f,
      specs.map((s) => resolve(dirname(f), s.replace(/\.js$/, '.ts'))).filter((p) => existsSync(p)),
    );
  }
  return g;
}

describe('module graph', () => {
  it('has no import circles in src/ and drivers/', () => {
    const g = graph();
    expect(g.size).toBeGreaterThan(50);
    const circles: string[] = [];
    const onPath: string[] = [];
    const done = new Set<string>();
    const visit = (n: string) => {
      onPath.push(n);
      for (const m of g.get(n) ?? []) {
        const at = onPath.indexOf(m);
        if (at >= 0) circles.push([...onPath.slice(at), m].map((x) => relative(root, x)).join(' → '));
        else if (!done.has(m)) visit(m);
      }
      onPath.pop();
      done.add(n);
    };
    for (const n of g.keys()) if (!done.has(n)) visit(n);
    expect(circles).toEqual([]);
  });
});
