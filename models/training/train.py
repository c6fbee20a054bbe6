#!/usr/bin/python3
"""Train edgeferry's EL cell defect model on ELPV-format data and export it to ONNX.

    /usr/bin/python3 models/training/train.py --data ../shared/elpv --out models/el-defect

Debian's python3-torch / python3-torchvision / python3-onnx / python3-pil / python3-numpy; CPU only;
fixed seed. Reads `labels.csv` (whitespace-separated: image path, defect probability, cell type)
and the images it names; never copies them anywhere.

What it does:
  1. Splits the labelled cells 80/20 into train and validation, stratified by label and cell type
     (seeded), and writes the validation list to <out>/validation-split.txt (names only).
  2. Trains a small residual CNN at 150x150 — the 300x300 cells average-pooled 2x2, or with
     --space-to-depth each 2x2 block as 4 channels (no pixel lost) — with the labelled probability
     as a soft target, dihedral flips/rotations, brightness/contrast jitter and small shifts, AdamW
     with a one-cycle schedule, and an exponential moving average of the weights.
  3. Exports the EMA model to <out>/model.onnx with the pooling (or space-to-depth) and the
     normalisation inside the graph: input "image" float32 [N,1,300,300] of raw grey levels
     0..255, output "defect_probability" float32 [N,1]. Writes every validation cell's probability
     to <out>/predictions.csv.
  4. Chooses the threshold on the validation split: the highest accuracy whose false-positive rate
     is at most 5%, and writes the measured metrics to <out>/metrics.json.

Long runs: --ckpt DIR saves a checkpoint after every epoch; the same command again (same
arguments, --epochs included) resumes after the last saved epoch. --threads 1 leaves a core free.
--folds K --fold I trains on K-1 stratified folds and validates on fold I (cross-validation;
cross-validate.sh runs all five, cv_report.py pools them).

A plant retrains on its own cells by pointing --data at a folder with the same layout (an images/
folder and a labels.csv) - see models/el-defect/README.md.
"""
import argparse, json, math, os, random, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from elpv import ema_update, load_checkpoint, report_validation, save_checkpoint, split_cells

p = argparse.ArgumentParser()
p.add_argument('--data', required=True)
p.add_argument('--out', required=True)
p.add_argument('--epochs', type=int, default=70)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--width', type=int, default=24)
p.add_argument('--seed', type=int, default=20261124)
p.add_argument('--val-fraction', type=float, default=0.2)
p.add_argument('--max-fpr', type=float, default=0.05)
p.add_argument('--mixup', type=float, default=0.0, help='mixup alpha (0 = off): train on convex blends of two cells and of their labels')
p.add_argument('--full-res', action='store_true', help='learn the 2x downsampling (strided 5x5 convolution at 300x300) instead of 2x2 average pooling, so 1-2 pixel cracks are not averaged away')
p.add_argument('--space-to-depth', action='store_true', help='keep every pixel: fold each 2x2 block of the 300x300 cell into 4 channels at 150x150 (instead of averaging it), for about the cost of the pooled model')
p.add_argument('--bf16', action='store_true', help='train the forward pass in bfloat16 (CPU autocast; weights, EMA, validation and export stay float32): about 2x faster on CPUs with AVX-512 BF16')
p.add_argument('--threads', type=int, default=0, help='CPU threads for torch (0 = all cores); 1 leaves a core for other work during a long run')
p.add_argument('--ckpt', default='', help='folder for a checkpoint after every epoch; a run started again with the same arguments resumes from it')
p.add_argument('--folds', type=int, default=0, help='k-fold cross-validation: split the cells into this many stratified folds ...')
p.add_argument('--fold', type=int, default=0, help='... and validate on this one (0-based), training on the others')
args = p.parse_args()

random.seed(args.seed); np.random.seed(args.seed); torch.manual_seed(args.seed)
torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))

# Stratified split by (probability, type): elpv.py, shared with train_lite.py.
train, val = split_cells(args.data, args.seed, args.val_fraction, args.folds, args.fold)
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, 'validation-split.txt'), 'w') as f:
    for r in sorted(val):
        f.write(os.path.basename(r[0]) + '\n')

