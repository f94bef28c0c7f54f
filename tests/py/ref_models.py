#!/usr/bin/python3
"""PyTorch reference for tests/unit/test_models.c: the generator and the
discriminator exactly as the reference builds them (small configs), their
default initialisation after torch.manual_seed(1234) (G built first, then D),
and forward + backward in training and eval mode, with BN running statistics
after each forward.  Written to OUT in the tests/py/fixture.py format.

    /usr/bin/python3 tests/py/ref_models.py OUT
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import Fixture  # noqa: E402
from reference import Discriminator, Generator  # noqa: E402

torch.set_num_threads(2)
NGF, NBLOCKS, NDF, N, HW = 8, 2, 8, 2, 32


fx = Fixture()
torch.manual_seed(1234)
nets = {"G": Generator(NGF, NBLOCKS), "D": Discriminator(NDF)}
for tag, net in nets.items():
    for k, v in net.state_dict().items():
        fx.add("init.%s.%s" % (tag, k), v.float())


def dump_state(prefix, net):
    for k, p in net.named_parameters():
        fx.add(prefix + ".grad." + k, p.grad)
    for k, b in net.named_buffers():
        fx.add(prefix + ".buf." + k, b.float())


for tag, net in nets.items():
    for mode in ("train", "eval"):
        net.train(mode == "train")
        net.zero_grad(set_to_none=False)
        x = (torch.rand(N, 3, HW, HW) * 2 - 1).requires_grad_(True)
        out = net(x)
        g = torch.randn_like(out)
        out.backward(g)
        pre = "%s.%s" % (tag, mode)
        fx.add(pre + ".x", x)
        fx.add(pre + ".out", out)
        fx.add(pre + ".g", g)
        fx.add(pre + ".dx", x.grad)
        dump_state(pre, net)

# Two calls of one generator kept alive together, back-propagated in reverse
# order: parameter gradients sum, BN statistics updated twice.
G = nets["G"]
G.train()
G.zero_grad(set_to_none=False)
x1, x2 = torch.rand(N, 3, HW, HW) * 2 - 1, torch.rand(N, 3, HW, HW) * 2 - 1
o1, o2 = G(x1), G(x2)
g1, g2 = torch.randn_like(o1), torch.randn_like(o2)
((o1 * g1).sum() + (o2 * g2).sum()).backward()
for k, v in (("x1", x1), ("x2", x2), ("out1", o1), ("out2", o2), ("g1", g1), ("g2", g2)):
    fx.add("G.two." + k, v)
dump_state("G.two", G)

fx.write(sys.argv[1])
