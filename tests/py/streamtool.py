"""Read and write record streams from Python, for the tests.

  streamtool.py summary < stream       one JSON line per record: kind, id, dtype, shape, min/max
  streamtool.py images DIR... > stream image records for the named files (a Python producer)
  streamtool.py bad-tensor KIND > s    a tensor record that is wrong: shape | dtype | length
  streamtool.py tensors N S > stream   N random f32 tensor records of 3xSxS
"""
import json
import os
import sys

import msgpack
import numpy as np

DT = {"u8": np.uint8, "f16": np.float16, "f32": np.float32}


def summary():
    for rec in msgpack.Unpacker(sys.stdin.buffer, raw=False, max_buffer_size=1 << 30):
        out = {k: v for k, v in rec.items() if k not in ("data", "bytes")}
        if rec.get("kind") == "tensor":
            if rec["dtype"] == "bf16":
                a = (np.frombuffer(rec["data"], np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                a = np.frombuffer(rec["data"], DT[rec["dtype"]]).astype(np.float32)
            out.update(n=int(a.size), min=float(a.min()), max=float(a.max()), mean=float(a.mean()))
        if rec.get("kind") == "image":
            out["nbytes"] = len(rec["bytes"])
        print(json.dumps(out, sort_keys=True))


def images(paths):
    pk = msgpack.Packer(use_bin_type=True)
    for p in paths:
        data = open(p, "rb").read()
        rec = {"kind": "image", "id": os.path.basename(p), "age": 30, "domain": "young", "split": "val",
               "encoding": "png" if data[:4] == b"\x89PNG" else "jpeg", "bytes": data, "note": {"from": "python"}}
        sys.stdout.buffer.write(pk.pack(rec))


def bad_tensor(kind):
    rec = {"kind": "tensor", "id": "x", "dtype": "u8", "shape": [3, 8, 8], "data": bytes(3 * 8 * 8)}
    if kind == "shape":
        rec["shape"] = [3, 8]
    elif kind == "dtype":
        rec["dtype"] = "f64"
    elif kind == "length":
        rec["data"] = bytes(10)
    sys.stdout.buffer.write(msgpack.packb(rec, use_bin_type=True))


def tensors(n, s):
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.uniform(-1, 1, (3, s, s)).astype(np.float32)
        rec = {"kind": "tensor", "id": "t%d" % i, "domain": "young" if i % 2 == 0 else "old",
               "dtype": "f32", "shape": [3, s, s], "data": a.tobytes()}
        sys.stdout.buffer.write(msgpack.packb(rec, use_bin_type=True))


cmd = sys.argv[1]
if cmd == "summary":
    summary()
elif cmd == "images":
    images(sys.argv[2:])
elif cmd == "bad-tensor":
    bad_tensor(sys.argv[2])
elif cmd == "tensors":
    tensors(int(sys.argv[2]), int(sys.argv[3]))
else:
    sys.exit("streamtool.py: unknown command " + cmd)
