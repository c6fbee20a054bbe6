// Ctrl-C on the demo, the way a terminal sends it: SIGINT to the demo's whole process group (its
// socat children get it too), at a random moment — during start-up or while it runs. Each run
// must end within 10 s and leave no temp folder and no process behind. Prints each run and the
// tally; exit 1 if any run failed.
//
//   node dist/scripts/demo-ctrlc.js [--runs 20] [--max-wait-s 15] [--seed N]
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';

const values = scriptArgs('demo-ctrlc', 'Stops the demo with Ctrl-C (SIGINT to its process group) at random moments and tallies exits, times and leftovers.', {
  runs: { type: 'string', default: '20' },
  'max-wait-s': { type: 'string', default: '15' },
  seed: { type: 'string', default: String(Date.now() % 100_000) },
});
const RUNS = Number(values.runs);
const MAX_WAIT_MS = Number(values['max-wait-s']) * 1000;
const LIMIT_MS = 10_000;
const cli = resolve(import.meta.dirname, '../src/main.js');
let seed = Number(values.seed);
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const ours = () => new Set(readdirSync(tmpdir()).filter((f) => /^edgeferry-(demo|rs485)-/.test(f)));
const groupAlive = (pgid: number) =>
  spawnSync('pgrep', ['-g', String(pgid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);

console.log(`demo Ctrl-C: ${RUNS} runs, SIGINT to the process group after a random 0.5–${MAX_WAIT_MS / 1000} s (seed ${values.seed})`);
const rows: { wait: number; exitMs: number | undefined; code: number | null | string; left: string[]; procs: number[] }[] = [];
for (let i = 1; i <= RUNS; i++) {
  const before = ours();
  const p = spawn(process.execPath, [cli, 'demo'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  p.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
  const wait = Math.round(500 + random() * (MAX_WAIT_MS - 500));
  await new Promise((r) => setTimeout(r, wait));
  const at = performance.now();
  try {
    process.kill(-p.pid!, 'SIGINT');
  } catch {
    /* it already ended by itself */
  }
  const timer = new Promise<'hung'>((r) => setTimeout(() => r('hung'), LIMIT_MS).unref());
  const res = await Promise.race([exited, timer]);
  let exitMs: number | undefined;
  let code: number | null | string;
  if (res === 'hung') {
    code = 'hung';
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    await exited;
  } else {
    exitMs = Math.round(performance.now() - at);
    code = res.code ?? res.signal;
  }
  // Children that outlive the demo would still be in its process group.
  await new Promise((r) => setTimeout(r, 200));
  const procs = groupAlive(p.pid!);
  for (const pid of procs) process.kill(pid, 'SIGKILL');
  const left = [...ours()].filter((f) => !before.has(f));
  rows.push({ wait, exitMs, code, left, procs });
  const bad = code === 'hung' || left.length > 0 || procs.length > 0;
  console.log(
    `run ${String(i).padStart(2)}: Ctrl-C after ${(wait / 1000).toFixed(1)} s → ${code === 'hung' ? `still running after ${LIMIT_MS / 1000} s (killed)` : `exit ${code} in ${exitMs} ms`}; temp folders left: ${left.length ? left.join(', ') : 'none'}; processes left: ${procs.length || 'none'}`,
  );
  if (bad)
    console.log(
      out
        .split('\n')
        .slice(-15)
        .map((l) => `    ${l}`)
        .join('\n'),
    );
}
const ok = rows.filter((r) => r.code !== 'hung' && !r.left.length && !r.procs.length);
const times = rows.flatMap((r) => (r.exitMs === undefined ? [] : [r.exitMs])).sort((a, b) => a - b);
console.log(
  `\ntally: ${ok.length}/${rows.length} runs ended within ${LIMIT_MS / 1000} s with nothing left behind; exit times median ${times[Math.floor(times.length / 2)] ?? '—'} ms, max ${times.at(-1) ?? '—'} ms; hung ${rows.filter((r) => r.code === 'hung').length}; temp folders left ${rows.reduce((a, r) => a + r.left.length, 0)}; processes left ${rows.reduce((a, r) => a + r.procs.length, 0)}`,
);
process.exit(ok.length === rows.length ? 0 : 1);
