#!/bin/sh
# Stratified 5-fold cross-validation of one training recipe, resumable across interruptions:
#   models/training/cross-validate.sh OUT [train.py options…]
# e.g. models/training/cross-validate.sh .cache/training/cv-base --epochs 120 --width 24
# Finished folds (OUT/foldN/metrics.json) are skipped; a fold cut short resumes from its checkpoint
# (OUT/foldN/ck) with the same options. Logs in OUT/foldN.log. Needs Debian's python3-torch.
set -e
out=$1; shift
data=${EDGEFERRY_ELPV:-../shared/elpv}
mkdir -p "$out"
for f in 0 1 2 3 4; do
  [ -f "$out/fold$f/metrics.json" ] && continue
  /usr/bin/python3 "$(dirname "$0")/train.py" --data "$data" --out "$out/fold$f" --folds 5 --fold "$f" \
    --ckpt "$out/fold$f/ck" "$@" >> "$out/fold$f.log" 2>&1
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys, os
rows = [json.load(open(os.path.join(sys.argv[1], f'fold{f}', 'metrics.json')))['at_threshold_0_5'] for f in range(5)]
for k in ('accuracy', 'false_positive_rate', 'recall', 'auc'):
    v = [r[k] for r in rows]
    print(f'{k}: mean {statistics.mean(v):.4f} sd {statistics.stdev(v):.4f} folds {[round(x, 4) for x in v]}')
PY
