#!/usr/bin/python3
"""The mean of several cross-validated recipes, as one cross-validated recipe: per fold, one ONNX graph that
runs every member on the same input and averages their probabilities, and the members' predictions averaged.

    /usr/bin/python3 models/training/ensemble.py --out OUT CV1 CV2 [CV3 …]

Each CVn is a folder cross-validate.sh trained (CVn/foldN/model.onnx, predictions.csv, metrics.json,
validation-split.txt) on the same seeded folds; a fold whose validation split differs between members is
refused, since the mean would then score cells one member trained on. Writes OUT/foldN/ in the same layout, so
cv_report.py, quantize.py and make_model.py take OUT as they take a single recipe's folder:
  - model.onnx: "image" float32 [N,1,300,300] → "defect_probability" [N,1], the members' graphs side by side
    (names prefixed m0/, m1/, …) and an ONNX Mean of their outputs; each member keeps its own resize inside;
  - predictions.csv: each validation cell's mean probability (what model.onnx gives, to float rounding);
  - metrics.json: the members' own metrics.json, and the mean's figures on the fold (elpv.report_validation);
  - validation-split.txt: the members' (identical) split.
Needs Debian's python3-onnx and python3-numpy only.
"""
import argparse, json, os, shutil, sys

import numpy as np
import onnx
from onnx import compose, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from elpv import read_predictions, report_validation  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--out', required=True)
p.add_argument('--folds', type=int, default=5)
p.add_argument('--max-fpr', type=float, default=0.05)
p.add_argument('members', nargs='+', help="cross-validate.sh's output folders, two or more")
args = p.parse_args()
if len(args.members) < 2:
    raise SystemExit('ensemble.py: give two or more cross-validated folders')


def merge(paths):
    """One graph: every member fed from the one "image" input, their "defect_probability" averaged."""
    models = [onnx.load(q) for q in paths]
    opsets = {(o.domain, o.version) for m in models for o in m.opset_import}
    if len(opsets) != 1:
        raise SystemExit(f'{paths}: members differ in opset ({sorted(opsets)}); export them alike')
    nodes, inits, infos, outs = [], [], [], []
    for i, m in enumerate(models):
        names = ([x.name for x in m.graph.input], [x.name for x in m.graph.output])
        if names != (['image'], ['defect_probability']):
            raise SystemExit(f'{paths[i]}: expected input "image" and output "defect_probability", got {names}')
        g = compose.add_prefix(m, f'm{i}/').graph
        for n in g.node:
            n.input[:] = ['image' if x == f'm{i}/image' else x for x in n.input]
        nodes += g.node; inits += g.initializer; infos += g.value_info
        outs.append(f'm{i}/defect_probability')
    nodes.append(helper.make_node('Mean', outs, ['defect_probability'], name='mean'))
    graph = helper.make_graph(nodes, 'el-defect-ensemble', [models[0].graph.input[0]], [models[0].graph.output[0]],
                              initializer=inits, value_info=infos)
    out = helper.make_model(graph, opset_imports=list(models[0].opset_import), producer_name='edgeferry ensemble.py')
    out.ir_version = models[0].ir_version
    onnx.checker.check_model(out)
    return out


for k in range(args.folds):
    folds = [os.path.join(m, f'fold{k}') for m in args.members]
    splits = [open(os.path.join(f, 'validation-split.txt')).read().split() for f in folds]
    if any(s != splits[0] for s in splits):
        raise SystemExit(f'fold {k}: the members validate on different cells ({", ".join(folds)}); train them on the same folds')
    rows = [read_predictions(os.path.join(f, 'predictions.csv')) for f in folds]
    if any([r[0] for r in rs] != [r[0] for r in rows[0]] for rs in rows):
        raise SystemExit(f'fold {k}: predictions.csv lists different cells across members')
    prob = np.mean([[r[3] for r in rs] for rs in rows], axis=0)
    dest = os.path.join(args.out, f'fold{k}')
    os.makedirs(dest, exist_ok=True)
    onnx.save(merge([os.path.join(f, 'model.onnx') for f in folds]), os.path.join(dest, 'model.onnx'))
    shutil.copyfile(os.path.join(folds[0], 'validation-split.txt'), os.path.join(dest, 'validation-split.txt'))
    val = rows[0]  # (name, label, type, …): what report_validation reads of a cell
    label = np.array([v[1] for v in val])
    at_half, best = report_validation(dest, val, prob, label, args.max_fpr)
    members = [json.load(open(os.path.join(f, 'metrics.json'))) for f in folds]
    with open(os.path.join(dest, 'metrics.json'), 'w') as f:
        json.dump({'recipe': 'ensemble.py', 'members': [{'folder': m, **t} for m, t in zip(args.members, members)],
                   'validation_cells': len(val), 'at_threshold_0_5': at_half, 'chosen': best}, f, indent=2)
    print(f'fold {k}: {os.path.join(dest, "model.onnx")} (mean of {len(folds)})', flush=True)
