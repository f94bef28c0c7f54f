"""The reference split in PyTorch terms: utk_split_ref.py DIR SEED [EXCLUDE].

Prints `id age domain split` TSV lines for train, val, test (young and old
alternating), which `utk-split --list --split all` must reproduce.  The
shuffle is torch.randperm under torch.manual_seed(SEED), young then old
from one generator; cuts at floor(0.8 n) and floor(0.9 n); each split
trimmed so young and old have the same length.
"""
import os
import sys

import torch

d, seed = sys.argv[1], int(sys.argv[2])
excl = set()
if len(sys.argv) > 3:
    excl = {l.split("\t")[0].strip().split("/")[-1] for l in open(sys.argv[3]) if l.strip()}
groups = {"young": [], "old": []}
for f in sorted(os.listdir(d)):
    if not f.lower().endswith((".jpg", ".jpeg", ".png")) or f in excl:
        continue
    age_s = f.split("_")[0]
    if not age_s.isdigit() or "_" not in f:
        continue
    age = int(age_s)
    if 18 <= age <= 28:
        groups["young"].append((f, age))
    elif age >= 40:
        groups["old"].append((f, age))
g = torch.Generator().manual_seed(seed)
for k in ("young", "old"):
    groups[k] = [groups[k][i] for i in torch.randperm(len(groups[k]), generator=g).tolist()]
for split in ("train", "val", "test"):
    parts = {}
    for k, v in groups.items():
        n = len(v)
        a, b = (0, n * 8 // 10) if split == "train" else (n * 8 // 10, n * 9 // 10) if split == "val" else (n * 9 // 10, n)
        parts[k] = v[a:b]
    m = min(len(parts["young"]), len(parts["old"]))
    for i in range(m):
        for k in ("young", "old"):
            f, age = parts[k][i]
            print("%s\t%d\t%s\t%s" % (f, age, k, split))
