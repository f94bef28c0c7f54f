"""Make a small UTKFace-style folder for tests: faces.py DIR [N] [SIZE].

Writes N young (18-28) and N+3 old (40+) JPEG faces of SIZE px (random but
smooth pictures), plus children/middle-aged files, names that do not parse,
a non-image file and a PNG, so the scan rules are exercised.  Deterministic.
"""
import os
import random
import sys

from PIL import Image

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
size = int(sys.argv[3]) if len(sys.argv) > 3 else 48
rnd = random.Random(1234)
os.makedirs(out, exist_ok=True)


def picture(seed):
    r = random.Random(seed)
    base = [r.randrange(256) for _ in range(3)]
    img = Image.new("RGB", (size, size))
    px = img.load()
    for y in range(size):
        for x in range(size):
            px[x, y] = tuple((base[c] + 3 * x * (c + 1) + 5 * y + r.randrange(20)) % 256 for c in range(3))
    return img


def name(age, i):
    return "%d_%d_%d_2017011%07d.jpg.chip.jpg" % (age, i % 2, i % 5, 1000000 + i)


k = 0
for age_range, count in (((18, 28), n), ((40, 90), n + 3), ((1, 17), 4), ((29, 39), 3)):
    for _ in range(count):
        age = rnd.randint(*age_range)
        picture(k).save(os.path.join(out, name(age, k)), quality=90)
        k += 1
picture(k).save(os.path.join(out, "25_1_0_20170116000000001.png"))
picture(k + 1).save(os.path.join(out, "abc_1_0_20170116000000002.jpg.chip.jpg"))
picture(k + 2).save(os.path.join(out, "_1_0_20170116000000003.jpg.chip.jpg"))
with open(os.path.join(out, "README.txt"), "w") as f:
    f.write("not an image\n")
