#!/usr/bin/python3
"""The PyTorch / NumPy / SciPy side of tests/fid.bats.

    ref_fid.py weights OUT.pth SEED
        the FID Inception module tree (pytorch-fid's: torchvision inception_v3 with
        the FIDInceptionA/C/E_1/E_2 blocks) with random weights; BN running stats
        calibrated on noise so activations stay O(1) through the 94 layers, gamma
        and beta random; saved as a plain state_dict in torch's legacy (non-zip)
        format like pt_inception-2015-12-05-6726825d.pth.
    ref_fid.py features W.pth STREAM CONV STATS [DOMAIN]
        run every image/tensor record of STREAM (of DOMAIN when given) through the
        PyTorch network with the input handling of CONV (pytorch-fid|torchmetrics)
        and compare with the 'features' tensor of our STATS file; prints the
        differences, exit 1 above the tolerance.
    ref_fid.py mkstats OUT N D SEED [RANK]
        random features [N,D] (rank RANK when given) -> OUT: our format
        (safetensors: mu F64, sigma F64, n I64, features F32) or .npz (mu, sigma)
    ref_fid.py fid A B        FID as pytorch-fid (scipy.linalg.sqrtm), %.17g
    ref_fid.py fid-eig A B    FID as torch-fidelity (eigenvalues of s1@s2), %.17g
    ref_fid.py fid-lowrank A B  FID from the features of A (fewer rows than dimensions), exact
    ref_fid.py kid A B SUBSETS SIZE   KID as torch-fidelity (RandomState(2020)), "mean std"
    ref_fid.py npz-check A B  A (.npz) and B (.npz) hold the same mu and sigma bit for bit
"""
import json
import struct
import sys

import numpy as np


# ---------------------------------------------------------------------------
# statistics files

def st_read(path):
    """safetensors -> {name: numpy array}"""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    dt = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], dt[v["dtype"]]).reshape(v["shape"])
    return out


def st_write(path, tensors):
    """{name: numpy array} -> safetensors, with reference.py's writer"""
    import torch
    from reference import save_safetensors
    save_safetensors(path, {k: torch.from_numpy(np.array(a, order="C")) for k, a in tensors.items()})


def load_stats(path):
    """(mu, sigma, features or None)"""
    if path.endswith(".npz"):
        f = np.load(path)
        return f["mu"][:], f["sigma"][:], None
    t = st_read(path)
    return t["mu"], t["sigma"], t.get("features")


# ---------------------------------------------------------------------------
# FID / KID references

def fid_sqrtm(mu1, s1, mu2, s2, eps=1e-6):
    """pytorch-fid 0.3.0 calculate_frechet_distance."""
    from scipy import linalg
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("Imaginary component %g" % np.max(np.abs(covmean.imag)))
        covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def fid_eig(mu1, s1, mu2, s2):
    """torch-fidelity: sum of sqrt of the eigenvalues of s1 @ s2, real parts."""
    diff = mu1 - mu2
    ev = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).real.sum())


def fid_lowrank(f1, f2):
    """FID from the features when a set has fewer rows than dimensions: with A the centred
    features of set 1, tr sqrt(S1 S2) = sum sqrt(eig(A S2 A^T / (n1-1))), an n1 x n1 symmetric
    problem without the d - n1 null directions whose rounding noise the d x d methods see."""
    from scipy import linalg
    a1, a2 = f1.astype(np.float64), f2.astype(np.float64)
    mu1, mu2 = a1.mean(axis=0), a2.mean(axis=0)
    s1, s2 = np.cov(a1, rowvar=False), np.cov(a2, rowvar=False)
    c1 = a1 - mu1
    ev = linalg.eigvalsh(c1 @ s2 @ c1.T / (len(a1) - 1))
    ev = ev[ev > ev.max() * len(ev) * np.finfo(float).eps]
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum())