if args.full_res and args.space_to_depth:
    raise SystemExit('--full-res and --space-to-depth are two ways of using the full resolution; choose one')
FULL = args.full_res or args.space_to_depth
SIDE = 300 if FULL else 150

def load(rs):
    xs = np.zeros((len(rs), 1, SIDE, SIDE), dtype=np.float32)
    for i, r in enumerate(rs):
        im = np.asarray(Image.open(os.path.join(args.data, r[0])).convert('L'), dtype=np.float32)
        if im.shape != (300, 300):
            raise SystemExit(f'{r[0]}: expected a 300x300 cell, got {im.shape}')
        xs[i, 0] = im if FULL else im.reshape(150, 2, 150, 2).mean(axis=(1, 3))
    return torch.from_numpy(xs), torch.tensor([r[1] for r in rs], dtype=torch.float32)

t0 = time.time()
xtr, ytr = load(train)
xva, yva = load(val)
MEAN = float(xtr.mean()); STD = float(xtr.std())
print(f'loaded {len(train)} train / {len(val)} validation cells in {time.time() - t0:.1f} s; mean {MEAN:.2f} std {STD:.2f}', flush=True)

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(cout)
        self.skip = None if (cin == cout and stride == 1) else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))

def space_to_depth(x):
    """[N,1,2H,2W] → [N,4,H,W] (ONNX: Reshape/Transpose; the batch stays dynamic)."""
    h, w = x.shape[2] // 2, x.shape[3] // 2
    return x.reshape(-1, h, 2, w, 2).permute(0, 2, 4, 1, 3).reshape(-1, 4, h, w)

class Body(nn.Module):
    """150x150 (or, with --full-res, 300x300) normalised grey → logit."""
    def __init__(self, w):
        super().__init__()
        if args.full_res:
            # 300 → 150 by a learned 5x5 stride-2 convolution, then 150 → 75.
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 5, 2, 2, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        else:
            # 150 → 75; with --space-to-depth the 150x150 input has 4 channels (one per pixel of a 2x2 block).
            self.stem = nn.Sequential(nn.Conv2d(4 if args.space_to_depth else 1, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.s1 = Block(w, w, 1)
        self.s2 = Block(w, 2 * w, 2)      # 38
        self.s3 = Block(2 * w, 4 * w, 2)  # 19
        self.s4 = Block(4 * w, 8 * w, 2)  # 10
        self.head = nn.Linear(8 * w * 2, 1)
    def forward(self, x):
        if args.space_to_depth:
            x = space_to_depth(x)
        x = self.s4(self.s3(self.s2(self.s1(self.stem(x)))))
        # Mean and max pooling: dark defects are often small.
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(x)

class Exported(nn.Module):
    """What ships: raw 300x300 grey levels → probability; pooling and normalisation in the graph."""
    def __init__(self, body):
        super().__init__()
        self.body = body
    def forward(self, image):
        x = image if FULL else F.avg_pool2d(image, 2)
        x = (x - MEAN) / STD
        return torch.sigmoid(self.body(x))

def augment(x):
    # Dihedral group: cells look the same flipped or turned by 90 degrees.
    k = random.randint(0, 3)
    x = torch.rot90(x, k, dims=(2, 3))
    if random.random() < 0.5: x = torch.flip(x, dims=(3,))
    # Per-image brightness and contrast, as cameras and exposures differ.
    n = x.shape[0]
    gain = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2)
    bias = torch.empty(n, 1, 1, 1).uniform_(-0.2, 0.2)
    x = x * gain + bias
    # Small translation with reflection.
    dx, dy = random.randint(-4, 4), random.randint(-4, 4)
    if dx or dy:
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x

# channels_last: the same arithmetic, laid out the way the CPU convolution kernels want it (~1.5x faster).
body = Body(args.width).to(memory_format=torch.channels_last)
ema = Body(args.width).to(memory_format=torch.channels_last); ema.load_state_dict(body.state_dict())
for q in ema.parameters(): q.requires_grad_(False)
params = sum(q.numel() for q in body.parameters())
print(f'model: {params} parameters', flush=True)
opt = torch.optim.AdamW(body.parameters(), lr=args.lr, weight_decay=5e-4)
steps_per_epoch = math.ceil(len(train) / args.batch)
total = steps_per_epoch * args.epochs
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)
xtr_n = (xtr - MEAN) / STD
xva_n = (xva - MEAN) / STD

