#!/usr/bin/python3
"""int8 version of an exported EL model, calibrated on training cells only, and its accuracy beside fp32.

    PYTHONPATH=.cache/pylib-quant /usr/bin/python3 models/training/quantize.py \
        --model OUT/model.onnx --data ../shared/elpv --split OUT/validation-split.txt --out OUT/model.int8.onnx

Static quantization (QDQ, per-channel int8 weights, uint8 activations) by onnxruntime's quantization
tool, which models/training/setup-quant.sh installs into .cache/pylib-quant (training time only:
edgeferry runs the result with onnxruntime-node). Calibration reads --calibration cells that are
*not* in --split (the validation cells are never seen), then both models score the validation cells
and the script prints accuracy, FPR, recall and AUC of each at --threshold, the probability
differences, and both file sizes; it writes them to <out>.json. With --predictions OUT8/foldN/predictions.csv
for each fold, `cv_report.py OUT8` gives the int8 models' own cross-validated operating points.
"""
import argparse, json, os, random
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from elpv import metrics, read_labels, write_predictions

p = argparse.ArgumentParser()
p.add_argument('--model', required=True)
p.add_argument('--data', required=True)
p.add_argument('--split', required=True, help='validation-split.txt of the model: these cells are scored, never calibrated on')
p.add_argument('--out', required=True)
p.add_argument('--calibration', type=int, default=200)
p.add_argument('--method', choices=['minmax', 'percentile'], default='minmax',
               help="how activation ranges are calibrated: the observed min/max (default), or a percentile of each "
               "activation's values (--percentile; it keeps every value of every activation in memory: 16 GB for "
               "40 cells of the four-model mean)")
p.add_argument('--percentile', type=float, default=99.999)
p.add_argument('--threshold', type=float, default=0.5)
p.add_argument('--seed', type=int, default=20261207)
p.add_argument('--predictions', default='', help="write the int8 model's probability of every validation cell here, in "
               "train_lite.py's predictions.csv layout, so cv_report.py can cross-validate the int8 models' thresholds")
args = p.parse_args()

held = set(open(args.split).read().split())
rows = read_labels(args.data)
val = [r for r in rows if os.path.basename(r[0]) in held]
train = [r for r in rows if os.path.basename(r[0]) not in held]
if len(val) != len(held):
    raise SystemExit(f'{args.split}: {len(held)} names, {len(val)} found in {args.data}/labels.csv')
random.Random(args.seed).shuffle(train)
calib = train[:args.calibration]


def cell(r):
    return np.asarray(Image.open(os.path.join(args.data, r[0])).convert('L'), dtype=np.float32)[None, None]


class Cells(CalibrationDataReader):
    def __init__(self, rs):
        self.it = iter(rs)

    def get_next(self):
        r = next(self.it, None)
        return None if r is None else {'image': cell(r)}


pre = args.out + '.pre.onnx'
quant_pre_process(args.model, pre)
method = CalibrationMethod.Percentile if args.method == 'percentile' else CalibrationMethod.MinMax
quantize_static(pre, args.out, Cells(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, calibrate_method=method,
                extra_options={'CalibPercentile': args.percentile})
os.remove(pre)


def scores(path):
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    return np.array([float(s.run(None, {'image': cell(r)})[0][0, 0]) for r in val])


label = np.array([r[1] for r in val])
fp32, int8 = scores(args.model), scores(args.out)
report = {'calibration_cells': len(calib), 'method': args.method, 'validation_cells': len(val), 'threshold': args.threshold,
          'fp32': {**metrics(fp32, label, args.threshold), 'bytes': os.path.getsize(args.model)},
          'int8': {**metrics(int8, label, args.threshold), 'bytes': os.path.getsize(args.out)},
          'abs_diff': {'mean': float(np.abs(fp32 - int8).mean()), 'max': float(np.abs(fp32 - int8).max())},
          'verdicts_changed': int(((fp32 >= args.threshold) != (int8 >= args.threshold)).sum())}
if args.predictions:
    write_predictions(args.predictions, val, int8)
with open(args.out + '.json', 'w') as f:
    json.dump(report, f, indent=2)
print(json.dumps(report, indent=2))
