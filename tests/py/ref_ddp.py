"""mpirun -np 2 cyclegan-step against a PyTorch simulation of DDP.

  ref_ddp.py batches OUT.msgpack STEPS
      the stream every rank reads: STEPS global batches of 4 young + 4 old
      32x32 f32 tensors (torch.rand under manual_seed(2025)), in one epoch
      whose record announces its pairs (ranks need the count to share it)
  ref_ddp.py compare OURS.safetensors OURS_METRICS.jsonl STEPS
      simulates DDP over 2 ranks without SyncBatchNorm: two replicas of
      the reference nets (tests/py/reference.py, seed 1234, ngf=ndf=8, 2
      blocks), rank 0 on pairs 0-1 of each batch, rank 1 on pairs 2-3,
      each with its own BatchNorm statistics; after each backward the
      gradients are averaged (as DDP's allreduce), then clipped and one
      Adam step is taken, the same on both.  Compares the mean losses
      (rel 1e-5) and every parameter, BN statistic and counter of our
      checkpoint (rank 0's statistics) with the tolerances of
      ref_trainer.py: within 0.25 lr, at most 0.1% beyond 0.01 lr.
"""
import copy
import json
import os
import sys

import msgpack
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import adams, build, compare_checkpoint, gen_losses  # noqa: E402

torch.set_num_threads(2)
N, HW = 4, 32
RANKS = int(os.environ.get("RANKS", "2"))  # 1: the plain reference step on the whole batch


def batches(steps):
    gen = torch.Generator().manual_seed(int(os.environ.get("DATA_SEED", "2024")))
    for _ in range(steps):
        x = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
        y = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
        yield x, y


def average_grads(replicas, tag):
    """DDP's allreduce: every replica's gradient becomes the mean."""
    ps = [list(r[tag].parameters()) for r in replicas]
    for group in zip(*ps):
        mean = sum(p.grad for p in group) / len(group)
        for p in group:
            p.grad = mean.clone()


def sync_params(replicas, tags):
    """Only replica 0 steps its optimiser; the others copy its parameters
    (the same update applied to the same mean gradient)."""
    for r in replicas[1:]:
        for tag in tags:
            for p0, p in zip(replicas[0][tag].parameters(), r[tag].parameters()):
                p.data.copy_(p0.data)


def ddp_step(replicas, opts, x, y, la=2.0, lc=4.0, li=0.5, clip=1.0):
    k = N // RANKS
    mse = nn.MSELoss()
    outs = []
    for r, nets in enumerate(replicas):
        for tag in ("G", "F"):
            nets[tag].zero_grad(set_to_none=True)
        g = gen_losses(nets, x[r * k:(r + 1) * k], y[r * k:(r + 1) * k], la, lc, li)
        g["gen"].backward()
        outs.append(g)
    average_grads(replicas, "G")
    average_grads(replicas, "F")
    G, F = replicas[0]["G"], replicas[0]["F"]
    nn.utils.clip_grad_norm_(list(G.parameters()) + list(F.parameters()), clip)
    opts["G"].step()
    opts["F"].step()
    sync_params(replicas, ("G", "F"))
    losses = {"loss_gen_total": sum(o["gen"].item() for o in outs) / RANKS}
    for tag, real_all, fk in (("DX", x, "fake_x"), ("DY", y, "fake_y")):
        lds = []
        for r, nets in enumerate(replicas):
            d = nets[tag]
            d.zero_grad(set_to_none=True)
            real = real_all[r * k:(r + 1) * k]
            a, b = d(real), d(outs[r][fk].detach())
            ld = 0.5 * (mse(a, torch.ones_like(a)) + mse(b, torch.zeros_like(b)))
            ld.backward()
            lds.append(ld.item())
        average_grads(replicas, tag)
        nn.utils.clip_grad_norm_(replicas[0][tag].parameters(), clip)
        opts[tag].step()
        sync_params(replicas, (tag,))
        losses["loss_" + tag] = sum(lds) / RANKS
    return losses


cmd = sys.argv[1]
if cmd == "batches":
    steps = int(sys.argv[3])
    pk = msgpack.Packer(use_bin_type=True)
    with open(sys.argv[2], "wb") as f:
        f.write(pk.pack({"kind": "epoch", "epoch": 1, "epochs": 1, "pairs": N * steps}))
        for s, (x, y) in enumerate(batches(steps)):
            for i in range(N):
                for dom, t in (("young", x[i]), ("old", y[i])):
                    f.write(pk.pack({"kind": "tensor", "id": "%s%d_%d" % (dom, s, i), "domain": dom,
                                     "dtype": "f32", "shape": [3, HW, HW], "data": t.numpy().tobytes()}))
    sys.exit(0)

ours_path, metrics_path, steps = sys.argv[2], sys.argv[3], int(sys.argv[4])
nets = build(8, 2, 8, seed=1234)
replicas = [nets] + [copy.deepcopy(nets) for _ in range(RANKS - 1)]
opts = adams(nets)
ref_losses = [ddp_step(replicas, opts, x, y) for x, y in batches(steps)]

ours = [json.loads(l) for l in open(metrics_path) if '"phase": "step"' in l]
assert len(ours) == steps, "expected %d step records, got %d" % (steps, len(ours))
worst_loss = 0.0
for a, b in zip(ours, ref_losses):
    for k, v in b.items():
        worst_loss = max(worst_loss, abs(a[k] - v) / abs(v))
fail, worst_lr, worst_buf, checked = compare_checkpoint(ours_path, nets)
print("2-rank cyclegan-step vs PyTorch DDP simulation, %d steps: losses max rel %.2g, parameters max %.3g lr, "
      "BN statistics max |d| %.2g, %d tensors" % (steps, worst_loss, worst_lr, worst_buf, checked))
if worst_loss > 1e-5 or fail:
    sys.exit("mismatch: loss rel %.3g; %s" % (worst_loss, "; ".join(fail[:5])))
