// Signals during long commands (issue 16): Ctrl-C or SIGTERM while `check` reads a large gateway
// end it at once; while `run` is still loading, nothing is started and it exits 0.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
let dir: string;

beforeAll(() => {
  // 300,000 points: several seconds of loading on this machine, far longer than the 0.5 s we wait.
  dir = mkdtempSync(join(tmpdir(), 'edgeferry-signals-'));
  mkdirSync(join(dir, 'devices'));
  for (let f = 0; f < 30; f++) {
    let y = 'version: 1\ndevices:\n';
    for (let d = f * 100; d < (f + 1) * 100; d++) {
      y += `  - name: plc-${d}\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.${(d >> 8) & 255}.${d & 255}.1, port: 1 }\n    points:\n`;
      for (let k = 0; k < 100; k++) y += `      - { name: p${k}, address: ${k} }\n`;
    }
    writeFileSync(join(dir, 'devices', `line-${f}.yaml`), y);
  }
  writeFileSync(
    join(dir, 'gateway.yaml'),
    'version: 1\nsite: s\ngateway_id: g\ndevices: [devices]\nmqtt:\n  url: mqtts://127.0.0.1:1\n  tls: { ca: ca.pem }\nhealth: { enabled: false }\n',
  );
  writeFileSync(join(dir, 'ca.pem'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the command and sends `signal` 0.5 s after it printed `ready` on stderr (at once when no `ready`). */
function runFor(
  args: string[],
  signal: NodeJS.Signals,
  ready?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ranMs: number }> {
  const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  const arm = () => (timer ??= setTimeout(() => p.kill(signal), 500));
  p.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (ready !== undefined && stderr.includes(ready)) arm();
  });
  if (ready === undefined) arm();
  const t0 = Date.now();
  return new Promise((resolve) =>
    p.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, stderr, ranMs: Date.now() - t0 });
    }),
  );
}

describe('signals during long commands', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} ends edgeferry check in the middle of a 300,000-point gateway`, async () => {
      const r = await runFor(['check', join(dir, 'gateway.yaml')], sig);
      expect(r.signal).toBe(sig); // ended by the signal, not by finishing the check
      expect(r.stderr).not.toContain('ok:');
    });
  }

  it('SIGTERM while edgeferry run is still loading its configuration: nothing starts, exit 0', async () => {
    // Once it says it is loading: its signal handlers are in place by then.
    const r = await runFor(['run', '--config', join(dir, 'gateway.yaml')], 'SIGTERM', 'edgeferry run: loading');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('stop requested while loading the configuration; nothing was started');
  });
});
