// A YAML file kept as a document with a LineCounter, so any problem found in the data can be
// pointed back at the line and column the user wrote.
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

export type YamlPath = (string | number)[];

export interface ConfigProblem {
  /** The file as the user would name it (relative to the working directory where possible). */
  file: string;
  line: number;
  col: number;
  /** e.g. devices[0].points[3].area */
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path}: ${p.message}`;
}

export function formatPath(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || '(document)';
}

export class YamlFile {
  doc: Document | undefined;
  readonly data: unknown;
  readonly problems: ConfigProblem[] = [];
  private readonly lines = new LineCounter();

  constructor(
    readonly display: string,
    readonly abs: string,
  ) {
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.problems.push({ file: display, line: 1, col: 1, path: '(file)', message: `expected a readable YAML file, got ${code}` });
      return;
    }
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const e of this.doc.errors) {
      const pos = this.lines.linePos(e.pos[0]);
      const what =
        e.code === 'DUPLICATE_KEY'
          ? `expected each key once in a map, got "${/^[^:\n]*/.exec(text.slice(e.pos[0]))![0].trim()}" again`
          : `expected valid YAML, got ${e.message.split('\n')[0]}`;
      this.problems.push({ file: display, line: pos.line, col: pos.col, path: '(yaml)', message: what });
    }
    this.data = this.problems.length ? undefined : this.doc.toJS();
  }

  /**
   * Drops the parsed document once loading is done: the running gateway keeps the values only,
   * and the document (a node object per scalar, pair and map) is several times their size —
   * 42,747 scalars and 21,511 pairs for the 137-device seed plant. Problems found later point at
   * line 1.
   */
  release(): void {
    this.doc = undefined;
  }

  /**
   * Where to point for `path`: the value node, or for `key` the key itself (unknown keys), or the
   * nearest existing ancestor when the path does not exist (missing keys).
   */
  locate(path: YamlPath, key?: string): { line: number; col: number } {
    let node: unknown = this.doc?.contents;
    let offset = 0;
    const take = (n: unknown) => {
      const r = (n as Node | null)?.range;
      if (r) offset = r[0];
    };
    take(node);
    for (const seg of path) {
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
        next = pair?.value;
        if (pair && !next) take(pair.key);
      } else if (isSeq(node) && typeof seg === 'number') next = node.items[seg];
      if (!next) break;
      node = next;
      take(node);
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      if (pair) take(pair.key);
    }
    return this.lines.linePos(offset);
  }

  problem(path: YamlPath, message: string, key?: string): ConfigProblem {
    const pos = this.locate(path, key);
    const shown = key !== undefined ? [...path, key] : path;
    return { file: this.display, line: pos.line, col: pos.col, path: formatPath(shown), message };
  }
}
