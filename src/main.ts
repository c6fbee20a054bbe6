#!/usr/bin/env node
// The entry: the only file that touches the process (argv, signals, exit codes).
import { readFileSync } from 'node:fs';
import { runCli } from './cli/index.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// Commands that stop gracefully get handlers; the others (check, --help, …) keep the default, so
// Ctrl-C or SIGTERM ends them at once even in the middle of checking a large map.
const GRACEFUL = new Set(['run', 'demo', 'sub', 'browse', 'model']);
const stopRequested = new Promise<void>((resolve) => {
  if (!GRACEFUL.has(process.argv[2] ?? '')) return;
  let count = 0;
  const onSignal = () => {
    // A second Ctrl-C means "now": skip the graceful drain.
    if (++count > 1) process.exit(130);
    resolve();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The reader of our output went away (`edgeferry demo | head`): stop as on Ctrl-C, cleaning up,
  // rather than die of the write error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      resolve();
    });
  }
});

// Exceptions nobody caught: the running gateway counts and logs them (src/cli/run.ts); other commands, or
// before the gateway is up, print and exit 1 as Node would.
const faultHandlers = new Set<(kind: 'unhandledRejection' | 'uncaughtException', err: unknown) => void>();
const onProcessFault = (kind: 'unhandledRejection' | 'uncaughtException') => (err: unknown) => {
  if (!faultHandlers.size) {
    process.stderr.write(`edgeferry: ${kind}: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  }
  for (const h of faultHandlers) h(kind, err);
  // An uncaught exception stops the gateway; if that hangs too, end here.
  if (kind === 'uncaughtException') setTimeout(() => process.exit(1), 20_000).unref();
};
process.on('unhandledRejection', onProcessFault('unhandledRejection'));
process.on('uncaughtException', onProcessFault('uncaughtException'));

runCli(process.argv.slice(2), {
  cwd: process.cwd(),
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  stopRequested,
  onReload: (fn) => {
    process.on('SIGHUP', fn);
    return () => process.off('SIGHUP', fn);
  },
  env: process.env,
  onProcessFault: (fn) => {
    faultHandlers.add(fn);
    return () => faultHandlers.delete(fn);
  },
  version: pkg.version,
}).then(
  (code) => {
    process.exitCode = code;
    // Signal listeners must not keep the process alive after the command is done.
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
  },
  (err: unknown) => {
    process.stderr.write(`edgeferry: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
