import { NotConnectedError } from '../errors.js';

/**
 * Calls `onTimeout` once `ms` have passed *and* the event loop has done its I/O after that
 * (setImmediate runs after the loop's I/O phase). Timers run before the I/O that waited beside
 * them: when the loop was starved for longer than `ms` (a busy CPU, a long synchronous step), an
 * answer that arrived meanwhile is taken instead of being called late. Returns the cancel.
 */
export function timeoutAfterIo(ms: number, onTimeout: () => void): () => void {
  let late: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => (late = setImmediate(onTimeout)), ms);
  return () => {
    clearTimeout(timer);
    if (late) clearImmediate(late);
  };
}

/**
 * Races a promise against a deadline (timeoutAfterIo) and, if given, an abort signal, which rejects
 * with NotConnectedError. The timer and the abort listener are always removed.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(new NotConnectedError('aborted'));
    const cancel = timeoutAfterIo(ms, () => finish(() => reject(onTimeout())));
    const onAbort = () => finish(() => reject(new NotConnectedError('aborted')));
    signal?.addEventListener('abort', onAbort, { once: true });
    function finish(f: () => void) {
      cancel();
      signal?.removeEventListener('abort', onAbort);
      f();
    }
    p.then(
      (v) => finish(() => resolve(v)),
      (e: unknown) => finish(() => reject(e)),
    );
  });
}

/**
 * `p`, or a rejection with the signal's reason once it aborts. The abort listener is removed as
 * soon as `p` settles, so a long-lived signal (a session's "lost") holds nothing per call —
 * unlike `Promise.race([p, lostPromise])`, whose reaction on the never-settling promise keeps
 * every call's result alive for the life of the session.
 */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
