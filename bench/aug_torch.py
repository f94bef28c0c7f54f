"""torchvision + PIL doing what `aug --train` does, on the same image records.

bench/aug_torch.py IMAGES SIZE: prints images/s on one core (torch threads 1).
"""
import io
import sys
import time

import msgpack
import torch
import torchvision.transforms as T
from PIL import Image

torch.set_num_threads(1)
recs = [r for r in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if r["kind"] == "image"]
size = int(sys.argv[2])
tf = T.Compose([T.RandomHorizontalFlip(0.5), T.Resize((size * 306 + 128) // 256), T.RandomCrop(size), T.RandomRotation((0, 80)),
                T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
torch.manual_seed(7)
best = 0.0
for _ in range(3):
    t = time.perf_counter()
    for r in recs:
        x = tf(Image.open(io.BytesIO(r["bytes"])).convert("RGB"))
        x.numpy().tobytes()  # the consumer needs the bytes, as aug writes them
    best = max(best, len(recs) / (time.perf_counter() - t))
print("%.1f" % best)
