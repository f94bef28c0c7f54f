#!/usr/bin/env bash
# Remake the seed corpora of tests/fuzz/corpus/ (committed; run this only to
# change them).  Valid inputs come from the tools and from PyTorch, NumPy and
# PIL (the writers the readers must accept), plus a few edge cases; every
# file is small (the whole corpus is tens of KB) and none is a real face.
#   tests/fuzz/make-corpus.sh [BIN_DIR]     (default: bin/ of the checkout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../../bin}" && pwd)
out=$here/corpus
tmp=$(mktemp -d)
PY=/usr/bin/python3 # the Debian packages (deps.sh), whatever python3 is first on PATH
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"/{stream,safetensors,pickle,pth,image,npz}

# stream: utk-split's records (epoch, image with JPEG bytes) of a tiny
# folder, aug's tensor records in every dtype, and hand-made edge cases.
"$PY" "$here/../py/faces.py" "$tmp/faces" 1 8 >/dev/null
"$bin/utk-split" --split all --limit 1 "$tmp/faces" >"$out/stream/utk-split"
"$bin/utk-split" --epochs 2 --limit 1 "$tmp/faces" >"$tmp/epochs"
for dt in u8 f16 bf16 f32; do
    "$bin/aug" --eval --size 8 --resize 9 --dtype "$dt" --in "$tmp/epochs" >"$out/stream/aug-$dt"
done
head -c 40 "$out/stream/aug-u8" >"$out/stream/cut-inside-record"
printf '\x81\xa0\xc0' >"$out/stream/empty-key"
"$PY" - "$out/stream" <<'PY'
import msgpack, sys
d = sys.argv[1]
def save(name, *recs):
    with open(f"{d}/{name}", "wb") as f:
        for r in recs:
            f.write(msgpack.packb(r, use_bin_type=True))
save("end-record", {"kind": "end", "producers": 2}, {"kind": "x", "nested": {"a": [1, 2.5, None, True]}})
save("tensor-odd", {"kind": "tensor", "dtype": "f32", "shape": [1, 1, 1], "data": b"\0\0\x80\x3f", "id": ""})
PY

# pth and pickle: torch.save of a tiny generator-shaped state dict, an Adam
# state and a scheduler, zip and legacy; a view sharing its storage.  The
# pickle corpus holds the data.pkl members and the legacy pickle stream.
"$PY" - "$tmp" <<'PY'
import collections, sys, torch
d = sys.argv[1]
torch.manual_seed(0)
g = collections.OrderedDict()
g["model.1.weight"] = torch.randn(1, 3, 7, 7).half()
g["model.2.running_mean"] = torch.zeros(1)
g["model.2.num_batches_tracked"] = torch.tensor(3)
g["model.10.conv_block.1.weight"] = torch.randn(4, 2).t()   # strided view
base = torch.arange(6.0)
g["view"] = base[2:4]
w = torch.nn.Parameter(torch.ones(2))
opt = torch.optim.Adam([w], lr=2e-4, betas=(0.5, 0.999))
w.sum().backward()
opt.step()
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
ckpt = {"epoch": 3, "G": g, "opt_G": opt.state_dict(), "sched_G": {"last_epoch": 3, "base_lrs": [2e-4]}}
torch.save(ckpt, f"{d}/train.pth")
torch.save(ckpt, f"{d}/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"w": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)}, f"{d}/tiny.pth")
torch.save({"w": torch.tensor([1.5])}, f"{d}/tiny-legacy.pth", _use_new_zipfile_serialization=False)
PY
cp "$tmp"/{train,legacy,tiny,tiny-legacy}.pth "$out/pth/"
for f in train tiny; do
    "$PY" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [m for m in z.namelist() if m.endswith("/data.pkl")][0]; sys.stdout.buffer.write(z.read(n))' \
        "$tmp/$f.pth" >"$out/pickle/$f.pkl"
done
cp "$tmp/tiny-legacy.pth" "$out/pickle/legacy-stream"
printf '\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01G?\xf8\x00\x00\x00\x00\x00\x00\x88N\x8a\x01\xffh\x01es.' \
    >"$out/pickle/memo-list"

# safetensors: the tools' own files (ckpt import), one with F16, I64 and a
# strided view converted, one BF16, and a zero-size tensor.
"$bin/ckpt" import --no-check "$tmp/train.pth" "$out/safetensors/train.safetensors" >/dev/null
"$bin/ckpt" import --no-check "$tmp/tiny.pth" "$out/safetensors/tiny.safetensors" >/dev/null
"$PY" - "$out/safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"__metadata__": {"format": "aging-cyclegan"},
                "empty": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                "s": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1] + "/scalar-empty.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<d", 0.5))
PY

# image: every PNG colour type and depth the decoder converts (palette,
# grey 1/8/16 bit, alpha, interlaced) and JPEG grey, RGB, CMYK, progressive.
"$PY" - "$out/image" <<'PY'
import io, sys
from PIL import Image
d = sys.argv[1]
rgb = Image.new("RGB", (5, 3))
rgb.putdata([((x * 60) % 256, (y * 90) % 256, 128) for y in range(3) for x in range(5)])
rgb.save(f"{d}/rgb.png")
rgb.save(f"{d}/interlaced.png", interlace=1)
rgb.convert("P").save(f"{d}/palette.png")
rgb.convert("1").save(f"{d}/grey1.png")
rgb.convert("LA").save(f"{d}/grey-alpha.png")
rgb.convert("RGBA").save(f"{d}/rgba.png")
g16 = Image.new("I;16", (2, 2))
g16.putdata([0, 255, 256, 65535])
g16.save(f"{d}/grey16.png")
rgb.save(f"{d}/rgb.jpg", quality=50)
rgb.save(f"{d}/progressive.jpg", quality=50, progressive=True)
rgb.convert("L").save(f"{d}/grey.jpg", quality=50)
rgb.convert("CMYK").save(f"{d}/cmyk.jpg", quality=50)
PY
head -c 60 "$out/image/rgb.png" >"$out/image/cut.png"

# npz: pytorch-fid statistics as np.savez and np.savez_compressed write
# them, float32 and Fortran order, and a lone .npy.
"$PY" - "$out/npz" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
mu = np.arange(3, dtype=np.float64)
sigma = np.eye(3)
np.savez(f"{d}/stats.npz", mu=mu, sigma=sigma)
np.savez_compressed(f"{d}/compressed.npz", mu=mu.astype(np.float32), sigma=np.asfortranarray(sigma[:, :2]))
np.save(f"{d}/lone.npy", np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
PY
du -sh "$out"/*
