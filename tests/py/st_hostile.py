#!/usr/bin/python3
"""Small hostile or damaged checkpoints for tests/ckpt-limits.bats.

safetensors files are read and written with struct + json only (the layout is
an 8-byte header length, the JSON header, then the data area):

    st_hostile.py drop IN OUT NAME...         OUT = IN without the tensors NAME...
    st_hostile.py meta IN OUT KEY=VALUE...    OUT = IN with metadata KEY set to VALUE
    st_hostile.py stub OUT NGF BLOCKS         a generator's first conv [NGF,3,7,7] (F16) and
                                              empty residual-block weights, plus a
                                              discriminator's first conv: a small file that
                                              claims a large network
    st_hostile.py many-meta OUT N             N metadata keys and one tensor
    st_hostile.py many-tensors OUT N          N empty tensors
    st_hostile.py zero-stride OUT N           (torch) a .pth whose tensor 'w' is a view of
                                              N elements with stride 0 on a 1-element storage
"""
import json
import struct
import sys


def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in hdr.items()}
    return tensors, meta


def write(path, tensors, meta):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main(cmd, args):
    if cmd == "drop":
        t, meta = read(args[0])
        for name in args[2:]:
            del t[name]
        write(args[1], t, meta)
    elif cmd == "meta":
        t, meta = read(args[0])
        for kv in args[2:]:
            k, v = kv.split("=", 1)
            meta[k] = v
        write(args[1], t, meta)
    elif cmd == "stub":
        ngf, blocks = int(args[1]), int(args[2])
        t = {"G.model.1.weight": ("F16", [ngf, 3, 7, 7], bytes(2 * ngf * 3 * 7 * 7))}
        for b in range(blocks):
            t["G.model.%d.conv_block.1.weight" % (10 + b)] = ("F32", [0], b"")
        t["DX.model.0.weight"] = ("F32", [32, 3, 4, 4], bytes(4 * 32 * 3 * 4 * 4))
        write(args[0], t, {})
    elif cmd == "many-meta":
        n = int(args[1])
        write(args[0], {"x": ("F32", [1], bytes(4))}, {"k%06d" % i: "v" for i in range(n)})
    elif cmd == "many-tensors":
        n = int(args[1])
        write(args[0], {"t%06d" % i: ("F32", [0], b"") for i in range(n)}, {})
    elif cmd == "zero-stride":
        import torch
        torch.save({"w": torch.zeros(1).expand(int(args[1]))}, args[0])
    else:
        sys.exit("st_hostile.py: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
