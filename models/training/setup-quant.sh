#!/bin/sh
# The training-time packages of quantize.py, from PyPI, into .cache/pylib-quant: onnxruntime's
# quantization tool and the onnx it needs (Debian 12's python3-onnx 1.12 lacks onnx.reference).
# --no-deps beside Debian's python3-numpy and python3-protobuf; never part of the product.
#   models/training/setup-quant.sh && PYTHONPATH=.cache/pylib-quant /usr/bin/python3 models/training/quantize.py …
set -e
cd "$(dirname "$0")/../.."
/usr/bin/python3 -m pip install --no-deps --target .cache/pylib-quant \
  onnxruntime==1.20.1 onnx==1.16.2 flatbuffers==24.3.25 coloredlogs==15.0.1 humanfriendly==10.0 packaging==24.2