def kid(f1, f2, subsets, size):
    """torch-fidelity kid_features_to_metric, in float64."""
    f1 = f1.astype(np.float64)
    f2 = f2.astype(np.float64)
    d = f1.shape[1]
    rng = np.random.RandomState(2020)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        x = f1[rng.choice(len(f1), size, replace=False)]
        y = f2[rng.choice(len(f2), size, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        m = size
        mmds[i] = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) \
            - 2 * kxy.sum() / (m * m)
    return mmds.mean(), mmds.std()


def mkstats(out, n, d, seed, rank=None):
    rng = np.random.RandomState(seed)
    if rank:
        feats = rng.rand(n, rank) @ rng.rand(rank, d)
    else:
        feats = rng.rand(n, d) * rng.rand(d) * 2 + rng.rand(d)
    feats = feats.astype(np.float32)
    act = feats.astype(np.float64)
    mu = act.mean(axis=0)
    sigma = np.cov(act, rowvar=False)
    if out.endswith(".npz"):
        np.savez_compressed(out, mu=mu, sigma=sigma)
    else:
        st_write(out, {"mu": mu, "sigma": sigma, "n": np.array(n, dtype="<i8"), "features": feats})


# ---------------------------------------------------------------------------
# the network

def build(seed=0):
    import torch
    import torch.nn.functional as F
    import torchvision
    from torchvision.models import inception as tvi

    class FIDInceptionA(tvi.InceptionA):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b5, b3, bp], 1)

    class FIDInceptionC(tvi.InceptionC):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = self.branch7x7dbl_1(x)
            for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
                bd = m(bd)
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b7, bd, bp], 1)

    class FIDInceptionE(tvi.InceptionE):
        def __init__(self, cin, maxpool):
            super().__init__(cin)
            self.maxpool = maxpool

        def forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
            if self.maxpool:
                bp = F.max_pool2d(x, 3, 1, 1)
            else:
                bp = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            return torch.cat([b1, b3, bd, self.branch_pool(bp)], 1)

    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False,
                                          init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, 32)
    net.Mixed_5c = FIDInceptionA(256, 64)
    net.Mixed_5d = FIDInceptionA(288, 64)
    net.Mixed_6b = FIDInceptionC(768, 128)
    net.Mixed_6c = FIDInceptionC(768, 160)
    net.Mixed_6d = FIDInceptionC(768, 160)
    net.Mixed_6e = FIDInceptionC(768, 192)
    net.Mixed_7b = FIDInceptionE(1280, False)
    net.Mixed_7c = FIDInceptionE(2048, True)
    return net


