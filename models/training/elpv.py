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


def write_predictions(path, val, prob):
    """predictions.csv, the layout cv_report.py reads: one line per validation cell (name, label, type, probability)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('image,label,type,probability\n')
        for r, q in zip(val, prob):
            f.write(f'{os.path.basename(r[0])},{r[1]:.4f},{r[2]},{q:.6f}\n')


def read_predictions(path):
    """A predictions.csv back: (name, label, type, probability) per validation cell, in its order."""
    import csv
    with open(path) as f:
        return [(r['image'], float(r['label']), r['type'], float(r['probability'])) for r in csv.DictReader(f)]


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
    write_predictions(os.path.join(out, 'predictions.csv'), val, prob)
    print('validation at 0.5:', json.dumps(at_half), flush=True)
    print('validation at chosen threshold:', json.dumps(best), flush=True)
    return at_half, best


def load_checkpoint(path, parts):
    """Resumes a run: loads each part's state (models, optimiser, schedule, by name) and the random
    generators from `path` when it exists; returns (step, epoch), (0, 0) for a fresh run."""
    import numpy as np
    import torch
    if not path or not os.path.exists(path):
        return 0, 0
    ck = torch.load(path)
    for name, part in parts.items():
        part.load_state_dict(ck[name])
    random.setstate(ck['py_rng']); np.random.set_state(ck['np_rng']); torch.set_rng_state(ck['torch_rng'])
    print(f'resumed from {path} after epoch {ck["epoch"]}', flush=True)
    return ck['step'], ck['epoch']


def save_checkpoint(path, parts, step, epoch, args):
    """Writes every part's state and the random generators after an epoch (written, then renamed)."""
    import numpy as np
    import torch
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = {name: part.state_dict() for name, part in parts.items()}
    state.update({'epoch': epoch, 'step': step, 'py_rng': random.getstate(), 'np_rng': np.random.get_state(),
                  'torch_rng': torch.get_rng_state(), 'args': vars(args)})
    torch.save(state, path + '.tmp')
    os.replace(path + '.tmp', path)


def ema_update(ema, model, step, decay):
    """The exponential moving average of the weights (warming up over the first steps); buffers copied."""
    import torch
    with torch.no_grad():
        d = min(decay, (1 + step) / (10 + step))
        for pe, pb in zip(ema.parameters(), model.parameters()):
            pe.mul_(d).add_(pb.detach(), alpha=1 - d)
        for be, bb in zip(ema.buffers(), model.buffers()):
            be.copy_(bb)
