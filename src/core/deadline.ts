import { NotConnectedError } from '../errors.js';

/**
 * Races a promise against a deadline (and, if given, an abort signal, which rejects with
 * NotConnectedError). The timer and the abort listener are always removed.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(new NotConnectedError('aborted'));
    const timer = setTimeout(() => finish(() => reject(onTimeout())), ms);
    const onAbort = () => finish(() => reject(new NotConnectedError('aborted')));
    signal?.addEventListener('abort', onAbort, { once: true });
    function finish(f: () => void) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      f();
    }
    p.then(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    );
  });
}
