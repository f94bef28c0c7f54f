#!/usr/bin/python3
"""PyTorch reference for tests/unit/test_train_step.c.

1. adam.*: torch.optim.Adam(betas=(0.5, 0.999), weight_decay=1e-4) alone on
   three parameter tensors for three steps (lr changed between steps as the
   LambdaLR scheduler does), parameters and moments after each step.
2. clip.*: nn.utils.clip_grad_norm_ alone on a list of tensors (some larger
   than one 8192-element block of the C reduction), three cases.
3. step{1,2,3}.*: the reference CycleGAN training step (as in
   shared/bench/torch_cyclegan_bench.py, fp32) on a small config, seeded
   like the C side, three steps on three different batches; after each step
   the losses, every state_dict tensor of G, F, DX, DY (BN statistics and
   num_batches_tracked included) and every Adam moment.

    /usr/bin/python3 tests/py/ref_train_step.py OUT
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Fixture  # noqa: E402
from reference import build, gen_losses, train_step  # noqa: E402

torch.set_num_threads(2)
NGF, NBLOCKS, NDF, N, HW, SEED = 8, 2, 8, 2, 32, 1234
fx = Fixture()
mk_adam = lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.999), weight_decay=1e-4)

# ---- 1. Adam alone
g = torch.Generator().manual_seed(7)
params = [(torch.randn(n, generator=g) * 0.1).requires_grad_(True) for n in (10007, 64, 3)]
for i, p in enumerate(params):
    fx.add("adam.p0.%d" % i, p)
opt = mk_adam(params, 2e-4)
for step, lr in enumerate((2e-4, 2e-4, 1.5e-4), 1):
    opt.param_groups[0]["lr"] = lr
    for i, p in enumerate(params):
        # gradients over several magnitudes, some exactly zero
        gr = torch.randn(p.shape, generator=g) * (10.0 ** -torch.randint(1, 6, p.shape, generator=g))
        gr[::17] = 0
        p.grad = gr
        fx.add("adam.g%d.%d" % (step, i), gr)
    opt.step()
    for i, p in enumerate(params):
        st = opt.state[p]
        fx.add("adam.p%d.%d" % (step, i), p)
        fx.add("adam.m%d.%d" % (step, i), st["exp_avg"])
        fx.add("adam.v%d.%d" % (step, i), st["exp_avg_sq"])

# ---- 2. clip_grad_norm_ alone: (scale of the grads, max_norm)
for case, (scale, max_norm) in enumerate(((1.0, 1.0), (1e-3, 1.0), (0.3, 0.5))):
    ts = [torch.zeros(n, requires_grad=True) for n in (20000, 9000, 100, 1)]
    for i, t in enumerate(ts):
        t.grad = torch.randn(t.shape, generator=g) * scale
        fx.add("clip%d.g.%d" % (case, i), t.grad)
    norm = nn.utils.clip_grad_norm_(ts, max_norm)
    fx.add("clip%d.norm" % case, norm.reshape(1))
    for i, t in enumerate(ts):
        fx.add("clip%d.out.%d" % (case, i), t.grad)

# ---- 3. the training step
nets = build(NGF, NBLOCKS, NDF, seed=SEED)
G, F, DX, DY = nets["G"], nets["F"], nets["DX"], nets["DY"]
for net in nets.values():
    net.train()
oG, oF, oDX, oDY = mk_adam(G.parameters(), 2e-4), mk_adam(F.parameters(), 2e-4), \
    mk_adam(DX.parameters(), 1e-4), mk_adam(DY.parameters(), 1e-4)
opts = {"G": oG, "F": oF, "DX": oDX, "DY": oDY}
mse = nn.MSELoss()
for tag, net in nets.items():
    for k, v in net.state_dict().items():
        fx.add("init.%s.%s" % (tag, k), v.float())

# Kinks: a ReLU/LeakyReLU input within rounding of 0 takes the other branch
# in C, and the gradients of that channel jump (seen at ~1/3 of the steps:
# ~360k ReLU inputs per step, C's BN outputs differ by ~1e-6).  Data seed
# 2024 keeps every step clear of that; the smallest |input| of any
# activation in each step is written as "step<s>.margin" for the C test's
# diagnostics.
margin = [float("inf")]


def watch(mod, inp):
    margin[0] = min(margin[0], inp[0].detach().abs().min().item())


for net in nets.values():
    for mod in net.modules():
        if isinstance(mod, (nn.ReLU, nn.LeakyReLU)):
            mod.register_forward_pre_hook(watch)

gen = torch.Generator().manual_seed(2024)
for step in (1, 2, 3):
    margin[0] = float("inf")
    x = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
    y = torch.rand(N, 3, HW, HW, generator=gen) * 2 - 1
    pre = "step%d." % step
    fx.add(pre + "x", x)
    fx.add(pre + "y", y)

    out = train_step(nets, opts, x, y)
    fx.add(pre + "margin", torch.tensor([margin[0]]))
    fx.add(pre + "losses", torch.stack([out[k] for k in ("g_adv", "f_adv", "cyc", "id", "gen", "dx", "dy",
                                                          "norm_gen", "norm_dx", "norm_dy")]).detach())
    for tag, net in nets.items():
        for k, v in net.state_dict().items():
            fx.add("%s%s.%s" % (pre, tag, k), v.float())
        for k, p in net.named_parameters():  # after clipping, as the step used them
            fx.add("%sgrad.%s.%s" % (pre, tag, k), p.grad)
        st = opts[tag].state
        for i, p in enumerate(net.parameters()):
            fx.add("%sopt_%s.%d.exp_avg" % (pre, tag, i), st[p]["exp_avg"])
            fx.add("%sopt_%s.%d.exp_avg_sq" % (pre, tag, i), st[p]["exp_avg_sq"])
            fx.add("%sopt_%s.%d.step" % (pre, tag, i), st[p]["step"].reshape(1))

# ---- 4. evaluation (validation losses): eval mode, no gradients, on batch 1
for net in nets.values():
    net.eval()
with torch.no_grad():
    x = torch.from_numpy(fx.items[[n for n, _ in fx.items].index("step1.x")][1])
    y = torch.from_numpy(fx.items[[n for n, _ in fx.items].index("step1.y")][1])
    g = gen_losses(nets, x, y)
    lx, ly = g["lx"], g["ly"]
    rx, ry = DX(x), DY(y)
    ldx = 0.5 * (mse(rx, torch.ones_like(rx)) + mse(lx, torch.zeros_like(lx)))
    ldy = 0.5 * (mse(ry, torch.ones_like(ry)) + mse(ly, torch.zeros_like(ly)))
    fx.add("eval.losses", torch.stack([g["g_adv"], g["f_adv"], g["cyc"], g["id"], g["gen"], ldx, ldy]))

fx.write(sys.argv[1])
