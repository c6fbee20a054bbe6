// A YAML file kept as a document with a LineCounter, so any problem found in the data can be
// pointed back at the line and column the user wrote.
import { readFileSync, statSync } from 'node:fs';
import jsyaml from 'js-yaml';
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

/** Larger files are refused: a plant's largest maps are a few MB (100,000 points are about 7 MB). */
export const MAX_FILE_BYTES = 32 << 20;
/** Alias expansions per file; the yaml package's own default (100) refuses real device maps that share blocks. */
const MAX_ALIAS_COUNT = 10_000;
/** An alias (`*name`) somewhere in the text: such files take the parser that limits their expansion. */
const ALIAS = /(?:^|[\s,[{])\*[^\s,\]}]/;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Offset of the first byte that is not valid UTF-8, or undefined when all of it is. */
export function firstInvalidUtf8(b: Uint8Array): number | undefined {
  try {
    strictUtf8.decode(b);
    return undefined; // the common case, checked natively
  } catch {
    /* find where */
  }
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0 || i + n >= b.length) return i;
    for (let k = 1; k <= n; k++) if (((b[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    // Overlong and surrogate forms the decoder would replace as well.
    if ((c === 0xe0 && b[i + 1]! < 0xa0) || (c === 0xed && b[i + 1]! > 0x9f) || (c === 0xf0 && b[i + 1]! < 0x90) || (c === 0xf4 && b[i + 1]! > 0x8f)) return i;
    i += n + 1;
  }
  return undefined;
}

export class YamlFile {
  private doc: Document | undefined;
  /** The file's text until release(), for the document when a problem must be located. */
  private text: string | undefined;
  data: unknown;
  readonly problems: ConfigProblem[] = [];
  private readonly lines = new LineCounter();

  constructor(
    readonly display: string,
    readonly abs: string,
  ) {
    let bytes: Buffer;
    try {
      const size = statSync(abs).size;
      if (size > MAX_FILE_BYTES) {
        this.problems.push({
          file: display,
          line: 1,
          col: 1,
          path: '(file)',
          message: `expected a file of at most ${MAX_FILE_BYTES / (1 << 20)} MiB (split large device maps over several files), got ${(size / (1 << 20)).toFixed(1)} MiB`,
        });
        return;
      }
      bytes = readFileSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.problems.push({ file: display, line: 1, col: 1, path: '(file)', message: `expected a readable YAML file, got ${code}` });
      return;
    }
    const bad = firstInvalidUtf8(bytes);
    if (bad !== undefined) {
      const before = bytes.subarray(0, bad);
      const line = before.filter((b) => b === 0x0a).length + 1;
      const col = bad - (before.lastIndexOf(0x0a) + 1) + 1;
      const hex = [...bytes.subarray(bad, bad + 2)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
      this.problems.push({
        file: display,
        line,
        col,
        path: '(file)',
        message: `expected UTF-8 text, got the byte ${hex} (saved in another encoding, e.g. Windows-1252? save it as UTF-8)`,
      });
      return;
    }
    const text = bytes.toString('utf8');
    this.text = text;
    // Fast path: js-yaml builds the values an order of magnitude faster than the document below (a
    // 100k-point map: 0.3 s against 4.6 s). The document, which knows every node's line and column,
    // is only built when a problem has to be located. Files with aliases, and files js-yaml refuses,
    // take the exact path, whose limits and messages are the ones users see.
    if (!ALIAS.test(text)) {
      try {
        this.data = jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA, json: false }) ?? null;
        return;
      } catch {
        /* the exact parser says what is wrong, and where */
      }
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
    if (this.problems.length) return;
    try {
      this.data = this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // An alias that expands without end ("billion laughs"), or another value YAML cannot build.
      const alias = ALIAS.exec(text);
      const at = alias ? alias.index + alias[0].indexOf('*') : 0;
      const pos = this.lines.linePos(at);
      const what = /alias/i.test((err as Error).message)
        ? `expected aliases (*name) that expand to a reasonable size, got more than ${MAX_ALIAS_COUNT} expansions`
        : `expected a value YAML can build, got ${(err as Error).message}`;
      this.problems.push({ file: display, line: pos.line, col: pos.col, path: '(yaml)', message: what });
    }
  }

  /**
   * Drops the parsed document once loading is done: the running gateway keeps the values only,
   * and the document (a node object per scalar, pair and map) is several times their size —
   * 42,747 scalars and 21,511 pairs for the 137-device seed plant. Problems found later point at
   * line 1.
   */
  release(): void {
    this.doc = undefined;
    this.text = undefined;
  }

  /** The document with positions, parsed on first need (see the fast path in the constructor). */
  private document(): Document | undefined {
    if (!this.doc && this.text !== undefined) this.doc = parseDocument(this.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    return this.doc;
  }

  /**
   * Where to point for `path`: the value node, or for `key` the key itself (unknown keys), or the
   * nearest existing ancestor when the path does not exist (missing keys).
   */
  locate(path: YamlPath, key?: string): { line: number; col: number } {
    let node: unknown = this.document()?.contents;
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
