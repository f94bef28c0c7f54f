"""Fixtures and measurements for translate --face (tests/face.bats, bench/face.sh).

  face_scenes.py scenes OUT N SEED CROP...   paste N crops (cycling through
      the given 200x200 faces) into larger canvases, each with a random scale
      (0.5-2x), rotation (+-30 degrees) and offset; writes OUT/scene-K.png,
      OUT/crop-K.png (the face as pasted, unscaled) and OUT/scenes.tsv
  face_scenes.py compare REF.png GOT.png     translate --face-crop grids of the
      plain crops (REF) and of the scenes (GOT), one row per file: prints
      "detected D of N, mean |d| M/255, worst W/255" over the central 140x140
      of each aligned crop (a black row is a miss)
  face_scenes.py group OUT.png CROP          two faces (the crop at 1x and
      0.6x) side by side on one canvas
  face_scenes.py tiny OUT.png CROP PX        the face shrunk to PX pixels on a
      400x300 canvas (below the detector's reach)
  face_scenes.py exif OUT.jpg PHOTO O        PHOTO stored turned, with the
      EXIF orientation O (3, 6 or 8) that shows it upright again
  face_scenes.py diff A B [BOX]              max and mean |A - B| over the
      whole image, or outside BOX=x0,y0,x1,y1, and inside it
Deterministic for a given seed.
"""
import math
import os
import random
import sys

import numpy as np
from PIL import Image


def background(rnd, w, h):
    """A smooth random scene: a few coloured blobs, upsampled, plus noise."""
    small = np.array([[[rnd.randrange(40, 220) for _ in range(3)] for _ in range(6)] for _ in range(5)], np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    a = np.asarray(img).astype(np.int16)
    a += np.random.RandomState(rnd.randrange(1 << 30)).randint(-6, 7, (h, w, 1)).astype(np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def scenes(out, n, seed, crops):
    rnd = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    rows = []
    for k in range(n):
        src = crops[k % len(crops)]
        face = Image.open(src).convert("RGB")
        s = math.exp(rnd.uniform(math.log(0.5), math.log(2.0)))
        ang = rnd.uniform(-30, 30)
        side = round(200 * s)
        f = face.resize((side, side), Image.BICUBIC)
        mask = Image.new("L", (side, side), 255)
        f = f.rotate(ang, Image.BICUBIC, expand=True)
        mask = mask.rotate(ang, Image.BICUBIC, expand=True)
        W = max(480, f.width + rnd.randrange(60, 300))
        H = max(360, f.height + rnd.randrange(40, 200))
        canvas = background(rnd, W, H)
        x, y = rnd.randrange(0, W - f.width + 1), rnd.randrange(0, H - f.height + 1)
        canvas.paste(f, (x, y), mask)
        canvas.save(os.path.join(out, "scene-%03d.png" % k))
        face.save(os.path.join(out, "crop-%03d.png" % k))
        rows.append("%d\t%s\t%.3f\t%.2f\t%d\t%d\t%dx%d" % (k, os.path.basename(src), s, ang, x, y, W, H))
    with open(os.path.join(out, "scenes.tsv"), "w") as fh:
        fh.write("k\tsource\tscale\tangle\tx\ty\tcanvas\n" + "\n".join(rows) + "\n")


def compare(ref, got):
    a = np.asarray(Image.open(ref).convert("RGB")).astype(np.int32)
    b = np.asarray(Image.open(got).convert("RGB")).astype(np.int32)
    if a.shape != b.shape:
        sys.exit("compare: %s is %s, %s is %s" % (ref, a.shape, got, b.shape))
    n = a.shape[0] // 200
    found, diffs = 0, []
    for k in range(n):
        ra, rb = a[200 * k:200 * k + 200, :200], b[200 * k:200 * k + 200, :200]
        if ra.max() == 0:
            continue  # the plain crop itself was not found: not counted
        if rb.max() == 0:
            diffs.append(None)
            continue
        found += 1
        diffs.append(np.abs(ra[30:170, 30:170] - rb[30:170, 30:170]).mean())
    d = [x for x in diffs if x is not None]
    print("detected %d of %d, mean |d| %.2f/255, worst %.2f/255" % (found, len(diffs), np.mean(d) if d else -1,
                                                                   max(d) if d else -1))
    for k, x in enumerate(diffs):
        print("# %d %s" % (k, "missed" if x is None else "%.2f" % x))


def group(out, crop):
    face = Image.open(crop).convert("RGB")
    canvas = background(random.Random(7), 720, 420)
    canvas.paste(face, (60, 110))
    canvas.paste(face.resize((120, 120), Image.BICUBIC), (470, 150))
    canvas.save(out)


def tiny(out, crop, px):
    face = Image.open(crop).convert("RGB").resize((px, px), Image.BICUBIC)
    canvas = background(random.Random(8), 400, 300)
    canvas.paste(face, (180, 130))
    canvas.save(out)


def exif(out, photo, o):
    img = Image.open(photo).convert("RGB")
    # the pixels as a camera would store them, turned so that applying
    # orientation o shows the photo upright
    stored = {3: img.transpose(Image.ROTATE_180), 6: img.transpose(Image.ROTATE_90),
              8: img.transpose(Image.ROTATE_270)}[o]
    ex = Image.Exif()
    ex[0x0112] = o
    stored.save(out, quality=95, exif=ex.tobytes())


def diff(a, b, box=None):
    x = np.asarray(Image.open(a).convert("RGB")).astype(np.int32)
    y = np.asarray(Image.open(b).convert("RGB")).astype(np.int32)
    if x.shape != y.shape:
        sys.exit("diff: %s is %s, %s is %s" % (a, x.shape, b, y.shape))
    d = np.abs(x - y)
    if box is None:
        print("max %d mean %.3f" % (d.max(), d.mean()))
        return
    x0, y0, x1, y1 = box
    m = np.zeros(d.shape[:2], bool)
    m[y0:y1, x0:x1] = True
    print("outside max %d mean %.3f inside max %d mean %.3f" % (d[~m].max(), d[~m].mean(), d[m].max(), d[m].mean()))


cmd = sys.argv[1]
if cmd == "scenes":
    scenes(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
elif cmd == "compare":
    compare(sys.argv[2], sys.argv[3])
elif cmd == "group":
    group(sys.argv[2], sys.argv[3])
elif cmd == "tiny":
    tiny(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif cmd == "exif":
    exif(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif cmd == "diff":
    diff(sys.argv[2], sys.argv[3], [int(v) for v in sys.argv[4].split(",")] if len(sys.argv) > 4 else None)
else:
    sys.exit("face_scenes.py: unknown command " + cmd)
