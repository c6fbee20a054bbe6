#!/usr/bin/python3
"""Cross-validation report of one recipe from the folds cross-validate.sh trained:

    /usr/bin/python3 models/training/cv_report.py OUT [--max-fpr 0.05] [--strict-fpr 0.009] [--json FILE]

Reads OUT/fold*/predictions.csv (every validation cell's probability from the fold's exported
model; each cell is in exactly one fold's validation part). Prints:
  - the threshold chosen by cross-validation: the highest pooled out-of-fold accuracy whose
    false-positive rate is at most --max-fpr (the balanced operating point);
  - the strict operating point: the highest pooled out-of-fold recall whose false-positive rate is
    at most --strict-fpr (0.9%, the seed gateway's false-detection rate), and the recall it costs;
  - per fold at those thresholds and at 0.5: accuracy, FPR, recall, precision, AUC; their mean,
    standard deviation and a 95% t-interval of the mean over the folds;
  - pooled over all folds: the same with Wilson 95% intervals, and per cell type (mono/poly).
  - nested: each fold at the thresholds chosen on the other folds' cells only (no cell scored at a
    threshold chosen on it), with the per-fold thresholds that make_model.py ships.
Only Python's standard library, so it runs without torch.
"""
import argparse, glob, json, math, os, statistics

from elpv import read_predictions

p = argparse.ArgumentParser()
p.add_argument('out')
p.add_argument('--max-fpr', type=float, default=0.05)
p.add_argument('--strict-fpr', type=float, default=0.009)
p.add_argument('--json', default='')
args = p.parse_args()

folds = []
for path in sorted(glob.glob(os.path.join(args.out, 'fold*', 'predictions.csv'))):
    folds.append(read_predictions(path))
if len(folds) < 2:
    raise SystemExit(f'{args.out}: needs the predictions.csv of at least two folds, found {len(folds)}')
names = [c[0] for fold in folds for c in fold]
if len(names) != len(set(names)):
    raise SystemExit(f'{args.out}: a cell is in the validation part of more than one fold')


def auc(cells):
    s = sorted(cells, key=lambda c: c[3])
    ranks = [0.0] * len(s)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1][3] == s[i][3]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    npos = sum(1 for c in s if c[1] >= 0.5)
    nneg = len(s) - npos
    rpos = sum(r for r, c in zip(ranks, s) if c[1] >= 0.5)
    return (rpos - npos * (npos + 1) / 2) / (npos * nneg) if npos and nneg else float('nan')


def metrics(cells, t):
    tp = sum(1 for c in cells if c[3] >= t and c[1] >= 0.5)
    fp = sum(1 for c in cells if c[3] >= t and c[1] < 0.5)
    fn = sum(1 for c in cells if c[3] < t and c[1] >= 0.5)
    tn = len(cells) - tp - fp - fn
    return {'n': len(cells), 'accuracy': (tp + tn) / len(cells), 'false_positive_rate': fp / (fp + tn) if fp + tn else 0.0,
            'recall': tp / (tp + fn) if tp + fn else 0.0, 'precision': tp / (tp + fp) if tp + fp else 0.0, 'auc': auc(cells),
            'tp': tp, 'fp': fp, 'tn': tn, 'fn': fn}


def wilson(k, n):
    z = 1.959964
    if not n:
        return [float('nan')] * 2
    ph = k / n
    d = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / d
    h = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


# Two-sided 97.5% quantiles of Student's t for k-1 degrees of freedom (k folds, 2..10).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

pooled = [c for fold in folds for c in fold]


def choose(cells):
    """The balanced threshold (best accuracy with FPR <= --max-fpr) and the strict one (best recall
    with FPR <= --strict-fpr) on these cells."""
    best = strict = None
    for t in sorted({c[3] for c in cells} | {0.5}):
        m = metrics(cells, t)
        if m['false_positive_rate'] <= args.max_fpr and (best is None or m['accuracy'] > best[1]['accuracy']):
            best = (t, m)
        if m['false_positive_rate'] <= args.strict_fpr and (strict is None or (m['recall'], m['accuracy']) > (strict[1]['recall'], strict[1]['accuracy'])):
            strict = (t, m)
    return round(best[0], 4), round(strict[0], 4)


def over_folds(v):
    """Mean, standard deviation and 95% t-interval of the mean of one figure over the folds."""
    mean, sd = statistics.mean(v), statistics.stdev(v)
    half = T975[len(v) - 1] * sd / math.sqrt(len(v))
    return {'mean': mean, 'sd': sd, 'ci95_of_mean': [mean - half, mean + half], 'folds': v}


