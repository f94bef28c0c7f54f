#!/usr/bin/env python3
"""Per-op-class CPU time from `perf script -F time,ip,sym` with call chains.

Each sample under ROOT (a function of the call chain, e.g.
cyclegan_train_step or net_forward) goes to the class of the innermost frame
that names one of our ops (bench/profile.sh runs perf and this).  Prints the
classes, their share and CPU milliseconds per call of ROOT (samples / Hz /
CALLS; every thread's samples count).
  perf script ... | profile_ops.py ROOT HZ CALLS
"""
import collections
import re
import sys

CLASSES = [  # innermost match wins, so the bias sums inside a conv are theirs
    ("bias sums", r"^cpu_(add|sum)_bias"),
    ("batchnorm", r"^cpu_batchnorm_"),
    ("instnorm", r"^cpu_instnorm_"),
    ("reflection pad", r"^cpu_reflpad_"),
    ("activations", r"^cpu_act_"),
    ("adam", r"^cpu_adam_step"),
    ("grad clipping", r"^cpu_(sumsq|scale)$|clip_grad"),
    ("losses, means", r"^cpu_(loss|mean)_"),
    ("axpy", r"^cpu_axpy"),
    ("bf16 casts", r"half|bf16"),
    ("zero, copy", r"^cpu_(zero|copy)$"),
    ("convolutions", r"conv|gemm|kernel_avx|pack_|im2col|col2im|dnnl"),
]


def samples(lines):
    cur = None
    for line in lines:
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            cur = []
        elif cur is not None and len(line.split()) >= 2:
            cur.append(line.split()[1].split("+")[0])
    if cur:
        yield cur


def classify(stack, root):
    for f in stack:
        name = re.sub(r"\._omp_fn\.\d+$|\.(arch_|default|resolver).*$", "", f)
        for cls, pat in CLASSES:
            if re.search(pat, name):
                return cls
        if f == root:
            break
    if any("page_fault" in f for f in stack):
        return "page faults"
    if any(f.startswith(("GOMP_", "gomp_")) or "libgomp" in f for f in stack[:3]):
        return "OpenMP waits"
    return "other: " + (stack[0] if stack else "?")


def main():
    root, hz, calls = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    count = collections.Counter()
    for st in samples(sys.stdin):
        if root in st:
            count[classify(st, root)] += 1
    total = sum(count.values())
    if not total:
        sys.exit("profile_ops: no samples under " + root)
    other = sum(v for k, v in count.items() if k.startswith("other: "))
    rows = [(k, v) for k, v in count.items() if not k.startswith("other: ")] + [("other", other)]
    for k, v in sorted(rows, key=lambda kv: -kv[1]):
        print("%-16s %5.1f%% %8.0f ms" % (k, 100.0 * v / total, v / hz / calls * 1e3))
    print("%-16s %5.1f%% %8.0f ms CPU per call of %s" % ("total", 100.0, total / hz / calls * 1e3, root))


if __name__ == "__main__":
    main()
