"""The reference aging-gan networks in PyTorch, for every parity test.

Generator (ResNet, reflection padding, BatchNorm) and Discriminator
(PatchGAN, BN then InstanceNorm, mean over the patch map) exactly as the
reference project builds them, so their state_dict names and default
initialisation are what our checkpoints must match; plus a minimal
safetensors writer (the format only: header JSON + raw data) so tests need
no extra Python package.
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as Fn


def resize_for(size):
    """The shorter side before the crop: the reference's Resize(256 + 50)
    kept in proportion at every size (lib/image/transform.h), 306 at 256."""
    return (size * 306 + 128) // 256


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.conv_block(x)


class Generator(nn.Module):
    def __init__(self, ngf, blocks):
        super().__init__()
        m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(True)]
        c = ngf
        for _ in range(2):
            m += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(True)]
            c *= 2
        m += [Res(c) for _ in range(blocks)]
        for _ in range(2):
            m += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                  nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


class Discriminator(nn.Module):
    def __init__(self, ndf):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1), nn.InstanceNorm2d(4 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 8 * ndf, 4, padding=1), nn.InstanceNorm2d(8 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * ndf, 1, 4, padding=1))

    def forward(self, x):
        x = self.model(x)
        return Fn.avg_pool2d(x, x.shape[2:]).view(x.shape[0], -1)


def perturb_bn(nets, seed, batches_tracked=None):
    """Random BN running statistics (so evaluation mode matters in a test);
    returns the torch.Generator drawn from, for more draws."""
    g = torch.Generator().manual_seed(seed)
    for net in nets.values():
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked") and batches_tracked is not None:
                b.fill_(batches_tracked)
    return g


def adams(nets, lr_g=2e-4, lr_d=1e-4):
    """One torch Adam per net, the reference's settings."""
    mk = lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.999), weight_decay=1e-4)
    return {tag: mk(net.parameters(), lr_g if tag in ("G", "F") else lr_d) for tag, net in nets.items()}


def gen_losses(nets, x, y, la=2.0, lc=4.0, li=0.5):
    """The generator loss of the reference, in its call order: the terms,
    the total ("gen"), the fakes and the discriminators' logits on them."""
    G, F, DX, DY = nets["G"], nets["F"], nets["DX"], nets["DY"]
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    fake_x, fake_y = F(y), G(x)
    rec_x, rec_y = F(fake_y), G(fake_x)
    lx, ly = DX(fake_x), DY(fake_y)
    f_adv, g_adv = mse(lx, torch.ones_like(lx)), mse(ly, torch.ones_like(ly))
    cyc = l1(rec_x, x) + l1(rec_y, y)
    idt = l1(G(y), y) + l1(F(x), x)
    loss = la * f_adv + la * g_adv + lc * cyc + li * idt
    return {"f_adv": f_adv, "g_adv": g_adv, "cyc": cyc, "id": idt, "gen": loss, "fake_x": fake_x,
            "fake_y": fake_y, "lx": lx, "ly": ly}


def train_step(nets, opts, x, y, la=2.0, lc=4.0, li=0.5, clip=1.0):
    """The reference's training step (DESIGN.md): generators, then DX, then DY.
    Returns the losses and gradient norms as tensors."""
    G, F = nets["G"], nets["F"]
    mse = nn.MSELoss()
    opts["G"].zero_grad(set_to_none=True)
    opts["F"].zero_grad(set_to_none=True)
    g = gen_losses(nets, x, y, la, lc, li)
    f_adv, g_adv, cyc, idt, loss, fake_x, fake_y = (g[k] for k in ("f_adv", "g_adv", "cyc", "id", "gen",
                                                                   "fake_x", "fake_y"))
    loss.backward()
    norm_gen = nn.utils.clip_grad_norm_(list(G.parameters()) + list(F.parameters()), clip)
    opts["G"].step()
    opts["F"].step()
    out = {"g_adv": g_adv, "f_adv": f_adv, "cyc": cyc, "id": idt, "gen": loss, "norm_gen": norm_gen}
    for tag, real, fake in (("DX", x, fake_x), ("DY", y, fake_y)):
        d, od = nets[tag], opts[tag]
        od.zero_grad(set_to_none=True)
        r, fk = d(real), d(fake.detach())
        ld = 0.5 * (mse(r, torch.ones_like(r)) + mse(fk, torch.zeros_like(fk)))
        ld.backward()
        out["norm_" + tag.lower()] = nn.utils.clip_grad_norm_(d.parameters(), clip)
        od.step()
        out[tag.lower()] = ld
    return out


def build(ngf=32, blocks=9, ndf=32, seed=None):
    """G, F, DX, DY in the reference's construction order."""
    if seed is not None:
        torch.manual_seed(seed)
    return {"G": Generator(ngf, blocks), "F": Generator(ngf, blocks),
            "DX": Discriminator(ndf), "DY": Discriminator(ndf)}


_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.float64: "F64"}


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor (contiguous copies are written)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def state_tensors(nets):
    """{"G.model.1.weight": tensor, ...} for a dict of nets."""
    return {"%s.%s" % (tag, k): v for tag, net in nets.items() for k, v in net.state_dict().items()}


def compare_checkpoint(path, nets):
    """Compare cyclegan-step's safetensors at path with the reference nets.
    Parameters: within 0.25 lr each, and at most 0.1% beyond 0.01 lr per net
    (Adam's first steps move every weight by about lr, so lr is the unit);
    buffers (BatchNorm statistics): 1e-5 relative.  Returns the failures, the
    worst parameter difference in lr, the worst buffer |d| and the tensor count."""
    import numpy as np
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    fail, worst_lr, worst_buf, checked = [], 0.0, 0.0, 0
    for tag, net in nets.items():
        lr = 2e-4 if tag in ("G", "F") else 1e-4
        params = dict(net.named_parameters())
        far = total = 0
        for k, v in net.state_dict().items():
            h = header["%s.%s" % (tag, k)]
            a, b = h["data_offsets"]
            got = np.frombuffer(raw[8 + n + a:8 + n + b], np.int64 if h["dtype"] == "I64" else np.float32)
            want = v.detach().numpy().reshape(-1)
            d = np.abs(got.astype(np.float64) - want)
            checked += 1
            if k in params:
                worst_lr = max(worst_lr, float(d.max()) / lr)
                far += int((d > 0.01 * lr).sum())
                total += d.size
                if d.max() > 0.25 * lr:
                    fail.append("%s.%s: max %.3g lr" % (tag, k, d.max() / lr))
            else:
                worst_buf = max(worst_buf, float(d.max()))
                if d.max() > 1e-5 * max(1.0, float(np.abs(want).max())):
                    fail.append("%s.%s: max |d| %.3g" % (tag, k, d.max()))
        if far > 0.001 * total:
            fail.append("%s: %d of %d parameters beyond 0.01 lr" % (tag, far, total))
    return fail, worst_lr, worst_buf, checked
