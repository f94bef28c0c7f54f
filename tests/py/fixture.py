"""Writer of the tiny fixture format read by tests/unit/fixture.h.

File: magic b"AGFX", u32 version (1), u32 count, then per tensor:
u32 name length, name bytes (UTF-8), u32 ndim, ndim x i64 shape,
then prod(shape) little-endian float32 values.
"""
import struct

import numpy as np


class Fixture:
    def __init__(self):
        self.items = []

    def add(self, name, t):
        if hasattr(t, "detach"):
            t = t.detach().cpu().float().numpy()
        a = np.array(t, dtype=np.float32, copy=True, order="C")  # snapshot: tensors change later
        self.items.append((name, a))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"AGFX" + struct.pack("<II", 1, len(self.items)))
            for name, a in self.items:
                nb = name.encode()
                f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.ndim))
                f.write(struct.pack("<%dq" % a.ndim, *a.shape))
                f.write(a.astype("<f4").tobytes())
