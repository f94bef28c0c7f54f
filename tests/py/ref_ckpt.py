"""PyTorch side of tests/ckpt.bats: writes torch.save checkpoints and checks ours.

  ref_ckpt.py make DIR
      the reference G, F, DX, DY (ngf=ndf=8, 2 blocks) with random weights,
      two Adam steps (so optimiser state exists) and LambdaLR schedulers, saved
      as torch.save does in the reference project: DIR/ref.pth (zip) and
      DIR/ref_legacy.pth (_use_new_zipfile_serialization=False); also
      DIR/halves.pth (fp16 + bf16 + f64 + int tensors, views with storage
      offsets and strides, shared storages, a Parameter, step as a number),
      in both formats (halves_legacy.pth), and DIR/ref_st.safetensors: the
      same checkpoint converted by Python (state_tensors).
  ref_ckpt.py check-st ST PTH
      every tensor of PTH (flattened as docs/ckpt.md says) is in the
      safetensors file ST, bit for bit, with the same dtype and shape.
  ref_ckpt.py check-pth OURS.pth REF.pth
      torch.load (and weights_only=True) reads OURS; every tensor equals REF's,
      the epoch and optimiser hyper-parameters match; the nets, optimisers
      and schedulers load into the reference objects.
  ref_ckpt.py evil DIR
      hostile inputs: a pickle calling os.system, a truncated zip, a zip
      whose member declares a huge size, a tensor reaching past its storage,
      wrong shapes for G.
"""
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import Discriminator, Generator, adams, build, perturb_bn, save_safetensors, state_tensors  # noqa: E402

torch.set_num_threads(2)
NETS = ("G", "F", "DX", "DY")


