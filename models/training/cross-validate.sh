#!/bin/sh
# Stratified 5-fold cross-validation of one training recipe, resumable across interruptions:
#   models/training/cross-validate.sh OUT [train.py options…]
# e.g. models/training/cross-validate.sh .cache/training/cv-base --epochs 120 --width 24
# Finished folds (OUT/foldN/metrics.json) are skipped; a fold cut short resumes from its checkpoint
# (OUT/foldN/ck) with the same options. Logs in OUT/foldN.log. Needs Debian's python3-torch.
# When all five are done, cv_report.py prints the cross-validated figures (and writes OUT/cv.json).
set -e
out=$1; shift
data=${EDGEFERRY_ELPV:-../shared/elpv}
mkdir -p "$out"
# FOLDS="0 2 4" trains only those (two such loops side by side, --threads 1 each, use both cores).
# RECIPE=train_lite.py cross-validates the pretrained EfficientNet-Lite0 recipe instead of train.py
# (after models/training/setup-lite.sh).
for f in ${FOLDS:-0 1 2 3 4}; do
  [ -f "$out/fold$f/metrics.json" ] && continue
  /usr/bin/python3 "$(dirname "$0")/${RECIPE:-train.py}" --data "$data" --out "$out/fold$f" --folds 5 --fold "$f" \
    --ckpt "$out/fold$f/ck" "$@" >> "$out/fold$f.log" 2>&1
done
for f in 0 1 2 3 4; do [ -f "$out/fold$f/metrics.json" ] || exit 0; done
/usr/bin/python3 "$(dirname "$0")/cv_report.py" "$out" --json "$out/cv.json"
