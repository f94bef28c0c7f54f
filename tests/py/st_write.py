#!/usr/bin/python3
"""Independent safetensors writer and reader for tests/unit/test_safetensors.c.

Uses only struct + json + numpy (Debian has no python3-safetensors), following
the format as the huggingface reference writes it: tensors sorted by
descending alignment then name, compact JSON with __metadata__ first, header
padded with spaces to a multiple of 8.

    st_write.py write PATH   write the shared fixture (below) to PATH
    st_write.py check PATH   read PATH (written by the C writer), validate the
                             layout rules and compare every value bit for bit
                             with the fixture; exit 0 and print "ok" if equal

The fixture must match fixture_add() in test_safetensors.c.
"""
import json
import struct
import sys

import numpy as np

# dtype name -> (numpy dtype to hold the raw little-endian elements, size)
DTYPES = {
    "F64": ("<f8", 8), "I64": ("<i8", 8), "U64": ("<u8", 8),
    "F32": ("<f4", 4), "I32": ("<i4", 4), "U32": ("<u4", 4),
    "F16": ("<f2", 2), "BF16": ("<u2", 2), "I16": ("<i2", 2), "U16": ("<u2", 2),
    "U8": ("u1", 1), "I8": ("i1", 1), "BOOL": ("u1", 1),
}


def bf16(values):
    """float32 values (exactly representable in bf16) -> raw bf16 bits."""
    bits = np.asarray(values, dtype="<f4").view("<u4")
    assert np.all(bits & 0xFFFF == 0), "fixture bf16 values must be exact"
    return (bits >> 16).astype("<u2")


def fixture():
    """name -> (dtype, shape, raw numpy array); and the metadata."""
    t = {
        "a.f32": ("F32", [2, 3], np.arange(6, dtype="<f4") * np.float32(0.25) - np.float32(0.5)),
        "b.f16": ("F16", [5], np.array([1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24], dtype="<f2")),
        "c.bf16": ("BF16", [2, 2], bf16([1.0, -3.0, 0.15625, 2.0**100])),
        "d.f64": ("F64", [3], np.array([0.1, -1e300, 3.0], dtype="<f8")),
        "e.i64": ("I64", [], np.array([7], dtype="<i8")),
        "f.u8": ("U8", [4], np.array([0, 1, 254, 255], dtype="u1")),
        "g.bool": ("BOOL", [3], np.array([1, 0, 1], dtype="u1")),
        "h.i32": ("I32", [2, 1], np.array([-5, 2147483647], dtype="<i4")),
        "i.empty": ("F32", [0, 4], np.zeros(0, dtype="<f4")),
        "G.model.1.weight": ("F32", [2, 3, 1, 1], np.arange(6, dtype="<f4")),
    }
    meta = {
        "format": "aging-cyclegan",
        "epoch": "3",
        "config": json.dumps({"lr": 0.0002, "name": "\u00e9"}, ensure_ascii=False),
        "quote": 'a"b\\c\n\t',
    }
    return t, meta


def write(path):
    tensors, meta = fixture()
    names = sorted(tensors, key=lambda n: (-DTYPES[tensors[n][0]][1], n))
    header, data, at = {"__metadata__": meta}, b"", 0
    for n in names:
        dt, shape, arr = tensors[n]
        raw = arr.tobytes()
        header[n] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + len(raw)]}
        data += raw
        at += len(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def fail(msg):
    print("# st_write.py check: " + msg)
    sys.exit(1)


def check(path):
    buf = open(path, "rb").read()
    if len(buf) < 8:
        fail("file too short")
    (n,) = struct.unpack("<Q", buf[:8])
    if n % 8:
        fail("header length %d is not a multiple of 8" % n)
    hb = buf[8:8 + n]
    if not hb.startswith(b"{"):
        fail("header does not start with '{'")
    pairs = json.loads(hb.decode("utf-8"), object_pairs_hook=lambda p: p)
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        fail("duplicate keys")
    header = dict(pairs)
    meta = dict(header.pop("__metadata__", []))
    data = buf[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in
                   ((k, dict(v)) for k, v in header.items()))
    at = 0
    for b, e, k in spans:
        if b != at:
            fail("tensor %s starts at %d, expected %d" % (k, b, at))
        at = e
    if at != len(data):
        fail("tensors end at %d, data area is %d bytes" % (at, len(data)))

    tensors, want_meta = fixture()
    if meta != want_meta:
        fail("metadata %r != %r" % (meta, want_meta))
    if set(header) != set(tensors):
        fail("tensor names %s != %s" % (sorted(header), sorted(tensors)))
    for name, (dt, shape, arr) in tensors.items():
        v = dict(header[name])
        b, e = v["data_offsets"]
        if v["dtype"] != dt or v["shape"] != shape:
            fail("%s: %s %s, want %s %s" % (name, v["dtype"], v["shape"], dt, shape))
        if b % DTYPES[dt][1]:
            fail("%s: offset %d not aligned to %d" % (name, b, DTYPES[dt][1]))
        got = np.frombuffer(data[b:e], dtype=DTYPES[dt][0])
        if got.tobytes() != arr.tobytes():
            fail("%s: values %r != %r" % (name, got, arr))
    print("# st_write.py check: ok")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit("usage: st_write.py write|check PATH")
    (write if sys.argv[1] == "write" else check)(sys.argv[2])
