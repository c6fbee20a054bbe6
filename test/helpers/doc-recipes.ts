// What the docs tell a user to copy, taken from the Markdown itself: a fenced block whose info
// string names it (```json node-red, ```toml telegraf, …). A test runs the block as written (with
// only the names of this test's broker, files and site put in), so a doc that drifts from the code
// fails `npm test`, and so does a test that no longer finds its block.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const docs = join(import.meta.dirname, '../../docs');

/** The body of the one block in `doc` (a file in docs/) whose info string is `info`. */
export function recipe(doc: string, info: string): string {
  const text = readFileSync(join(docs, doc), 'utf8');
  const blocks = [...text.matchAll(/^```([^\n]*)\n([\s\S]*?)^```/gm)].filter((m) => m[1]!.trim() === info);
  if (blocks.length !== 1) throw new Error(`docs/${doc}: expected one block \`\`\`${info}, found ${blocks.length}`);
  return blocks[0]![2]!;
}
