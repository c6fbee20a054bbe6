// Each shipped model's card (models/<folder>/README.md) gives `edgeferry model eval` commands and
// what they print. Run here as written, on the real ELPV cells in ../shared/elpv, each must print
// exactly the card's figures (all but the latency line, which is the machine's).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODELS } from '../helpers/el-workdir.js';

const root = join(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/main.js');

/**
 * The card's recipes: each ```sh model-eval… block (a named block, as in docs/: scripts/lib/doc-recipes.ts)
 * with its ```text <same name> output block.
 */
function cardRecipes(card: string): { name: string; command: string; output: string }[] {
  const blocks = new Map([...card.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)].map((m) => [m[1]!.trim(), m[2]!] as const));
  return [...blocks.keys()]
    .filter((k) => /^sh model-eval[\w-]*$/.test(k))
    .map((k) => {
      const name = k.slice('sh '.length);
      return { name, command: blocks.get(k)!, output: blocks.get(`text ${name} output`) ?? '' };
    });
}

/** A shell command line (with `\` continuations) as argv; the card's commands use no quoting. */
const argv = (command: string) => command.replace(/\\\n/g, ' ').trim().split(/\s+/);
const withoutLatency = (text: string) =>
  text
    .split('\n')
    .filter((l) => l && !l.startsWith('latency '))
    .join('\n');

describe('model cards', () => {
  it('the ELPV cells the cards were measured on are here', () => {
    expect(existsSync(join(root, '../shared/elpv/labels.csv')), '../shared/elpv (the workplace copy of the ELPV dataset)').toBe(true);
  });

  for (const folder of MODELS) {
    const card = readFileSync(join(root, 'models', folder, 'README.md'), 'utf8');
    const recipes = cardRecipes(card);
    it(`${folder}: the card has model eval recipes`, () => {
      expect(recipes.length).toBeGreaterThan(0);
    });
    for (const r of recipes) {
      it(`${folder}: ${r.name} prints the card's figures`, () => {
        expect(r.output, `a \`\`\`text ${r.name} output block`).not.toBe('');
        const [bin, ...args] = argv(r.command);
        expect(bin).toBe('edgeferry');
        const res = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8' });
        expect(res.stderr).toBe('');
        expect(res.status).toBe(0);
        expect(withoutLatency(res.stdout)).toBe(withoutLatency(r.output));
      }, 120_000);
    }
  }
});
