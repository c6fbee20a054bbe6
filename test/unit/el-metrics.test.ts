// The figures `edgeferry model eval` prints, against hand-worked examples.
import { describe, expect, it } from 'vitest';
import { aucInterval, metrics, wilson } from '../../src/inference/metrics.js';

describe('model eval metrics', () => {
  it('counts the confusion matrix at the threshold, labels defective from 0.5', () => {
    const m = metrics([0.9, 0.8, 0.4, 0.3, 0.6, 0.1], [1, 0.6667, 1, 0, 0.3333, 0], 0.5);
    expect(m).toMatchObject({ tp: 2, fn: 1, fp: 1, tn: 2, n: 6 });
    expect(m.accuracy).toBeCloseTo(4 / 6);
    expect(m.precision).toBeCloseTo(2 / 3);
    expect(m.recall).toBeCloseTo(2 / 3);
    expect(m.false_positive_rate).toBeCloseTo(1 / 3);
    expect(m.f1).toBeCloseTo(2 / 3);
  });

  it('computes AUC as the share of (defective, ok) pairs ranked right, ties counted half', () => {
    // Pairs: defective {0.9, 0.4} vs ok {0.4, 0.1}: (0.9>0.4) (0.9>0.1) (0.4=0.4 → ½) (0.4>0.1) = 3.5/4.
    expect(metrics([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0], 0.5).auc).toBeCloseTo(0.875);
    expect(metrics([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.5).auc).toBeCloseTo(0);
  });
});

describe('model eval intervals', () => {
  it('gives the Wilson 95% interval of a proportion, inside [0, 1] at the edges', () => {
    // 80 of 100: the textbook Wilson interval is 0.7112 – 0.8666.
    const [lo, hi] = wilson(80, 100);
    expect(lo).toBeCloseTo(0.7112, 3);
    expect(hi).toBeCloseTo(0.8666, 3);
    expect(wilson(0, 20)[0]).toBe(0);
    expect(wilson(0, 20)[1]).toBeGreaterThan(0.1);
    expect(wilson(20, 20)[1]).toBe(1);
  });

  it('gives the Hanley-McNeil interval of an AUC, narrower with more cells', () => {
    // A = 0.9, 100 defective / 200 ok cells: Q1 = 0.9/1.1, Q2 = 1.62/1.9,
    // SE² = (0.09 + 99·(Q1 − 0.81) + 199·(Q2 − 0.81)) / 20000 = 9.3837 / 20000 → SE 0.02166.
    const [lo, hi] = aucInterval(0.9, 100, 200);
    expect((hi - lo) / (2 * 1.959964)).toBeCloseTo(0.02166, 4);
    const [lo4, hi4] = aucInterval(0.9, 400, 800);
    expect(hi4 - lo4).toBeLessThan((hi - lo) * 0.6);
  });
});
