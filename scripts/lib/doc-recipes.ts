// What the docs tell a user to copy, taken from the Markdown itself: a fenced block whose info
// string names it (```json node-red, ```toml telegraf, …). A test runs the block as written (with
// only the names of this test's broker, files and site put in), so a doc that drifts from the code
// fails `npm test`, and so does a test that no longer finds its block. The .deb scripts that CI
// runs (scripts/deb-*.ts) take the install steps from docs/install.md the same way.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The checkout's docs/, from here (scripts/lib in the sources, dist/scripts/lib when built). */
const docs = (() => {
  let d = import.meta.dirname;
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return join(d, 'docs');
})();

/** The body of the one block in `doc` (a file in docs/) whose info string is `info`. */
export function recipe(doc: string, info: string): string {
  const text = readFileSync(join(docs, doc), 'utf8');
  const blocks = [...text.matchAll(/^```([^\n]*)\n([\s\S]*?)^```/gm)].filter((m) => m[1]!.trim() === info);
  if (blocks.length !== 1) throw new Error(`docs/${doc}: expected one block \`\`\`${info}, found ${blocks.length}`);
  return blocks[0]![2]!;
}
