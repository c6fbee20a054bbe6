"""ELPV-format cells for every recipe here: the labels, the seeded stratified split, and the validation figures.

labels.csv: whitespace-separated image path, defect probability, cell type. Cells are grouped by
(probability rounded to 2 places, type); each group is shuffled with the seed and either split
val_fraction/rest, or with folds=K dealt round-robin into K folds of which `fold` validates.
"""
import os, random


def read_labels(data):
    rows = []
    with open(os.path.join(data, 'labels.csv')) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                rows.append((parts[0], float(parts[1]), parts[2]))
    return rows


def split_cells(data, seed, val_fraction=0.2, folds=0, fold=0):
    """(train, validation) lists of (path, probability, type)."""
    groups = {}
    for r in read_labels(data):
        groups.setdefault((round(r[1], 2), r[2]), []).append(r)
    train, val = [], []
    rng = random.Random(seed)
    for key in sorted(groups):
        g = sorted(groups[key])
        rng.shuffle(g)
        if folds:
            # Fold f gets every k-th cell of each (label, type) group, so every fold has the same mix.
            fold_of = [i % folds for i in range(len(g))]
            val += [r for r, f in zip(g, fold_of) if f == fold]
            train += [r for r, f in zip(g, fold_of) if f != fold]
            continue
        n_val = int(round(len(g) * val_fraction))
        val += g[:n_val]
        train += g[n_val:]
    return train, val


def metrics(prob, label, t):
    """Confusion counts and rates at threshold t (defective: label >= 0.5), with the AUC."""
    import numpy as np
    pos = label >= 0.5; pred = prob >= t
    tp = int((pred & pos).sum()); fp = int((pred & ~pos).sum()); tn = int((~pred & ~pos).sum()); fn = int((~pred & pos).sum())
    order = np.argsort(prob); ranks = np.empty(len(prob)); ranks[order] = np.arange(1, len(prob) + 1)
    auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()) if pos.any() and (~pos).any() else float('nan')
    prec = tp / (tp + fp) if tp + fp else 0.0; rec = tp / (tp + fn) if tp + fn else 0.0
    return {'threshold': round(float(t), 4), 'n': int(len(prob)), 'accuracy': (tp + tn) / len(prob), 'precision': prec, 'recall': rec,
            'f1': 2 * prec * rec / (prec + rec) if prec + rec else 0.0, 'false_positive_rate': fp / (fp + tn) if fp + tn else 0.0, 'auc': float(auc),
            'tp': tp, 'fp': fp, 'tn': tn, 'fn': fn}


def report_validation(out, val, prob, label, max_fpr):
    """Writes <out>/predictions.csv (every validation cell's probability, for cv_report.py), prints the
    figures at 0.5 and at the best accuracy with FPR <= max_fpr, and returns both."""
    import json
    import numpy as np
    best = None
    for t in np.unique(np.concatenate([prob, [0.5]])):
        m = metrics(prob, label, t)
        if m['false_positive_rate'] <= max_fpr and (best is None or m['accuracy'] > best['accuracy']):
            best = m
    at_half = metrics(prob, label, 0.5)
    with open(os.path.join(out, 'predictions.csv'), 'w') as f:
        f.write('image,label,type,probability\n')
        for r, q in zip(val, prob):
            f.write(f'{os.path.basename(r[0])},{r[1]:.4f},{r[2]},{q:.6f}\n')
    print('validation at 0.5:', json.dumps(at_half), flush=True)
    print('validation at chosen threshold:', json.dumps(best), flush=True)
    return at_half, best