def pool3(net, x):
    """[n,3,299,299] in [-1,1] -> [n,2048]: pytorch-fid's blocks 0-3."""
    import torch.nn.functional as F
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
        x = getattr(net, name)(x)
    x = F.max_pool2d(x, 3, 2)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, 2)
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
        x = getattr(net, name)(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def make_weights(out, seed):
    import torch
    net = build(seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
                m.momentum = None  # cumulative: one pass sets the batch statistics
        net.train()
        pool3(net, torch.rand(3, 3, 299, 299, generator=g) * 2 - 1)
    net.eval()
    torch.save(net.state_dict(), out, _use_new_zipfile_serialization=False)


# ---------------------------------------------------------------------------
# input handling (docs/fid-inception.md §1)

def resize_tf1(x, size=299):
    """torch-fidelity interpolate_bilinear_2d_like_tensorflow1x(align_corners=False), 'slow'."""
    import torch
    h, w = x.shape[2], x.shape[3]
    gx = torch.arange(0, size, 1, dtype=x.dtype) * torch.tensor(w / size, dtype=torch.float32)
    gxl = gx.long()
    gxh = (gxl + 1).clamp_max(w - 1)
    dx = gx - gxl.float()
    gy = torch.arange(0, size, 1, dtype=x.dtype) * torch.tensor(h / size, dtype=torch.float32)
    gyl = gy.long()
    gyh = (gyl + 1).clamp_max(h - 1)
    dy = gy - gyl.float()
    i00 = x[:, :, gyl, :][:, :, :, gxl]
    i01 = x[:, :, gyl, :][:, :, :, gxh]
    i10 = x[:, :, gyh, :][:, :, :, gxl]
    i11 = x[:, :, gyh, :][:, :, :, gxh]
    i0 = i00 + (i01 - i00) * dx.view(1, 1, 1, size)
    i1 = i10 + (i11 - i10) * dx.view(1, 1, 1, size)
    return i0 + (i1 - i0) * dy.view(1, 1, size, 1)


def prepare(rec, conv):
    """One record -> [1,3,299,299] network input, as pytorch-fid or torchmetrics would."""
    import io

    import torch
    import torch.nn.functional as F
    from PIL import Image
    if rec["kind"] == "image":
        px = np.asarray(Image.open(io.BytesIO(rec["bytes"])).convert("RGB"))
        u8 = torch.from_numpy(px.copy()).permute(2, 0, 1)[None]
        x01 = u8.float().div(255) if conv == "pytorch-fid" else None
    else:
        c, h, w = rec["shape"]
        if rec["dtype"] == "u8":
            u8 = torch.from_numpy(np.frombuffer(rec["data"], np.uint8).reshape(1, c, h, w).copy())
            x01 = u8.float().div(255)
        else:
            y = torch.from_numpy(np.frombuffer(rec["data"], np.float32).reshape(1, c, h, w).copy())
            x01 = y * 0.5 + 0.5
            u8 = (x01 * 255).clamp(0, 255).byte()  # torchmetrics normalize=True (clamped first)
    if conv == "pytorch-fid":
        x = F.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1
    x = resize_tf1(u8.float())
    return (x - 128) / 128


def features(wpath, stream, conv, stats, domain=None):
    import msgpack
    import torch
    net = build(0)
    net.load_state_dict(torch.load(wpath))
    net.eval()
    xs = []
    with open(stream, "rb") as f:
        for rec in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30):
            if rec.get("kind") in ("image", "tensor") and (domain is None or rec.get("domain") == domain):
                xs.append(prepare(rec, conv))
    with torch.no_grad():
        want = pool3(net, torch.cat(xs)).double().numpy()
    got = st_read(stats)["features"].astype(np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    d = np.abs(got - want)
    scale = np.abs(want).max()
    rel = d.max() / scale
    print("# %d images, %s: features max |d| = %.3g, max |feature| = %.3g, max |d|/max|f| = %.3g"
          % (len(xs), conv, d.max(), scale, rel))
    # Tolerance: fp32 through 94 convolutions with BN folded into the weights on our side
    # (PyTorch applies it after the conv) and different GEMM summation orders.
    ok = rel <= 1e-4 and np.allclose(got, want, rtol=1e-3, atol=1e-4 * scale)
    sys.exit(0 if ok else 1)


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "weights":
        make_weights(a[0], int(a[1]))
    elif cmd == "features":
        features(a[0], a[1], a[2], a[3], a[4] if len(a) > 4 else None)
    elif cmd == "mkstats":
        mkstats(a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]) if len(a) > 4 else None)
    elif cmd in ("fid", "fid-eig"):
        m1, s1, _ = load_stats(a[0])
        m2, s2, _ = load_stats(a[1])
        print("%.17g" % (fid_sqrtm(m1, s1, m2, s2) if cmd == "fid" else fid_eig(m1, s1, m2, s2)))
    elif cmd == "fid-lowrank":
        print("%.17g" % fid_lowrank(load_stats(a[0])[2], load_stats(a[1])[2]))
    elif cmd == "kid":
        _, _, f1 = load_stats(a[0])
        _, _, f2 = load_stats(a[1])
        print("%.17g %.17g" % kid(f1, f2, int(a[2]), int(a[3])))
    elif cmd == "npz-check":
        x, y = np.load(a[0]), np.load(a[1])
        assert sorted(x.files) == sorted(y.files) == ["mu", "sigma"], (x.files, y.files)
        for k in ("mu", "sigma"):
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert np.array_equal(x[k], y[k]), k
        print("ok")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
