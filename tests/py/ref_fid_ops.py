#!/usr/bin/python3
"""Fixture for tests/unit/test_fid_ops.c: the Inception ops of lib/backend/layers-pool.h in PyTorch.

    ref_fid_ops.py OUT     write OUT (tests/py/fixture.py format)

Cases (inputs, weights and PyTorch outputs):
  conv.<name>   F.conv2d with rectangular kernels, strides and padding (+ bias, ReLU)
  pool.<name>   F.max_pool2d / F.avg_pool2d (count_include_pad True and False)
  resize.<name> F.interpolate bilinear align_corners=False, and torch-fidelity's TF1 resize,
                up and down, followed by 2x-1 or (x-128)/128
  choice        numpy RandomState(2020).choice(n, m, replace=False) for a few (n, m)
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fixture import Fixture  # noqa: E402
from ref_fid import resize_tf1  # noqa: E402

torch.manual_seed(0)
fx = Fixture()

# name, n, cin, h, w, cout, kh, kw, stride, ph, pw
CONVS = [
    ("k1x7", 2, 5, 9, 11, 4, 1, 7, 1, 0, 3),
    ("k7x1", 2, 5, 9, 11, 6, 7, 1, 1, 3, 0),
    ("k3s2", 2, 4, 11, 9, 5, 3, 3, 2, 0, 0),
    ("k1x3", 1, 8, 8, 8, 3, 1, 3, 1, 0, 1),
    ("k1", 3, 7, 6, 5, 4, 1, 1, 1, 0, 0),
    ("k5p2", 2, 3, 7, 7, 4, 5, 5, 1, 2, 2),
]
for name, n, ci, h, w, co, kh, kw, s, ph, pw in CONVS:
    x = torch.randn(n, ci, h, w)
    wt = torch.randn(co, ci, kh, kw) * 0.3
    b = torch.randn(co) * 0.1
    y = F.relu(F.conv2d(x, wt, b, stride=s, padding=(ph, pw)))
    pre = "conv." + name
    fx.add(pre + ".x", x)
    fx.add(pre + ".w", wt)
    fx.add(pre + ".b", b)
    fx.add(pre + ".y", y)

# name, n, c, h, w, k, stride, pad, kind (0 max, 1 avg incl. pad, 2 avg excl. pad)
POOLS = [
    ("max3s2", 2, 3, 9, 8, 3, 2, 0, 0),
    ("max3s1p1", 2, 3, 7, 6, 3, 1, 1, 0),
    ("avg3s1p1", 2, 3, 7, 6, 3, 1, 1, 1),
    ("avgx3s1p1", 2, 3, 7, 6, 3, 1, 1, 2),
    ("avgx3s2p1", 1, 2, 8, 7, 3, 2, 1, 2),
]
for name, n, c, h, w, k, s, p, kind in POOLS:
    x = torch.randn(n, c, h, w)
    if kind == 0:
        y = F.max_pool2d(x, k, s, p)
    else:
        y = F.avg_pool2d(x, k, s, p, count_include_pad=(kind == 1))
    fx.add("pool.%s.x" % name, x)
    fx.add("pool.%s.y" % name, y)

# name, planes, h, w, ho, wo, mode (0 half-pixel + 2x-1 on [0,1], 1 TF1 + (x-128)/128 on 0..255)
RESIZES = [
    ("up_pf", 3, 48, 40, 299, 299, 0),
    ("down_pf", 3, 320, 301, 299, 299, 0),
    ("same_pf", 2, 299, 299, 299, 299, 0),
    ("up_tf1", 3, 48, 40, 299, 299, 1),
    ("down_tf1", 3, 320, 301, 299, 299, 1),
]
for name, planes, h, w, ho, wo, mode in RESIZES:
    if mode == 0:
        x = torch.rand(1, planes, h, w)
        y = 2 * F.interpolate(x, size=(ho, wo), mode="bilinear", align_corners=False) - 1
    else:
        x = torch.randint(0, 256, (1, planes, h, w)).float()
        y = (resize_tf1(x, ho) - 128) / 128
    fx.add("resize.%s.x" % name, x)
    fx.add("resize.%s.y" % name, y)

for n, m in ((10, 10), (1000, 7), (70000, 5)):
    rng = np.random.RandomState(2020)
    a = rng.choice(n, m, replace=False)
    b = rng.choice(n, m, replace=False)
    fx.add("choice.%d.%d" % (n, m), np.concatenate([a, b]).astype(np.float32))

fx.write(sys.argv[1])
