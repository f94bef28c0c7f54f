#!/usr/bin/python3
"""PyTorch reference for tests/unit/test_layers.c: runs every layer forward and
backward on random inputs with a random upstream gradient and writes inputs,
weights, outputs and gradients to OUT (tests/py/fixture.py format).

    /usr/bin/python3 tests/py/ref_layers.py OUT
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Fixture  # noqa: E402

torch.manual_seed(7)
fx = Fixture()


def run(prefix, mod, x, params=(), bufs=()):
    """forward + backward of mod on x; stores x, params, out, g, dx, dparams."""
    x = x.clone().requires_grad_(True)
    fx.add(prefix + ".x", x)
    for p in params:
        fx.add(prefix + "." + p, getattr(mod, p))
    for b in bufs:
        fx.add(prefix + ".before." + b, getattr(mod, b))
    out = mod(x)
    g = torch.randn_like(out)
    out.backward(g)
    fx.add(prefix + ".out", out)
    fx.add(prefix + ".g", g)
    fx.add(prefix + ".dx", x.grad)
    for p in params:
        fx.add(prefix + ".d" + p, getattr(mod, p).grad)
    for b in bufs:
        fx.add(prefix + ".after." + b, getattr(mod, b))


# conv2d: (name, N, Cin, H, W, Cout, k, stride, pad)
for name, n, ci, h, w, co, k, s, p in [
        ("conv3", 2, 3, 9, 8, 4, 3, 1, 1), ("conv4s2", 2, 5, 10, 9, 6, 4, 2, 1),
        ("conv7", 1, 3, 12, 11, 5, 7, 1, 0), ("conv1", 2, 6, 5, 4, 3, 1, 1, 0),
        ("conv3s2", 2, 4, 9, 10, 8, 3, 2, 1), ("conv4s1", 2, 6, 6, 5, 1, 4, 1, 1)]:
    m = nn.Conv2d(ci, co, k, stride=s, padding=p)
    run(name, m, torch.randn(n, ci, h, w), ("weight", "bias"))

# transposed conv: k3 s2 p1 output_padding 1 (the generator's upsampling)
m = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
run("convt", m, torch.randn(2, 4, 5, 6), ("weight", "bias"))

run("pad3", nn.ReflectionPad2d(3), torch.randn(2, 3, 8, 7))
run("pad1", nn.ReflectionPad2d(1), torch.randn(2, 2, 4, 5))

# BatchNorm2d with non-trivial affine parameters and running statistics
for name, train in [("bntrain", True), ("bneval", False)]:
    m = nn.BatchNorm2d(4)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
    m.train(train)
    run(name, m, torch.randn(3, 4, 5, 6) * 2 + 0.5, ("weight", "bias"),
        ("running_mean", "running_var"))

run("inorm", nn.InstanceNorm2d(3), torch.randn(2, 3, 6, 5) * 3 - 1)
run("relu", nn.ReLU(), torch.randn(2, 3, 4, 5))
run("lrelu", nn.LeakyReLU(0.2), torch.randn(2, 3, 4, 5))
run("tanh", nn.Tanh(), torch.randn(2, 3, 4, 5))


class PatchMean(nn.Module):
    def forward(self, x):
        return nn.functional.avg_pool2d(x, x.shape[2:]).view(x.shape[0], -1)


run("mean", PatchMean(), torch.randn(2, 1, 5, 6))

# losses against a tensor and against a constant (the LSGAN labels)
x, t = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
for name, fn in [("mse", nn.MSELoss()), ("l1", nn.L1Loss())]:
    xx = x.clone().requires_grad_(True)
    loss = fn(xx, t)
    loss.backward(torch.tensor(1.7))
    fx.add(name + ".x", x)
    fx.add(name + ".t", t)
    fx.add(name + ".loss", loss.reshape(1))
    fx.add(name + ".dx", xx.grad)
    xx = x.clone().requires_grad_(True)
    loss = fn(xx, torch.ones_like(xx))
    loss.backward()
    fx.add(name + "1.loss", loss.reshape(1))
    fx.add(name + "1.dx", xx.grad)


# 16-bit convolutions as lib/backend/backend.h defines them (what tensor cores do):
# operands rounded to the 16-bit type, float sums, results rounded again,
# bias added in float.  Computed here on the rounded copies in float.
def half_case(prefix, op, x, w, b, g, dtype, tag):
    r = lambda t: t.to(dtype).float()
    xr, wr = r(x).requires_grad_(True), r(w).requires_grad_(True)
    out = op(xr, wr)
    out.backward(r(g))
    pre = prefix + "." + tag
    fx.add(pre + ".out", r(out.detach()) + b.view(1, -1, 1, 1))
    fx.add(pre + ".dx", r(xr.grad))
    fx.add(pre + ".dweight", r(wr.grad))


saved = {k: torch.from_numpy(v) for k, v in fx.items}
for dtype, tag in [(torch.bfloat16, "bf16"), (torch.float16, "fp16")]:
    for name, s, p in [("conv3", 1, 1), ("conv3s2", 2, 1)]:
        x, w, b, g = (saved[name + "." + k] for k in ("x", "weight", "bias", "g"))
        half_case(name, lambda a, ww: torch.nn.functional.conv2d(a, ww, None, s, p), x, w, b, g, dtype, tag)
    x, w, b, g = (saved["convt." + k] for k in ("x", "weight", "bias", "g"))
    half_case("convt", lambda a, ww: torch.nn.functional.conv_transpose2d(a, ww, None, 2, 1, 1), x, w, b, g,
              dtype, tag)

fx.write(sys.argv[1])
