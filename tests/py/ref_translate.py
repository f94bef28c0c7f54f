"""Reference inference for translate's parity test.

  ref_translate.py ckpt OUT.safetensors NGF BLOCKS SEED
      random G/F/DX/DY (seeded), BN running statistics perturbed so that
      evaluation mode matters, saved as our checkpoint layout.
  ref_translate.py run CKPT y2o|o2y SIZE IN_IMAGE OUT.png
      the reference's inference: Resize((r, r)) with r = resize_for(size), CenterCrop(size),
      ToTensor, Normalize(0.5, 0.5), generator in eval mode, clamp to
      [-1, 1], save as save_image does.
  ref_translate.py diff A.png B.png   prints the max abs pixel difference
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import Generator, build, perturb_bn, resize_for, save_safetensors, state_tensors  # noqa: E402

torch.set_num_threads(2)


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        if v["dtype"] == "BF16":  # the upper half of a float32
            arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[v["dtype"]]
            arr = np.frombuffer(buf, dt)
            arr = arr.astype(np.float32) if dt == np.float16 else arr
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    return out


if __name__ != "__main__":
    cmd = None
else:
    cmd = sys.argv[1]
if cmd == "ckpt":
    ngf, blocks, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    nets = build(ngf, blocks, ngf, seed)
    perturb_bn(nets, seed + 1, batches_tracked=7)
    save_safetensors(sys.argv[2], state_tensors(nets), {"format": "aging-cyclegan"})
elif cmd == "run":
    sd = load_safetensors(sys.argv[2])
    prefix = "G." if sys.argv[3] == "y2o" else "F."
    own = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    ngf = own["model.1.weight"].shape[0]
    blocks = sum(1 for k in own if k.endswith("conv_block.1.weight"))
    net = Generator(ngf, blocks)
    net.load_state_dict(own)
    net.eval()
    size = int(sys.argv[4])
    tf = T.Compose([T.Resize((resize_for(size), resize_for(size))), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    x = tf(Image.open(sys.argv[5]).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        y = net(x).clamp(-1, 1)[0]
    y = (y + 1) / 2
    arr = y.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    Image.fromarray(arr).save(sys.argv[6])
elif cmd == "diff":
    a = np.asarray(Image.open(sys.argv[2]).convert("RGB"), dtype=np.int32)
    b = np.asarray(Image.open(sys.argv[3]).convert("RGB"), dtype=np.int32)
    if a.shape != b.shape:
        sys.exit("shapes differ: %s vs %s" % (a.shape, b.shape))
    print(int(np.abs(a - b).max()))
