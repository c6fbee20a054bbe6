import type { ChildProcess } from 'node:child_process';

/**
 * SIGTERM, then wait for the exit; SIGKILL if it has not exited after `killAfterMs` (a cleanup
 * must never hang on a process that missed or ignores the signal). A process that already exited
 * is left alone.
 */
export async function stopChild(p: ChildProcess | undefined, killAfterMs = 10_000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}
