// What every command gets instead of the process (only src/main.ts touches it), and the exit
// codes every command returns.

/** Documented in README and `edgeferry --help`. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, CONFIG_INVALID: 3 } as const;

export interface CliIo {
  cwd: string;
  out(line: string): void;
  err(line: string): void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopRequested: Promise<void>;
  /** Registers what a reload request (SIGHUP) does; returns the unregister function. */
  onReload?(fn: () => void): () => void;
  /** The environment (NOTIFY_SOCKET, WATCHDOG_USEC from systemd). */
  env?: NodeJS.ProcessEnv;
  /**
   * Registers what the process does with an exception nobody caught (the last error boundary);
   * returns the unregister function. Without one, main.ts prints it and exits 1.
   */
  onProcessFault?(fn: (kind: 'unhandledRejection' | 'uncaughtException', err: unknown) => void): () => void;
  version: string;
}
