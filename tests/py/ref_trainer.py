"""cyclegan-step against the reference training loop.

  ref_trainer.py batches OUT.msgpack STEPS
      the stream to feed cyclegan-step: STEPS batches of 2 young + 2 old
      32x32 f32 tensors (torch.rand under manual_seed(2024), the data the
      engine's parity test uses, clear of ReLU kinks)
  ref_trainer.py compare OURS.safetensors OURS_METRICS.jsonl STEPS
      runs the reference (tests/py/reference.py nets, seed 1234, ngf=ndf=8,
      2 blocks; torch Adam, clip_grad_norm_, MSE/L1) for STEPS steps on the
      same batches and compares losses (rel 1e-5) and every parameter, BN
      statistic and counter of our checkpoint.  Parameters are compared in
      units of the learning rate: Adam moves each by ~lr*sign(g), so a
      gradient within rounding of zero may step either way; every element
      must lie within 0.25 lr and at most 0.1% beyond 0.01 lr.
"""
import json
import os
import sys

import msgpack
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import adams, build, compare_checkpoint, train_step  # noqa: E402

torch.set_num_threads(2)
N, HW = 2, 32


def batches(steps):
    gen = torch.Generator().manual_seed(2024)
    for _ in range(steps):
        x = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
        y = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
        yield x, y


cmd = sys.argv[1]
if cmd == "batches":
    pk = msgpack.Packer(use_bin_type=True)
    with open(sys.argv[2], "wb") as f:
        f.write(pk.pack({"kind": "epoch", "epoch": 1, "epochs": 1}))
        for s, (x, y) in enumerate(batches(int(sys.argv[3]))):
            for i in range(N):
                for dom, t in (("young", x[i]), ("old", y[i])):
                    f.write(pk.pack({"kind": "tensor", "id": "%s%d_%d" % (dom, s, i), "domain": dom,
                                     "dtype": "f32", "shape": [3, HW, HW], "data": t.numpy().tobytes()}))
    sys.exit(0)

ours_path, metrics_path, steps = sys.argv[2], sys.argv[3], int(sys.argv[4])
nets = build(8, 2, 8, seed=1234)
opts = adams(nets)
ref_losses = []
for x, y in batches(steps):
    out = train_step(nets, opts, x, y)
    ref_losses.append({"loss_gen_total": out["gen"].item(), "loss_DX": out["dx"].item(), "loss_DY": out["dy"].item()})

ours = [json.loads(l) for l in open(metrics_path) if '"phase": "step"' in l]
assert len(ours) == steps, "expected %d step records, got %d" % (steps, len(ours))
worst_loss = 0.0
for a, b in zip(ours, ref_losses):
    for k, v in b.items():
        worst_loss = max(worst_loss, abs(a[k] - v) / abs(v))
fail, worst_lr, _, checked = compare_checkpoint(ours_path, nets)
print("cyclegan-step vs reference, %d steps: losses max rel %.2g, parameters max %.3g lr, %d tensors"
      % (steps, worst_loss, worst_lr, checked))
if worst_loss > 1e-5 or fail:
    sys.exit("mismatch: loss rel %.3g; %s" % (worst_loss, "; ".join(fail[:5])))
