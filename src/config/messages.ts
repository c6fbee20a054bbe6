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

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

/** ` (did you mean "x"?)` when one candidate is close to what was written. */
export function didYouMean(got: unknown, candidates: readonly unknown[]): string {
  if (typeof got !== 'string') return '';
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const s = String(c);
    const dd = distance(got, s);
    if (dd < bestD) [best, bestD] = [s, dd];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? ` (did you mean "${best}"?)` : '';
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
  return out;
}
