"""Decode TensorBoard event files independently of the C writer.

tfevents_read.py DIR: checks every TFRecord's length and data CRC-32C
(masked, as TensorFlow's record writer does), decodes the Event protobufs
(wall_time, step, file_version, summary.value[tag, simple_value]) and
prints {"files": n, "version": ..., "scalars": {tag: [[step, value], ...]},
"images": {tag: [[step, width, height, is_png], ...]}}.
"""
import glob
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, w = k >> 3, k & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % w)
        yield f, w, v


out = {"files": 0, "version": None, "scalars": {}, "images": {}}
for path in sorted(glob.glob(sys.argv[1] + "/events.out.tfevents.*")):
    out["files"] += 1
    raw = open(path, "rb").read()
    i = 0
    while i < len(raw):
        (n,) = struct.unpack("<Q", raw[i:i + 8])
        assert struct.unpack("<I", raw[i + 8:i + 12])[0] == masked(raw[i:i + 8]), "length crc"
        data = raw[i + 12:i + 12 + n]
        assert struct.unpack("<I", raw[i + 12 + n:i + 16 + n])[0] == masked(data), "data crc"
        i += 16 + n
        step = 0
        for f, w, v in fields(data):
            if f == 2:
                step = v
            elif f == 3:
                out["version"] = v.decode()
            elif f == 5:
                for f2, _, val in fields(v):
                    tag, x, img = None, None, None
                    for f3, _, y in fields(val):
                        if f3 == 1:
                            tag = y.decode()
                        elif f3 == 2:
                            x = struct.unpack("<f", y)[0]
                        elif f3 == 4:  # Summary.Image: height, width, colorspace, encoded bytes
                            im = {f4: z for f4, _, z in fields(y)}
                            img = [im[2], im[1], im[4][:8] == b"\x89PNG\r\n\x1a\n"]
                    if img:
                        out["images"].setdefault(tag, []).append([step] + img)
                    else:
                        out["scalars"].setdefault(tag, []).append([step, x])
print(json.dumps(out))
