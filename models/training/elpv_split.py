"""The seeded, stratified split of ELPV-format cells that every training recipe here uses.

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
