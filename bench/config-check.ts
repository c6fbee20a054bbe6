// How `edgeferry check` scales: gateways of 1k, 10k, 100k and 500k points (100-point Modbus devices,
// 100 devices per map file, like a plant that keeps one file per line), each checked by the real
// command in a process of its own. Prints the command's wall time, the time of the check itself
// and the process's peak RSS, and the ratio to the size before it (10× the points: ~10× the time
// is linear). Sizes run interleaved, small to large, `--rounds` times; the medians are reported.
//
//   npm run bench:config -- --rounds 3
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptArgs } from '../src/core/script-args.js';
import { machine, pct } from './lib.js';

const values = scriptArgs('bench:config', 'Time and memory to check device maps of growing size.', {
  rounds: { type: 'string', default: '3' },
  sizes: { type: 'string', default: '1000,10000,100000,500000' },
});
const SIZES = values.sizes.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const cli = join(import.meta.dirname, '../src/main.js');
const TYPES = ['uint16', 'int16', 'float32', 'uint32', 'bool'] as const;

/** A gateway file and its device maps for `points` points; returns the gateway file's path. */
function generate(dir: string, points: number): string {
  const devices = Math.ceil(points / 100);
  mkdirSync(join(dir, 'devices'));
  for (let f = 0; f * 100 < devices; f++) {
    let yaml = 'version: 1\ndevices:\n';
    for (let d = f * 100; d < Math.min(devices, (f + 1) * 100); d++) {
      yaml += `  - name: plc-${d}\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.${(d >> 8) & 255}.${d & 255}.1, port: 1 }\n    points:\n`;
      let address = 0;
      for (let k = 0; k < 100; k++) {
        const type = TYPES[k % TYPES.length]!;
        const width = type === 'float32' || type === 'uint32' ? 2 : 1;
        yaml += `      - { name: p${k}, address: ${address}, type: ${type}${type === 'bool' ? ', bit: 3' : ''}${k % 10 === 0 ? ', priority: critical' : ''} }\n`;
        address += width;
      }
    }
    writeFileSync(join(dir, 'devices', `line-${f}.yaml`), yaml);
  }
  const gw = join(dir, 'gateway.yaml');
  writeFileSync(gw, `version: 1\nsite: bench\ngateway_id: gw\ndevices: [devices]\nmqtt:\n  url: mqtts://127.0.0.1:8883\n  tls: { ca: ca.pem }\n`);
  writeFileSync(join(dir, 'ca.pem'), '');
  return gw;
}

interface Run {
  wallMs: number;
  rssMb: number;
  ok: boolean;
  out: string;
}

function check(gw: string): Run {
  const t0 = performance.now();
  // /usr/bin/time is not everywhere: the child reports its own peak RSS on exit.
  const r = spawnSync(
    process.execPath,
    ['--import', 'data:text/javascript,process.on("exit",()=>process.stderr.write("\\nmaxrss "+process.resourceUsage().maxRSS+"\\n"))', cli, 'check', gw],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const wallMs = performance.now() - t0;
  const rss = Number(/maxrss (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
  return { wallMs, rssMb: rss, ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim().split('\n').slice(0, 3).join(' / ') };
}

function main(): void {
  const root = mkdtempSync(join(tmpdir(), 'edgeferry-bench-config-'));
  try {
    console.log(`edgeferry check scaling — ${machine()}; 100-point Modbus devices, 100 devices per file; ${ROUNDS} rounds, sizes interleaved`);
    const gws = SIZES.map((n) => {
      const dir = join(root, String(n));
      mkdirSync(dir);
      return generate(dir, n);
    });
    const runs: Run[][] = SIZES.map(() => []);
    for (let r = 0; r < ROUNDS; r++) SIZES.forEach((_, i) => runs[i]!.push(check(gws[i]!)));
    let prev: number | undefined;
    SIZES.forEach((n, i) => {
      const rs = runs[i]!;
      const wall = pct(
        rs.map((x) => x.wallMs),
        50,
      );
      const rss = pct(
        rs.map((x) => x.rssMb),
        50,
      );
      const ratio = prev === undefined ? '' : `; ${(wall / prev).toFixed(1)}x the time for ${(n / SIZES[i - 1]!).toFixed(0)}x the points`;
      console.log(
        `${String(n).padStart(7)} points: check ${rs.every((x) => x.ok) ? 'ok' : `FAILED (${rs[0]!.out})`} in ${(wall / 1000).toFixed(2)} s median (max ${(Math.max(...rs.map((x) => x.wallMs)) / 1000).toFixed(2)} s), peak RSS ${rss.toFixed(0)} MiB${ratio}`,
      );
      prev = wall;
    });
    const base = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' });
    const t0 = performance.now();
    for (let k = 0; k < 3; k++) spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' });
    console.log(
      `(a bare \`edgeferry --version\` takes ${((performance.now() - t0) / 3 / 1000).toFixed(2)} s here: the start-up part of every figure${base.status === 0 ? '' : '; it failed'})`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main();
