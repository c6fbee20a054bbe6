// Turns Ajv's errors into sentences an automation engineer can act on:
// "<what was expected>, got <what was found>", with a "did you mean" for near misses.
import type { ErrorObject } from 'ajv';
import type { YamlPath } from './yaml-file.js';

export interface SchemaIssue {
  path: YamlPath;
  /** Set for unknown keys: point at the key, not at its value. */
  key?: string;
  message: string;
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  return 'a map';
}

/** Edit distance with a swap of two neighbours counting as one edit (CDBA → CDAB), case-blind. */
function distance(x: string, y: string): number {
  const a = x.toLowerCase();
  const b = y.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** ` (did you mean "x"?)` when one candidate is close to what was written. */
export function didYouMean(got: unknown, candidates: readonly unknown[]): string {
  const near = nearest(got, candidates);
  return near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : '';
}

/** The candidates closest to `got` when close enough (all of them on a tie), at most three. */
export function nearest(got: unknown, candidates: readonly unknown[]): string[] {
  if (typeof got !== 'string') return [];
  let best: string[] = [];
  let bestD = Infinity;
  for (const c of candidates) {
    const s = String(c);
    const dd = distance(got, s);
    if (dd > Math.max(1, Math.floor(s.length / 3))) continue;
    if (dd < bestD) [best, bestD] = [[s], dd];
    else if (dd === bestD && !best.includes(s)) best.push(s);
  }
  return best.slice(0, 3);
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

function typeName(t: unknown): string {
  const names: Record<string, string> = {
    object: 'map',
    array: 'list',
    integer: 'integer',
    number: 'number',
    string: 'string',
    boolean: 'boolean (true/false)',
  };
  const list = (Array.isArray(t) ? t : [t]).map((x) => names[String(x)] ?? String(x));
  return list.map(article).join(' or ');
}

function range(s: Record<string, unknown>): string {
  const kind = s.type === 'integer' ? 'an integer' : 'a number';
  const min = s.minimum ?? s.exclusiveMinimum;
  if (min !== undefined && s.maximum !== undefined) return `${kind} from ${min} to ${s.maximum}`;
  if (min !== undefined) return `${kind} >= ${min}`;
  return `${kind} <= ${s.maximum}`;
}

function toPath(instancePath: string): YamlPath {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function translate(errors: ErrorObject[], prefix: YamlPath = []): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const path = [...prefix, ...toPath(e.instancePath)];
    const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
    let issue: SchemaIssue;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const allowed = Object.keys((parent.properties as object) ?? {});
        issue = { path, key, message: `expected one of the keys ${allowed.join(', ')}, got unknown key "${key}"${didYouMean(key, allowed)}` };
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        issue = { path, message: `expected key "${key}", got none` };
        break;
      }
      case 'type':
        issue = {
          path,
          message:
            parent.const !== undefined
              ? `expected ${JSON.stringify(parent.const)}, got ${describeValue(e.data)}`
              : `expected ${typeName((e.params as { type: unknown }).type)}, got ${describeValue(e.data)}`,
        };
        break;
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
        issue = { path, message: `expected one of ${allowed.join('|')}, got ${describeValue(e.data)}${didYouMean(e.data, allowed)}` };
        break;
      }
      case 'const':
        issue = { path, message: `expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${describeValue(e.data)}` };
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        issue = { path, message: `expected ${range(parent)}, got ${describeValue(e.data)}` };
        break;
      case 'pattern':
        issue = { path, message: `expected ${(parent.patternHint as string) ?? `text matching ${parent.pattern}`}, got ${describeValue(e.data)}` };
        break;
      case 'minLength':
        issue = { path, message: `expected at least ${(e.params as { limit: number }).limit} characters, got ${describeValue(e.data)}` };
        break;
      case 'maxLength':
        issue = { path, message: `expected at most ${(e.params as { limit: number }).limit} characters, got ${String(e.data).length}` };
        break;
      case 'minItems':
        issue = { path, message: `expected at least ${(e.params as { limit: number }).limit} entries, got ${(e.data as unknown[]).length}` };
        break;
      default:
        issue = { path, message: `expected ${e.message ?? 'a valid value'}, got ${describeValue(e.data)}` };
    }
    const id = `${path.join('/')}|${issue.key ?? ''}`;
    // One problem per place: a wrong type also fails the range check; the first says it best.
    if (seen.has(id) && issue.key === undefined) continue;
    seen.add(id);
    out.push(issue);
  }
  // A misspelt required key is one mistake, not two: the unknown key's problem says it is required,
  // and the "expected key …, got none" for the same map goes.
  const merged = new Map<SchemaIssue, string>();
  const dropped = new Set<SchemaIssue>();
  for (const issue of out) {
    const missing = /^expected key "([^"]+)", got none$/.exec(issue.message)?.[1];
    if (missing === undefined) continue;
    const typo = out.find((o) => o.key !== undefined && !merged.has(o) && o.path.join('/') === issue.path.join('/') && nearest(o.key, [missing]).length);
    if (!typo) continue;
    merged.set(typo, `${typo.message.replace(/ \(did you mean [^)]*\)$/, '')} (did you mean "${missing}"? it is required)`);
    dropped.add(issue);
  }
  return out.filter((o) => !dropped.has(o)).map((o) => (merged.has(o) ? { ...o, message: merged.get(o)! } : o));
}
