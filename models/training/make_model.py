#!/usr/bin/python3
"""Assembles a model folder for edgeferry from a cross-validated recipe: one fold's exported model,
the operating points chosen by cross-validation on all folds, and that fold's validation split.

    /usr/bin/python3 models/training/make_model.py --cv OUT --fold 0 --to models/el-defect-lite \
        --version 0.3.0 [--onnx OUT/fold0/model.onnx] [--cv-json OUT/cv.json]

Writes into --to:
  - <name>-<version>.onnx: the fold's exported model (or --onnx, e.g. its int8 copy). A name of its
    own per version, so that a model_dir can hold two versions and switch or roll back by renaming
    one model.json into place (docs/inference.md);
  - validation-split.txt: the fold's validation cells (the model never saw them; `edgeferry model eval
    --split` scores exactly these);
  - model.json: the stage's manifest (input, output as train_lite.py exports them), with `threshold`
    set to the balanced point and `operating_points` {balanced, strict} from cv_report.py's JSON
    (thresholds chosen on the pooled out-of-fold probabilities of the *other* four folds, cv.json's
    `nested` part, so `model eval --split validation-split.txt` scores cells that took no part in
    choosing them);
  - training-metrics.json: the fold's training figures and the cross-validation summary.
Only Python's standard library.
"""
import argparse, hashlib, json, os, shutil

p = argparse.ArgumentParser()
p.add_argument('--cv', required=True, help='the folder cross-validate.sh trained (OUT/foldN, OUT/cv.json)')
p.add_argument('--fold', type=int, default=0)
p.add_argument('--to', required=True)
p.add_argument('--version', required=True)
p.add_argument('--name', default='el-defect')
p.add_argument('--onnx', default='', help='the model file to ship (default OUT/foldN/model.onnx)')
p.add_argument('--cv-json', default='', help="cv_report.py's JSON for the shipped file's thresholds (default OUT/cv.json)")
args = p.parse_args()

fold = os.path.join(args.cv, f'fold{args.fold}')
onnx = args.onnx or os.path.join(fold, 'model.onnx')
cv_json = args.cv_json or os.path.join(args.cv, 'cv.json')
with open(cv_json) as f:
    cv = json.load(f)
with open(os.path.join(fold, 'metrics.json')) as f:
    trained = json.load(f)
if cv.get('folds') != 5:
    raise SystemExit(f'{cv_json}: expected the report of 5 folds, got {cv.get("folds")}')

os.makedirs(args.to, exist_ok=True)
file = f'{args.name}-{args.version}.onnx'
shutil.copyfile(onnx, os.path.join(args.to, file))
shutil.copyfile(os.path.join(fold, 'validation-split.txt'), os.path.join(args.to, 'validation-split.txt'))
if 'nested' not in cv:
    raise SystemExit(f'{cv_json}: no nested thresholds (re-run cv_report.py)')
points = cv['nested']['thresholds'][args.fold]
manifest = {
    'name': args.name,
    'version': args.version,
    'file': file,
    'input': {'name': 'image', 'width': 300, 'height': 300, 'resize_kernel': 'linear', 'values': 'grey levels 0-255 as float32'},
    'output': {'name': 'defect_probability', 'meaning': 'probability that the cell is defective (ELPV: expert probability >= 0.5)'},
    'threshold': points['balanced'],
    'operating_points': {'balanced': points['balanced'], 'strict': points['strict']},
}
with open(os.path.join(args.to, 'model.json'), 'w') as f:
    json.dump(manifest, f, indent=2)
    f.write('\n')
summary = {k: cv[k]['summary'] for k in ('at_threshold', 'at_strict', 'at_0_5')}
with open(os.path.join(args.to, 'training-metrics.json'), 'w') as f:
    json.dump({'fold': args.fold, 'trained': trained, 'cross_validation': {
        'folds': cv['folds'], 'cells': cv['cells'], 'max_fpr': cv['max_fpr'], 'strict_fpr': cv['strict_fpr'],
        'threshold': cv['threshold'], 'strict_threshold': cv['strict_threshold'], 'summary': summary,
        'nested': {k: cv['nested'][k] for k in ('thresholds', 'balanced_summary', 'strict_summary')}}}, f, indent=2)
    f.write('\n')
digest = hashlib.sha256(open(os.path.join(args.to, file), 'rb').read()).hexdigest()
print(f'{args.to}: {args.name} {args.version}, {file} {os.path.getsize(onnx)} bytes sha256 {digest}, '
      f'balanced {points["balanced"]}, strict {points["strict"]}, validation fold {args.fold}')
