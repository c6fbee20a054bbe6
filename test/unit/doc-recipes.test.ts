// Every block the docs mark as a recipe (a fenced block with a name after its language, such as
// ```json node-red) is run by a test that takes it from the Markdown (test/helpers/doc-recipes.ts).
// This lists them, and fails for a named block no test takes — the one place to see what is covered.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
// docs/*.md, and the README (named as recipe() takes it: relative to docs/).
const docs = [...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')), '../README.md'];
const named = docs.flatMap((doc) =>
  [...readFileSync(join(root, 'docs', doc), 'utf8').matchAll(/^```(\S+) (\S+)\s*$/gm)].map((m) => ({ doc, info: `${m[1]} ${m[2]}` })),
);
const testFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
// Tests, and the .deb scripts CI runs after them (.ci/run: a release on a fresh Debian root).
const tests = [
  ...testFiles(join(root, 'test')),
  ...readdirSync(join(root, 'scripts'))
    .filter((f) => /^deb-.*\.ts$/.test(f))
    .map((f) => join(root, 'scripts', f)),
].map((f) => ({ f, text: readFileSync(f, 'utf8') }));
/** Blocks named for a reader, not run by a test (each says so in its doc). */
const NOT_RUN = new Set<string>([]);

describe('docs recipes', () => {
  it.each(named.map((n) => [`${n.doc}: ${n.info}`, n] as const))('%s is run by a test', (_, n) => {
    const users = tests.filter((t) => t.text.includes(`recipe('${n.doc}', '${n.info}')`)).map((t) => t.f.slice(root.length + 1));
    console.log(`docs/${n.doc} \`\`\`${n.info}: ${users.join(', ') || 'not run (documented as such)'}`);
    if (NOT_RUN.has(`${n.doc}: ${n.info}`)) expect(users).toEqual([]);
    else expect(users.length).toBeGreaterThan(0);
  });
});
