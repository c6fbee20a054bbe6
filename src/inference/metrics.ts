// Classification figures of an EL model against labelled cells, as `edgeferry model eval` prints
// them and the model card reports them: the confusion matrix at a threshold, the rates derived
// from it with 95% confidence intervals, and the AUC with its own interval. A cell is defective
// when its label (ELPV: the experts' defect probability) is at least 0.5.

export interface EvalMetrics {
  n: number;
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  false_positive_rate: number;
  auc: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** A 95% interval [low, high]. */
export type Interval = [number, number];

/** The standard normal's 97.5% quantile: ±Z95 standard errors hold 95%. */
const Z95 = 1.959964;

export interface EvalIntervals {
  accuracy: Interval;
  recall: Interval;
  false_positive_rate: Interval;
  auc: Interval;
}

/** Metrics at `threshold` for probabilities against labels (defective when label >= 0.5). */
export function metrics(prob: readonly number[], label: readonly number[], threshold: number): EvalMetrics {
  let tp = 0,
    fp = 0,
    tn = 0,
    fn = 0;
  prob.forEach((p, i) => {
    const pos = label[i]! >= 0.5;
    const pred = p >= threshold;
    if (pred && pos) tp++;
    else if (pred) fp++;
    else if (pos) fn++;
    else tn++;
  });
  const npos = tp + fn;
  const nneg = fp + tn;
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = npos ? tp / npos : 0;
  return {
    n: prob.length,
    threshold,
    accuracy: (tp + tn) / prob.length,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    false_positive_rate: nneg ? fp / nneg : 0,
    auc: auc(prob, label),
    tp,
    fp,
    tn,
    fn,
  };
}

/** AUC as the Mann-Whitney statistic (the share of (defective, ok) pairs ranked right), ties half. */
export function auc(prob: readonly number[], label: readonly number[]): number {
  const idx = prob.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(prob.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[idx[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  const npos = label.filter((l) => l >= 0.5).length;
  const nneg = label.length - npos;
  const sumPos = label.reduce((s, l, i) => (l >= 0.5 ? s + ranks[i]! : s), 0);
  return npos && nneg ? (sumPos - (npos * (npos + 1)) / 2) / (npos * nneg) : NaN;
}

/** Wilson score interval (95%) of a proportion k/n — sound near 0 and 1, unlike the normal one. */
export function wilson(k: number, n: number): Interval {
  if (!n) return [NaN, NaN];
  const z = Z95;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/** 95% interval of an AUC from its standard error by Hanley & McNeil (1982). */
export function aucInterval(a: number, npos: number, nneg: number): Interval {
  if (!npos || !nneg || Number.isNaN(a)) return [NaN, NaN];
  const q1 = a / (2 - a);
  const q2 = (2 * a * a) / (1 + a);
  const se = Math.sqrt((a * (1 - a) + (npos - 1) * (q1 - a * a) + (nneg - 1) * (q2 - a * a)) / (npos * nneg));
  return [Math.max(0, a - Z95 * se), Math.min(1, a + Z95 * se)];
}

export function intervals(m: EvalMetrics): EvalIntervals {
  return {
    accuracy: wilson(m.tp + m.tn, m.n),
    recall: wilson(m.tp, m.tp + m.fn),
    false_positive_rate: wilson(m.fp, m.fp + m.tn),
    auc: aucInterval(m.auc, m.tp + m.fn, m.fp + m.tn),
  };
}