threshold, strict_threshold = choose(pooled)
report = {'folds': len(folds), 'cells': len(pooled), 'max_fpr': args.max_fpr, 'threshold': threshold, 'strict_fpr': args.strict_fpr, 'strict_threshold': strict_threshold}
pct = lambda x: f'{100 * x:.2f}%'
print(f'{len(folds)} folds, {len(pooled)} cells, each validated once by a model that never saw it')
print(f'balanced threshold by cross-validation (best pooled accuracy with FPR <= {pct(args.max_fpr)}): {threshold}')
print(f'strict threshold by cross-validation (best pooled recall with FPR <= {pct(args.strict_fpr)}): {strict_threshold}')
for key, label, t in (('at_threshold', 'balanced: at the cross-validated threshold', threshold), ('at_strict', 'strict: at the cross-validated strict threshold', strict_threshold), ('at_0_5', 'at 0.5', 0.5)):
    per = [metrics(f, t) for f in folds]
    print(f'\n{label}:')
    summary = {}
    for k in ('accuracy', 'false_positive_rate', 'recall', 'precision', 'auc'):
        o = summary[k] = over_folds([m[k] for m in per])
        f = (lambda x: f'{x:.4f}') if k == 'auc' else pct
        print(f'  {k:20} mean {f(o["mean"])}  sd {f(o["sd"])}  95% CI of the mean {f(o["ci95_of_mean"][0])} – {f(o["ci95_of_mean"][1])}  folds {" ".join(f(x) for x in o["folds"])}')
    pm = metrics(pooled, t)
    pm['ci95'] = {'accuracy': wilson(pm['tp'] + pm['tn'], pm['n']), 'false_positive_rate': wilson(pm['fp'], pm['fp'] + pm['tn']),
                  'recall': wilson(pm['tp'], pm['tp'] + pm['fn'])}
    print(f'  pooled: accuracy {pct(pm["accuracy"])} ({pct(pm["ci95"]["accuracy"][0])} – {pct(pm["ci95"]["accuracy"][1])}), '
          f'FPR {pct(pm["false_positive_rate"])} ({pct(pm["ci95"]["false_positive_rate"][0])} – {pct(pm["ci95"]["false_positive_rate"][1])}), '
          f'recall {pct(pm["recall"])} ({pct(pm["ci95"]["recall"][0])} – {pct(pm["ci95"]["recall"][1])}), AUC {pm["auc"]:.4f}; '
          f'tp {pm["tp"]} fp {pm["fp"]} tn {pm["tn"]} fn {pm["fn"]}')
    by_type = {}
    for ct in sorted({c[2] for c in pooled}):
        mt = metrics([c for c in pooled if c[2] == ct], t)
        by_type[ct] = mt
        print(f'  {ct:6} {mt["n"]} cells: accuracy {pct(mt["accuracy"])}, FPR {pct(mt["false_positive_rate"])}, recall {pct(mt["recall"])}, AUC {mt["auc"]:.4f}')
    report[key] = {'per_fold': per, 'summary': summary, 'pooled': pm, 'by_type': by_type}
# Nested: each fold scored at the thresholds chosen on the other folds' cells only, so no cell is
# scored at a threshold chosen on it (the estimate for a model whose operating points come from
# other cells, as make_model.py ships them).
nested = {'thresholds': [], 'balanced': [], 'strict': []}
for i, f in enumerate(folds):
    tb, ts = choose([c for j, g in enumerate(folds) if j != i for c in g])
    nested['thresholds'].append({'balanced': tb, 'strict': ts})
    nested['balanced'].append(metrics(f, tb))
    nested['strict'].append(metrics(f, ts))
print('\nnested: each fold at the thresholds chosen on the other folds only:')
for key in ('balanced', 'strict'):
    summary = {}
    for k in ('accuracy', 'false_positive_rate', 'recall'):
        o = summary[k] = over_folds([m[k] for m in nested[key]])
        print(f'  {key:8} {k:20} mean {pct(o["mean"])}  sd {pct(o["sd"])}  95% CI of the mean {pct(o["ci95_of_mean"][0])} – {pct(o["ci95_of_mean"][1])}  folds {" ".join(pct(x) for x in o["folds"])}')
    nested[key + '_summary'] = summary
print('  thresholds per fold: ' + ', '.join(f'fold{i} {t["balanced"]}/{t["strict"]}' for i, t in enumerate(nested['thresholds'])))
report['nested'] = nested
if args.json:
    with open(args.json, 'w') as f:
        json.dump(report, f, indent=2)
