import { Worker } from 'node:worker_threads';

/**
 * A thread of its own that ends the process if stopping takes longer than `ms`: a stop that hangs
 * in native code (a worker thread blocked on a serial line, say) blocks the main thread, its
 * timers and its signal handlers alike, so only another thread can still act. It removes the
 * demo's folder first. Unref'd: a demo that stops in time exits as usual.
 */
export function stopDeadline(dir: string, ms: number): void {
  const w = new Worker(
    `const { workerData: w } = require('node:worker_threads');
     setTimeout(() => {
       process._rawDebug('edgeferry demo: stopping took longer than ' + w.ms + ' ms; ending it now');
       try { require('node:fs').rmSync(w.dir, { recursive: true, force: true }); } catch {}
       process.kill(w.pid, 'SIGKILL');
     }, w.ms);`,
    { eval: true, workerData: { dir, ms, pid: process.pid } },
  );
  w.unref();
}
