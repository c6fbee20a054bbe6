// raceSignal: how drivers fail pending requests when a link is lost, without keeping anything
// per request alive on the link's long-lived signal (the Promise.race-with-a-forever-pending-
// promise pattern it replaced kept every result of a session's life in memory).
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { raceSignal } from '../../src/core/deadline.js';

describe('raceSignal', () => {
  it('settles with the promise and leaves no listener on the signal', async () => {
    const lost = new AbortController();
    for (let i = 0; i < 1000; i++) expect(await raceSignal(Promise.resolve(i), lost.signal)).toBe(i);
    await expect(raceSignal(Promise.reject(new Error('device said no')), lost.signal)).rejects.toThrow('device said no');
    expect(getEventListeners(lost.signal, 'abort')).toHaveLength(0);
  });

  it('rejects pending calls with the abort reason at once, and new calls too', async () => {
    const lost = new AbortController();
    const pending = raceSignal(new Promise(() => undefined), lost.signal);
    lost.abort(new Error('connection closed'));
    await expect(pending).rejects.toThrow('connection closed');
    await expect(raceSignal(new Promise(() => undefined), lost.signal)).rejects.toThrow('connection closed');
  });
});
