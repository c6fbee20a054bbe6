// Talking to systemd (sd_notify protocol): READY=1 once the gateway runs, RELOADING=1 / READY=1
// around a reload, STOPPING=1 on the way out, STATUS= lines for `systemctl status`, and
// WATCHDOG=1 from the event loop, so a stalled loop stops the pings and systemd restarts us
// (WatchdogSec= in the unit). Outside systemd (no NOTIFY_SOCKET) every call does nothing.
//
// The notify socket is a Unix datagram socket, which Node cannot open by itself; unix-dgram (a
// small, maintained native addon) does that. Only loaded when NOTIFY_SOCKET is set.
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

export interface Notifier {
  ready(status?: string): void;
  reloading(status?: string): void;
  stopping(status?: string): void;
  status(status: string): void;
  /** The watchdog interval systemd asked for, or undefined when it asked for none. */
  readonly watchdogMs: number | undefined;
  close(): void;
}

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', fn: (err: Error) => void): void;
}

const NOOP: Notifier = { ready() {}, reloading() {}, stopping() {}, status() {}, watchdogMs: undefined, close() {} };

/** `STATUS=` must be one line. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 400);

export function systemdNotifier(env: NodeJS.ProcessEnv, log: Logger, pid = process.pid): Notifier {
  const path = env.NOTIFY_SOCKET;
  if (!path) return NOOP;
  if (path.startsWith('@')) {
    log.warn({ notify_socket: path }, 'NOTIFY_SOCKET is an abstract socket, which edgeferry cannot reach; use Type=simple or a path socket');
    return NOOP;
  }
  let sock: DgramSocket;
  try {
    const dgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };
    sock = dgram.createSocket('unix_dgram');
  } catch (err) {
    log.error({ err }, 'cannot open a socket to systemd: readiness and watchdog are not reported');
    return NOOP;
  }
  sock.on('error', (err) => log.warn({ err }, 'systemd notify failed'));
  const send = (lines: string[]) => {
    const buf = Buffer.from(lines.join('\n'));
    sock.send(buf, 0, buf.length, path, (err) => {
      if (err) log.warn({ err, notify_socket: path }, 'systemd notify failed');
    });
  };
  // WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or ours.
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === pid;
  const watchdogMs = forUs && usec > 0 ? usec / 1000 : undefined;
  // Half the interval, as sd_watchdog_enabled(3) advises; unref'd so it never keeps us alive.
  const timer = watchdogMs ? setInterval(() => send(['WATCHDOG=1']), Math.max(50, watchdogMs / 2)).unref() : undefined;
  let closed = false;
  const withStatus = (line: string, status?: string) => (status ? [line, `STATUS=${oneLine(status)}`] : [line]);
  return {
    ready: (status) => send([...withStatus('READY=1', status), `MAINPID=${pid}`]),
    reloading: (status) => send([...withStatus('RELOADING=1', status), `MONOTONIC_USEC=${monotonicUsec()}`]),
    stopping: (status) => send(withStatus('STOPPING=1', status)),
    status: (status) => send([`STATUS=${oneLine(status)}`]),
    watchdogMs,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      sock.close();
    },
  };
}

/** CLOCK_MONOTONIC in µs, which systemd wants with RELOADING=1 (Type=notify-reload). */
function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}
