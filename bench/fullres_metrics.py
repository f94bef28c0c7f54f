"""How a translated picture compares with its input: detail kept and the
generator's period-2 checkerboard (README.md, "Full resolution").

  fullres_metrics.py INPUT OUTPUT [--size 128] [--resize 153] [--model-input X.png]

Prints one line: detail=RATIO checker=AMPLITUDE (u8 levels, out of 255).

detail: the energy (mean square over pixels and channels) of the
  difference of Gaussians (sigma 1 minus sigma 2) of OUTPUT over that of
  INPUT, both at INPUT's size (OUTPUT is resized to it, bilinear, when it
  is smaller).  1 = as much fine detail as the input.  With --model-input,
  OUTPUT over X, both at the model's size.
checker: the amplitude of the period-2 patterns (-1)^x, (-1)^y, (-1)^(x+y)
  in the model's pixel grid, of the change OUTPUT - INPUT: the largest, over
  the three patterns and the channels, of 2 |sum w c exp(i pi (a mx + b my))| / sum w
  over the pixels p of the framed region, (mx, my) being p's position in
  model pixels (the picture's central square resized to RESIZE and centre-
  cropped to SIZE, as translate frames it) and w = sin^2(pi mx / SIZE)
  sin^2(pi my / SIZE) a Hann window (without it the region's own edges
  leak into the measure).  With --model-input X.png (the
  generator's input at model size), OUTPUT is a --raw result and the change
  is OUTPUT - X, on the model's own grid.
"""
import argparse

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


def load(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def dog_energy(im):
    d = np.stack([gaussian_filter(im[..., c], 1.0) - gaussian_filter(im[..., c], 2.0) for c in range(3)], -1)
    return float(np.mean(d * d))


def checker(change, mx, my, inside, size):
    w = (np.sin(np.pi * mx / size) * np.sin(np.pi * my / size)) ** 2 * inside
    best = 0.0
    for a, b in ((1, 1), (1, 0), (0, 1)):
        e = w * np.exp(1j * np.pi * (a * mx + b * my))
        for c in range(3):
            best = max(best, 2 * abs(np.sum(change[..., c] * e)) / w.sum())
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--resize", type=int, default=0)
    ap.add_argument("--model-input")
    a = ap.parse_args()
    size, R = a.size, a.resize or (a.size * 306 + 128) // 256
    x, y = load(a.input), load(a.output)
    h, w = x.shape[:2]
    big = y
    if y.shape[:2] != (h, w):
        big = np.asarray(Image.open(a.output).convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float64)
    detail = dog_energy(big) / dog_energy(x)
    if a.model_input:
        xm = load(a.model_input)
        detail = dog_energy(y) / dog_energy(xm)
        change = y - xm
        g = np.arange(size) + 0.5
        mx, my = np.meshgrid(g, g)
        inside = np.ones(mx.shape, bool)
    else:
        change = big - x
        s = min(w, h)
        ox, oy = (w - s) // 2, (h - s) // 2
        o = round((R - size) / 2)
        px, py = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        mx, my = (px - ox) * R / s - o, (py - oy) * R / s - o
        inside = (mx >= 0) & (mx < size) & (my >= 0) & (my < size)
    print("detail=%.4f checker=%.4f" % (detail, checker(change, mx, my, inside, size)))


main()
