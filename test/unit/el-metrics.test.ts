// The figures `edgeferry model eval` prints, against hand-worked examples.
import { describe, expect, it } from 'vitest';
import { metrics } from '../../src/inference/eval.js';

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
