"""torchvision reference of `aug`: aug_ref.py MODE SIZE SEED IMAGES OURS.

Reads the image records in IMAGES and our tensor records in OURS (same
order), applies the reference transforms with PIL + torchvision after
torch.manual_seed(SEED) (train) and prints the max abs difference per
record and overall; exits 1 above the tolerance given in TOL (default 0).
"""
import io
import os
import sys

import msgpack
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import resize_for  # noqa: E402

mode, size, seed, images, ours = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
resize = int(os.environ.get("RESIZE", "0")) or resize_for(size)
# the reference squashes to a square: Resize((r, r)); aug --keep-aspect is Resize(r)
resize = resize if os.environ.get("KEEP_ASPECT") else (resize, resize)
tol = float(os.environ.get("TOL", "0"))
norm = [T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)]
if mode == "train":
    tf = T.Compose([T.RandomHorizontalFlip(0.5), T.Resize(resize), T.RandomCrop(size),
                    T.RandomRotation((0, 80))] + norm)
else:
    tf = T.Compose([T.Resize(resize), T.CenterCrop(size)] + norm)
torch.manual_seed(seed)
ins = [r for r in msgpack.Unpacker(open(images, "rb"), raw=False) if r["kind"] == "image"]
outs = [r for r in msgpack.Unpacker(open(ours, "rb"), raw=False) if r["kind"] == "tensor"]
assert len(ins) == len(outs), (len(ins), len(outs))
worst = 0.0
for a, b in zip(ins, outs):
    ref = tf(Image.open(io.BytesIO(a["bytes"])).convert("RGB")).numpy()
    got = np.frombuffer(b["data"], np.float32).reshape(b["shape"])
    assert a["id"] == b["id"]
    d = float(np.abs(ref - got).max())
    worst = max(worst, d)
print("aug --%s vs torchvision: %d images, max|d| = %.3g (%.2f u8 levels)" % (mode, len(ins), worst, worst * 127.5))
sys.exit(0 if worst <= tol else 1)