def make_state(seed=0):
    nets = build(8, 2, 8, seed)
    g = perturb_bn(nets, seed + 1)
    opts = adams(nets)
    n_epochs = 4
    sched = {k: torch.optim.lr_scheduler.LambdaLR(
        o, lambda e: 1.0 if e < n_epochs // 2 else max(0.0, (n_epochs - e) / (n_epochs - n_epochs // 2)))
        for k, o in opts.items()}
    x = torch.randn(2, 3, 32, 32, generator=g)
    for _ in range(2):
        for k, n in nets.items():
            opts[k].zero_grad()
            n(x).square().mean().backward()
            opts[k].step()
    for _ in range(3):
        for s in sched.values():
            s.step()
    state = {"epoch": 3}
    state.update({k: n.state_dict() for k, n in nets.items()})
    state.update({"opt_" + k: o.state_dict() for k, o in opts.items()})
    state.update({"sched_" + k: s.state_dict() for k, s in sched.items()})
    return state


def halves():
    g = torch.Generator().manual_seed(5)
    base = torch.randn(6, 10, generator=g)
    shared = torch.randn(40, generator=g)
    sd = OrderedDict()
    sd["f16"] = torch.randn(3, 4, generator=g).half()
    sd["bf16"] = torch.randn(5, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i32"] = torch.arange(-3, 3, dtype=torch.int32)
    sd["u8"] = torch.arange(250, 256, dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["transposed"] = base.t()                    # stride (1, 10)
    sd["sliced"] = base[1:5:2, 3:9:3]              # offset 13, stride (20, 3)
    sd["shared_a"] = shared[5:25].view(4, 5)       # two views of one storage
    sd["shared_b"] = shared[::7]
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride 0
    sd["half_view"] = torch.randn(4, 6, generator=g).half()[:, 1::2]
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
    return {"net": sd, "opt_net": {"state": {0: {"step": 7, "exp_avg": torch.ones(2, 3)}},
                                   "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]},
            "note": "hello", "epoch": 11}


def flatten(obj):
    """The flat names/tensors ckpt import makes (docs/ckpt.md)."""
    out = {}
    for k, v in obj.items():
        if isinstance(v, dict) and "param_groups" in v:
            for idx, fields in v["state"].items():
                for f, x in fields.items():
                    out["%s.state.%d.%s" % (k, idx, f)] = x if torch.is_tensor(x) else torch.tensor(float(x))
        elif isinstance(v, dict) and "last_epoch" in v:
            continue
        elif isinstance(v, dict):
            for n, t in v.items():
                if torch.is_tensor(t):
                    out["%s.%s" % (k, n)] = t.detach()
        elif torch.is_tensor(v):
            out[k] = v
    return out


def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


ST_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
            "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}


def load_st(path):
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], buf[8 + n + a:8 + n + b])
    return out, meta


def fail(msg):
    sys.exit("ref_ckpt.py: " + msg)


def cmd_make(d):
    os.makedirs(d, exist_ok=True)
    state = make_state()
    torch.save(state, os.path.join(d, "ref.pth"))
    torch.save(state, os.path.join(d, "ref_legacy.pth"), _use_new_zipfile_serialization=False)
    h = halves()
    torch.save(h, os.path.join(d, "halves.pth"))
    torch.save(h, os.path.join(d, "halves_legacy.pth"), _use_new_zipfile_serialization=False)
    nets = {k: state[k] for k in NETS}
    save_safetensors(os.path.join(d, "ref_st.safetensors"),
                     {"%s.%s" % (k, n): t for k, sd in nets.items() for n, t in sd.items()})


def cmd_check_st(st, pth):
    ours, meta = load_st(st)
    ref = flatten(torch.load(pth))
    for name, t in ref.items():
        if name not in ours:
            fail("%s: missing %s" % (st, name))
        dt, shape, b = ours[name]
        if ST_DTYPE[dt] != t.dtype or shape != list(t.shape):
            fail("%s: %s is %s %s, want %s %s" % (st, name, dt, shape, t.dtype, list(t.shape)))
        if b != raw(t):
            fail("%s: %s values differ" % (st, name))
    extra = set(ours) - set(ref)
    if extra:
        fail("%s: unexpected tensors %s" % (st, sorted(extra)[:5]))
    print("# check-st: %d tensors equal, metadata keys %s" % (len(ref), sorted(meta)))


def same(a, b, path):
    if torch.is_tensor(a):
        if not torch.is_tensor(b) or a.dtype != b.dtype or a.shape != b.shape or raw(a) != raw(b):
            fail("%s differs" % path)
    elif isinstance(a, dict):
        if set(a) != set(b):
            fail("%s: keys %s vs %s" % (path, sorted(map(str, a)), sorted(map(str, b))))
        for k in a:
            same(a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            fail("%s: lengths differ" % path)
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (path, i))
    elif a != b:
        fail("%s: %r vs %r" % (path, a, b))


def cmd_check_pth(ours_path, ref_path):
    ours = torch.load(ours_path)
    ref = torch.load(ref_path)
    try:
        same(ours, torch.load(ours_path, weights_only=True), "weights_only")
    except pickle.UnpicklingError as e:
        # torch 1.13's weights_only unpickler lacks BINFLOAT (opcode 71), so it
        # cannot read any checkpoint holding a float, torch.save's own included
        try:
            torch.load(ref_path, weights_only=True)
        except pickle.UnpicklingError as e2:
            if str(e2) != str(e) or "operand 71" not in str(e):
                raise
            print("# check-pth: weights_only=True fails on torch.save's own file too (%s): %s"
                  % (torch.__version__, str(e)[-40:]))
        else:
            raise
    for k in ref:
        if k not in ours:
            fail("missing top-level key %s" % k)
    same({k: ours[k] for k in NETS}, {k: ref[k] for k in NETS}, "nets")
    if ours["epoch"] != ref["epoch"]:
        fail("epoch %r vs %r" % (ours["epoch"], ref["epoch"]))
    for k in NETS:
        same(ours["opt_" + k]["state"], ref["opt_" + k]["state"], "opt_%s.state" % k)
        og, rg = ours["opt_" + k]["param_groups"][0], ref["opt_" + k]["param_groups"][0]
        for f in og:
            if og[f] != rg.get(f):
                fail("opt_%s.param_groups.%s: %r vs %r" % (k, f, og[f], rg.get(f)))
        same(ours["sched_" + k], ref["sched_" + k], "sched_" + k)
    # everything loads into the reference objects
    for k in NETS:
        net = Generator(8, 2) if k in ("G", "F") else Discriminator(8)
        net.load_state_dict(ours[k])
        opt = torch.optim.Adam(net.parameters())
        opt.load_state_dict(ours["opt_" + k])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
        if "sched_" + k in ours:
            sched.load_state_dict(ours["sched_" + k])
            if sched.last_epoch != ref["sched_" + k]["last_epoch"]:
                fail("sched_%s.last_epoch" % k)
    zf = zipfile.ZipFile(ours_path)
    for info in zf.infolist():
        if info.filename.split("/")[1] == "data":
            with open(ours_path, "rb") as f:
                f.seek(info.header_offset)
                h = f.read(30)
            nl, xl = struct.unpack("<HH", h[26:30])
            if (info.header_offset + 30 + nl + xl) % 64:
                fail("%s: data not 64-byte aligned" % info.filename)
    print("# check-pth: torch.load reads it; every tensor, epoch, optimiser and scheduler equal; loads into the models")


def cmd_check_weights(ours_path, net):
    """A nets-only export: weights_only=True reads it and it loads into the model."""
    sd = torch.load(ours_path, weights_only=True)[net]
    model = Generator(8, 2) if net in ("G", "F") else Discriminator(8)
    model.load_state_dict(sd)
    print("# check-weights: weights_only=True read %d tensors of %s and load_state_dict took them" % (len(sd), net))


def cmd_check_trained(pth_path, st_path):
    """A cyclegan-step checkpoint exported to .pth: torch.load reads it, the
    reference nets and Adams load it strictly, and every tensor equals ours."""
    ck = torch.load(pth_path)
    ours, _ = load_st(st_path)

    def same_bytes(t, key):
        if key not in ours or raw(t) != ours[key][2]:
            fail("%s differs from our checkpoint" % key)
    nets = {"G": Generator(8, 2), "F": Generator(8, 2), "DX": Discriminator(8), "DY": Discriminator(8)}
    n = 0
    for tag, net in nets.items():
        net.load_state_dict(ck[tag])
        for k, v in net.state_dict().items():
            same_bytes(v, "%s.%s" % (tag, k))
            n += 1
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        opt.load_state_dict(ck["opt_" + tag])
        for i, p in enumerate(net.parameters()):
            st = opt.state[p]
            same_bytes(st["exp_avg"], "opt_%s.state.%d.exp_avg" % (tag, i))
            same_bytes(st["exp_avg_sq"], "opt_%s.state.%d.exp_avg_sq" % (tag, i))
            n += 2
    if ck.get("epoch") != 1:
        fail("epoch %r, expected 1" % ck.get("epoch"))
    print("# check-trained: a cyclegan-step checkpoint loads into the reference nets and Adams; %d tensors equal" % n)


def crafted_zip(path, pkl, members=None, root="evil"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(root + "/data.pkl", pkl)
        for k, v in (members or {}).items():
            z.writestr(root + "/" + k, v)
        z.writestr(root + "/version", "3\n")
    open(path, "wb").write(buf.getvalue())


def cmd_evil(d):
    os.makedirs(d, exist_ok=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s/pwned" % d,))
    crafted_zip(os.path.join(d, "system.pth"), pickle.dumps({"G": Evil()}, protocol=2))
    # a real checkpoint cut in half
    ref = open(os.path.join(d, "ref.pth"), "rb").read()
    open(os.path.join(d, "truncated.pth"), "wb").write(ref[:len(ref) // 2])
    open(os.path.join(d, "truncated_legacy.pth"), "wb").write(
        open(os.path.join(d, "ref_legacy.pth"), "rb").read()[:-100])
    # a member whose central-directory entry declares 3 GB
    b = bytearray(ref)
    cd = b.find(b"PK\x01\x02")  # data.pkl, the first member
    struct.pack_into("<II", b, cd + 20, 3 << 30, 3 << 30)
    open(os.path.join(d, "huge.pth"), "wb").write(bytes(b))
    # a tensor whose view reaches past its storage (numel 4, shape 10)
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    z = zipfile.ZipFile(buf)
    root = z.namelist()[0].split("/")[0]
    pkl = z.read(root + "/data.pkl").replace(b"K\x04\x85", b"K\x0a\x85", 1)
    crafted_zip(os.path.join(d, "overrun.pth"), pkl, {"data/0": z.read(root + "/data/0")}, root)
    # wrong shapes for the reference generator
    st = make_state()
    st["G"]["model.1.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save({"G": st["G"]}, os.path.join(d, "wrong_shape.pth"))
    # a deep and self-referencing pickle: a list containing itself
    crafted_zip(os.path.join(d, "cycle.pth"), b"\x80\x02}q\x00X\x01\x00\x00\x00a]q\x01h\x01as.")


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"make": lambda: cmd_make(sys.argv[2]), "check-st": lambda: cmd_check_st(sys.argv[2], sys.argv[3]),
     "check-pth": lambda: cmd_check_pth(sys.argv[2], sys.argv[3]),
     "check-weights": lambda: cmd_check_weights(sys.argv[2], sys.argv[3]),
     "check-trained": lambda: cmd_check_trained(sys.argv[2], sys.argv[3]), "evil": lambda: cmd_evil(sys.argv[2])}[cmd]()