def predict(model, x, tta=False):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 128):
            b = x[i:i + 128]
            if tta:
                ps = [torch.sigmoid(model(torch.rot90(b, k, dims=(2, 3)))) for k in range(4)]
                out.append(torch.stack(ps).mean(0))
            else:
                out.append(torch.sigmoid(model(b)))
    return torch.cat(out)[:, 0].numpy()

ema_decay = 0.995
ckpt_path = os.path.join(args.ckpt, 'last.pt') if args.ckpt else ''
parts = {'body': body, 'ema': ema, 'opt': opt, 'sched': sched}
step, start_epoch = load_checkpoint(ckpt_path, parts)
for epoch in range(start_epoch, args.epochs):
    body.train()
    perm = torch.randperm(len(train))
    t1 = time.time(); loss_sum = 0.0
    for i in range(0, len(train), args.batch):
        idx = perm[i:i + args.batch]
        x = augment(xtr_n[idx]).contiguous(memory_format=torch.channels_last); y = ytr[idx]
        if args.mixup > 0:
            lam = float(np.random.beta(args.mixup, args.mixup))
            j = torch.randperm(len(idx))
            x = lam * x + (1 - lam) * x[j]; y = lam * y + (1 - lam) * y[j]
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.bf16):
            logit = body(x)[:, 0].float()
        loss = F.binary_cross_entropy_with_logits(logit, y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
        loss_sum += float(loss) * len(idx)
        ema_update(ema, body, step, ema_decay)
    if ckpt_path:
        save_checkpoint(ckpt_path, parts, step, epoch + 1, args)
    if epoch % 5 == 4 or epoch == args.epochs - 1:
        pv = predict(ema, xva_n)
        acc = float(((pv >= 0.5) == (yva.numpy() >= 0.5)).mean())
        print(f'epoch {epoch + 1}/{args.epochs} loss {loss_sum / len(train):.4f} val acc@0.5 {acc:.4f} ({time.time() - t1:.1f} s/epoch)', flush=True)

exported = Exported(ema.to(memory_format=torch.contiguous_format)).eval()
# Validation through the exported graph itself (raw grey levels in), as edgeferry will run it.
with torch.no_grad():
    raw = torch.from_numpy(np.stack([np.asarray(Image.open(os.path.join(args.data, r[0])).convert('L'), dtype=np.float32)[None] for r in val]))
    pv = torch.cat([exported(raw[i:i + 64]) for i in range(0, len(raw), 64)])[:, 0].numpy()
yv = yva.numpy()
at_half, best = report_validation(args.out, val, pv, yv, args.max_fpr)

onnx_path = os.path.join(args.out, 'model.onnx')
torch.onnx.export(exported, torch.zeros(1, 1, 300, 300), onnx_path, input_names=['image'], output_names=['defect_probability'],
                  dynamic_axes={'image': {0: 'batch'}, 'defect_probability': {0: 'batch'}}, opset_version=13)
with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
    json.dump({'seed': args.seed, 'epochs': args.epochs, 'width': args.width, 'full_res': args.full_res, 'space_to_depth': args.space_to_depth, 'mixup': args.mixup, 'bf16': args.bf16, 'parameters': params, 'train_cells': len(train), 'validation_cells': len(val),
               'normalisation': {'mean': MEAN, 'std': STD}, 'at_threshold_0_5': at_half, 'chosen': best, 'train_seconds': round(time.time() - t0)}, f, indent=2)
print(f'wrote {onnx_path} in {time.time() - t0:.0f} s total', flush=True)
