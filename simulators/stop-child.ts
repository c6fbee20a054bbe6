import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then wait for the exit; a process that already exited is left alone. */
export async function stopChild(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
}
