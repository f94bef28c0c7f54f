#!/usr/bin/python3
"""Reference outputs for tests/unit/test_image.c and test_half.c.

Usage: /usr/bin/python3 tests/py/image_ops_ref.py OUTDIR [half]

Generates small test images (noise + gradients, odd sizes, grey / RGBA /
LA / palette / 1-bit / 16-bit PNGs, PIL-written JPEGs incl. grey and CMYK),
runs PIL 9.4 / torchvision 0.14 on them and writes, into OUTDIR:
  inputs (*.png, *.jpg), expected outputs as raw HWC u8 (*.u8) or raw
  little-endian f32/u16/u32 arrays, and manifest.txt, one case per line:
      op input expected w h [args...]
The C test decodes `input` with image_decode, applies `op` and compares
with `expected` (w x h x 3 bytes unless noted).  If UTKFACE_DIR is set, 5
real files get a `utk` case: decode, Resize(250), CenterCrop(200).
With `half`, only the f16/bf16 files (what test_half reads), in seconds.
Exit status 3 means torch/torchvision are missing (the C test then skips).
"""
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torchvision.transforms as T
    import torchvision.transforms.functional as F
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"image_ops_ref: {e}", file=sys.stderr)
    sys.exit(3)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)
lines = []


def path(name):
    return os.path.join(out, name)


def save_u8(name, img):
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    a.tofile(path(name))
    return a.shape[1], a.shape[0]


def case(op, inp, img, *args):
    exp = f"{op}_{len(lines)}.u8"
    w, h = save_u8(exp, img)
    lines.append(" ".join([op, inp, exp, str(w), str(h)] + [str(a) for a in args]))


