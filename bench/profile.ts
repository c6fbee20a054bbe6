// Summary of a V8 CPU profile (node --cpu-prof): where the time goes, by function (self time)
// and by area (our code by folder, each dependency by package, V8/GC and native).
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: { name: string; where: string; ms: number; share: number }[];
  byArea: { area: string; ms: number; share: number }[];
  /** Time with the function anywhere on the stack. */
  inclusive: { name: string; where: string; ms: number; share: number }[];
}

function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const ours = /\/dist\/((?:src|drivers)\/[^/]+)/.exec(url);
  if (ours) return ours[1]!.replace(/\.js$/, '');
  return url.split('/').slice(-2).join('/');
}

export interface SummaryOptions {
  /** Leave out the samples of the first so many ms (start-up, warm-up). */
  fromMs?: number;
  /** Shares of the busy time only: the idle samples are left out. */
  busyOnly?: boolean;
}

export function summarize(file: string, top = 15, opts: SummaryOptions = {}): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  const inclusive = new Map<string, number>();
  const keyOf = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    return `${functionName || '(anonymous)'}@${where}`;
  };
  let t = 0;
  p.samples.forEach((id, i) => {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    t += ms;
    if (t < (opts.fromMs ?? 0)) return;
    if (opts.busyOnly && byId.get(id)!.callFrame.functionName === '(idle)') return;
    self.set(id, (self.get(id) ?? 0) + ms);
    // Inclusive: once per function on the stack.
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const k = keyOf(n);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
    }
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, { name: string; where: string; ms: number }>();
  const ar = new Map<string, number>();
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const f = fn.get(key) ?? { name, where, ms: 0 };
    f.ms += ms;
    fn.set(key, f);
    const a = area(url, name);
    ar.set(a, (ar.get(a) ?? 0) + ms);
  }
  const share = (ms: number) => +(ms / total).toFixed(4);
  return {
    totalMs: total,
    byFunction: [...fn.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, share: share(f.ms) })),
    byArea: [...ar]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([a, ms]) => ({ area: a, ms, share: share(ms) })),
    inclusive: [...inclusive]
      .filter(([k]) => !k.startsWith('(root)') && !k.startsWith('(program)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => ({ name: k.split('@')[0]!, where: k.split('@')[1]!, ms, share: share(ms) })),
  };
}

export function printSummary(s: ProfileSummary, out: (l: string) => void = console.log): void {
  out(`CPU profile: ${(s.totalMs / 1000).toFixed(1)} s sampled`);
  out('  by area:');
  for (const a of s.byArea) out(`    ${(a.share * 100).toFixed(1).padStart(5)} %  ${a.area}`);
  out('  by function (self time):');
  for (const f of s.byFunction) out(`    ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`);
  out('  by function (inclusive: anywhere on the stack):');
  for (const f of s.inclusive) out(`    ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`);
}
