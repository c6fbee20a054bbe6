// docs/sparkplug.md's conformance table against the specification's own list of statements
// (../shared/peers/sparkplug/tck-assertions.tsv): every tck-id in exactly one row, none made up, and
// every test a row names exists under the title the legend gives.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const doc = readFileSync(join(root, 'docs/sparkplug.md'), 'utf8');
const section = doc.slice(doc.indexOf('## Conformance'));
const spec = readFileSync(join(root, '../shared/peers/sparkplug/tck-assertions.tsv'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => line.split('\t')[1]!.replace(/^tck-id-/, ''));
const rows = section.split('\n').filter((l) => l.startsWith('| `') && l.split('|').length === 5);
const legend = new Map(
  section
    .split('\n')
    .map((l) => /^\| ([a-z-]+) \| `([^`]+)`(?: › "([^"]+)")?/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1]!, { file: m[2]!, title: m[3] }]),
);

describe('Sparkplug conformance table', () => {
  it('lists every tck-id of the specification exactly once, and no other', () => {
    const listed = rows.flatMap((r) => [...r.split('|')[1]!.matchAll(/`([a-zA-Z0-9-]+)`/g)].map((m) => m[1]!));
    expect(spec.length).toBe(279);
    expect(
      listed.filter((id) => !spec.includes(id)),
      'ids not in the specification',
    ).toEqual([]);
    expect(
      spec.filter((id) => !listed.includes(id)),
      'ids missing from the table',
    ).toEqual([]);
    expect(
      listed.filter((id, i) => listed.indexOf(id) !== i),
      'ids in two rows',
    ).toEqual([]);
  });

  it('names only tests that exist', () => {
    expect(legend.size).toBeGreaterThanOrEqual(10);
    for (const [tag, { file, title }] of legend) {
      expect(existsSync(join(root, file)), `${tag}: ${file}`).toBe(true);
      if (title) expect(readFileSync(join(root, file), 'utf8'), `${tag}: "${title}" in ${file}`).toContain(title);
    }
    for (const r of rows) {
      const tags = r
        .split('|')[3]!
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '—');
      for (const t of tags) expect(legend.has(t), `tag "${t}" in: ${r.slice(0, 80)}`).toBe(true);
    }
  });
});