def test_image(w, h):
    """Smooth gradients plus noise: both interpolation and edges matter."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                     127.5 + 127.5 * np.sin((x + 2 * y) / 7.0)], axis=-1)
    noise = rng.integers(-60, 61, size=(h, w, 3))
    a = np.clip(base + noise, 0, 255).astype(np.uint8)
    a[h // 3: h // 3 + 3, :, :] = 255  # hard edges
    a[:, w // 4, :] = 0
    return a


# ---- half / bf16 ----------------------------------------------------------------------
def half_refs():
    """f32 -> f16/bf16 on random and edge inputs, and every f16/bf16 pattern widened."""
    bits = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)  # any exponent
    f = np.concatenate([
        bits.view(np.float32),
        rng.normal(0, 1, 100000).astype(np.float32),
        (rng.normal(0, 1, 50000) * 1e-5).astype(np.float32),  # fp16 denormal range
        (rng.normal(0, 1, 50000) * 3e4).astype(np.float32),   # near fp16 overflow
        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, -65520, 2**-24, 2**-25,
                  2**-25 * 1.0000001, 3 * 2**-25, 5.96e-8, 1e-45, -1e-45, 3.4028235e38, 1.0009765625,
                  1.00048828125, 1.00146484375, 1 + 2**-8, 1 + 3 * 2**-8, 1.1754942e-38],
                 np.float32),
        np.array([0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345, 0x7fbfffff], np.uint32).view(np.float32),
    ]).astype(np.float32)
    f.astype("<f4").tofile(path("half_in.f32"))
    t = torch.from_numpy(f)
    t.half().view(torch.int16).numpy().astype("<i2").tofile(path("half_out.u16"))
    t.bfloat16().view(torch.int16).numpy().astype("<i2").tofile(path("bf16_out.u16"))
    allh = torch.arange(65536, dtype=torch.int32).to(torch.int16)
    allh.view(torch.float16).float().numpy().astype("<f4").tofile(path("half_all.f32"))
    allh.view(torch.bfloat16).float().numpy().astype("<f4").tofile(path("bf16_all.f32"))
    lines.append(f"half half_in.f32 half_out.u16 {len(f)} 1")


if sys.argv[2:] == ["half"]:  # test_half needs only these: no images, no timing loop
    half_refs()
    sys.exit(0)

# ---- inputs -----------------------------------------------------------------
big = Image.fromarray(test_image(200, 200))
big.save(path("rgb200.png"))
small = Image.fromarray(test_image(37, 53))
small.save(path("rgb37x53.png"))
wide = Image.fromarray(test_image(61, 29))
wide.save(path("rgb61x29.png"))
grey = Image.fromarray(test_image(45, 31)[:, :, 0])
grey.save(path("grey.png"))
rgba_a = np.concatenate([test_image(33, 21), rng.integers(0, 256, (21, 33, 1), dtype=np.uint8)], -1)
Image.fromarray(rgba_a, "RGBA").save(path("rgba.png"))
Image.fromarray(rgba_a[:, :, [0, 3]], "LA").save(path("la.png"))
pal = big.convert("P", palette=Image.ADAPTIVE, colors=50)
pal.info["transparency"] = 3
pal.save(path("pal.png"), transparency=3)
Image.fromarray(test_image(19, 23)[:, :, 1] > 128).save(path("bw1.png"))
g16 = (rng.integers(0, 1024, (27, 35))).astype(np.uint16)  # > 255 values: PIL clamps
g16[0, :10] = [0, 1, 254, 255, 256, 1000, 65535 // 64, 7, 128, 300]
Image.fromarray(g16).save(path("grey16.png"))
rgb16 = rng.integers(0, 65536, (17, 23, 3), dtype=np.uint64).astype(">u2")
# PIL cannot write 16-bit RGB; write the PNG by hand.
import struct
import zlib


def write_png(fn, arr, ctype, depth):
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(fn, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


write_png(path("rgb16.png"), rgb16, 2, 16)
rgba16 = rng.integers(0, 65536, (9, 11, 4), dtype=np.uint64).astype(">u2")
write_png(path("rgba16.png"), rgba16, 6, 16)
big.save(path("q90.jpg"), quality=90)
small.save(path("q75_444.jpg"), quality=75, subsampling=0)
wide.save(path("q60.jpg"), quality=60)
grey.save(path("grey.jpg"), quality=85)
big.convert("CMYK").save(path("cmyk.jpg"), quality=90)
big.save(path("prog.jpg"), quality=80, progressive=True)

# ---- decode ---------------------------------------------------------------------
for f in ["rgb200.png", "rgb37x53.png", "grey.png", "rgba.png", "la.png", "pal.png", "bw1.png",
          "grey16.png", "rgb16.png", "rgba16.png", "q90.jpg", "q75_444.jpg", "q60.jpg",
          "grey.jpg", "cmyk.jpg", "prog.jpg"]:
    case("decode", f, Image.open(path(f)).convert("RGB"))

# ---- geometry (inputs: decoded PNGs, so exact) ------------------------------------
imgs = {"rgb200.png": big, "rgb37x53.png": small, "rgb61x29.png": wide}
for f, (w, h) in [("rgb200.png", (306, 306)), ("rgb200.png", (64, 64)), ("rgb200.png", (123, 77)),
                  ("rgb200.png", (200, 57)), ("rgb200.png", (13, 200)), ("rgb37x53.png", (80, 80)),
                  ("rgb37x53.png", (36, 54)), ("rgb61x29.png", (7, 5)), ("rgb61x29.png", (256, 256))]:
    case("resize", f, F.resize(imgs[f], [h, w], T.InterpolationMode.BILINEAR), w, h)
for f, s in [("rgb200.png", 250), ("rgb200.png", 286), ("rgb37x53.png", 80), ("rgb37x53.png", 44),
             ("rgb61x29.png", 64), ("rgb61x29.png", 11)]:
    case("resize_short", f, T.Resize(s)(imgs[f]), s)
for f, (w, h) in [("rgb200.png", (128, 128)), ("rgb200.png", (199, 101)), ("rgb37x53.png", (20, 30)),
                  ("rgb37x53.png", (36, 53)), ("rgb61x29.png", (60, 28))]:
    case("center_crop", f, T.CenterCrop((h, w))(imgs[f]), w, h)
for f, (x, y, w, h) in [("rgb200.png", (5, 7, 100, 60)), ("rgb37x53.png", (0, 0, 37, 53)),
                        ("rgb37x53.png", (36, 52, 1, 1))]:
    case("crop", f, F.crop(imgs[f], y, x, h, w), x, y, w, h)
for f in imgs:
    case("hflip", f, F.hflip(imgs[f]))
angles = [0, 17.3, 45, 79.9, -30, 90, 180, 270, -90, 359.99, 123.4, 1e-40, -1e-40, 720.5]
for f in imgs:
    for a in angles:
        a32 = float(np.float32(a))  # RandomRotation draws float32 angles
        bits = int(np.array([a32], np.float32).view(np.uint32)[0])
        img = F.rotate(imgs[f], a32, T.InterpolationMode.NEAREST, expand=False, center=None, fill=0)
        case("rotate", f, img, f"0x{bits:08x}", a)
# the real pipeline's chain on the 200x200 image
chain = T.CenterCrop(200)(T.Resize(250)(big))
case("utk", "rgb200.png", chain)
chain = T.CenterCrop(200)(T.Resize(250)(Image.open(path("q90.jpg")).convert("RGB")))
case("utk", "q90.jpg", chain)

# ---- tensors --------------------------------------------------------------------------
norm = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
for f in ["rgb37x53.png", "rgb200.png"]:
    t = norm(imgs[f])
    exp = f"chw_{len(lines)}.f32"
    t.numpy().astype("<f4").tofile(path(exp))
    lines.append(f"to_chw {f} {exp} {t.shape[2]} {t.shape[1]}")
x = torch.from_numpy(rng.normal(0, 0.8, (3, 21, 17)).astype(np.float32))
x.view(-1)[:8] = torch.tensor([-1.0, 1.0, -5.0, 5.0, 0.0, 1e-8, -0.99999, 0.99999])
x.numpy().astype("<f4").tofile(path("from_chw.f32"))
y = ((x.clamp(-1, 1) + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
case("from_chw", "from_chw.f32", y.permute(1, 2, 0).numpy(), 3)

half_refs()

# ---- real UTKFace files ---------------------------------------------------------------
utk = os.environ.get("UTKFACE_DIR")
if utk and os.path.isdir(utk):
    names = sorted(n for n in os.listdir(utk) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    step = max(1, len(names) // 5)
    for n in names[::step][:5]:
        src = os.path.join(utk, n)
        chain = T.CenterCrop(200)(T.Resize(250)(Image.open(src).convert("RGB")))
        case("utk", src, chain)

# ---- timing of the torchvision+PIL chain (for the C test's speed figure) ----------------
data = open(path("q90.jpg"), "rb").read()
import io
tf = T.Compose([T.Resize(250), T.CenterCrop(200), T.RandomHorizontalFlip(), T.RandomRotation(30),
                T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
torch.set_num_threads(1)
n = 200
t0 = time.perf_counter()
for _ in range(n):
    tf(Image.open(io.BytesIO(data)).convert("RGB"))
dt = (time.perf_counter() - t0) / n
lines.append(f"pytime q90.jpg - {dt * 1e6:.1f} 0")

with open(path("manifest.txt"), "w") as fh:
    fh.write("\n".join(lines) + "\n")
