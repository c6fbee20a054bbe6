// A stop that hangs in native code blocks the main thread — its timers and its signal handlers
// too (the demo once ignored Ctrl-C that way). The deadline runs on a thread of its own: here the
// main thread is blocked for good (Atomics.wait, a futex wait like the hang seen), and the
// process must still end, by SIGKILL, with the demo's folder (private keys) removed first.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const mod = join(import.meta.dirname, '../../dist/src/core/stop-deadline.js');

describe('stop deadline', () => {
  it('ends a process whose main thread is blocked, removing its folder first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeferry-demo-'));
    writeFileSync(join(dir, 'client.key'), 'secret');
    try {
      const script = `import(${JSON.stringify(mod)}).then((m) => { m.stopDeadline(${JSON.stringify(dir)}, 300); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });`;
      const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const started = performance.now();
      const end = await new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
      expect(end.signal, err).toBe('SIGKILL');
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(err).toContain('stopping took longer than 300 ms; ending it now');
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
