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
