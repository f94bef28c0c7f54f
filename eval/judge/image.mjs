// image.mjs: the image side of the judge: PNG/JPEG decoding (pure JS) and the
// two image metrics, detail energy and checkerboard amplitude (README.md
// defines them).  An image is { w, h, rgb: Uint8Array of w*h*3 }.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jpeg = require('jpeg-js');
const { PNG } = require('pngjs');

// What a file that is no image looks like, for the error message.
function sniff(buf) {
    const head = buf.subarray(0, 512).toString('latin1');
    if (head.startsWith('GIF8')) return 'a GIF';
    if (buf.length >= 9 && buf.readUInt32LE(4) === 0 && head[8] === '{') return 'a safetensors file';
    if (!/[\x00-\x08\x0b\x0e-\x1f]/.test(head)) return 'text'; // no control bytes: ASCII or UTF-8
    return 'neither PNG nor JPEG';
}

export function decode(buf, name = 'image') {
    let px, w, h;
    if (buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47) {
        const p = PNG.sync.read(buf);
        ({ width: w, height: h } = p);
        px = p.data;
    } else if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) {
        const j = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
        ({ width: w, height: h } = j);
        px = j.data;
    } else {
        throw new Error(`not a PNG or JPEG image (${sniff(buf)})`);
    }
    if (!w || !h) throw new Error(`${name}: an empty image`);
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) {
        rgb[3 * i] = px[4 * i];
        rgb[3 * i + 1] = px[4 * i + 1];
        rgb[3 * i + 2] = px[4 * i + 2];
    }
    return { w, h, rgb };
}

// The centre F of an image, side for side (F = 1: the image itself).
export function crop(im, f) {
    if (f >= 1) return im;
    const w = Math.max(1, Math.round(im.w * f)), h = Math.max(1, Math.round(im.h * f));
    const x0 = Math.floor((im.w - w) / 2), y0 = Math.floor((im.h - h) / 2);
    const rgb = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++)
        rgb.set(im.rgb.subarray(3 * ((y0 + y) * im.w + x0), 3 * ((y0 + y) * im.w + x0 + w)), 3 * y * w);
    return { w, h, rgb };
}

// Resampling to w x h, separable: bilinear (pixel centres at +0.5, edges
// clamped) where an axis grows, the area average of the source pixels each
// output pixel covers where it shrinks (bilinear would alias a shrunken
// image's fine texture into false period-2 patterns).  Values stay
// fractional: the metrics never see a second rounding.
function taps(n, m) { // output index -> [[source index, weight], ...]
    const t = [];
    for (let i = 0; i < m; i++) {
        if (m >= n) {
            const s = Math.min(Math.max((i + 0.5) * n / m - 0.5, 0), n - 1), i0 = Math.floor(s);
            t.push([[i0, 1 - (s - i0)], [Math.min(i0 + 1, n - 1), s - i0]]);
        } else {
            const a = i * n / m, b = (i + 1) * n / m, row = [];
            for (let k = Math.floor(a); k < Math.min(Math.ceil(b), n); k++)
                row.push([k, (Math.min(b, k + 1) - Math.max(a, k)) / (b - a)]);
            t.push(row);
        }
    }
    return t;
}

export function resize(im, w, h) {
    if (im.w === w && im.h === h) return im;
    const tx = taps(im.w, w), ty = taps(im.h, h);
    const mid = new Float32Array(w * im.h * 3), out = new Float32Array(w * h * 3);
    for (let y = 0; y < im.h; y++)
        for (let x = 0; x < w; x++)
            for (let c = 0; c < 3; c++) {
                let v = 0;
                for (const [k, wt] of tx[x]) v += wt * im.rgb[3 * (y * im.w + k) + c];
                mid[3 * (y * w + x) + c] = v;
            }
    for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
            for (let c = 0; c < 3; c++) {
                let v = 0;
                for (const [k, wt] of ty[y]) v += wt * mid[3 * (k * w + x) + c];
                out[3 * (y * w + x) + c] = v;
            }
    return { w, h, rgb: out };
}

// An image with 8-bit values again (rounded), for the face nets.
export function toBytes(im) {
    return im.rgb instanceof Uint8Array ? im : { w: im.w, h: im.h, rgb: Uint8Array.from(im.rgb, (v) => Math.round(v)) };
}

function luma(im) {
    const y = new Float64Array(im.w * im.h);
    for (let i = 0; i < y.length; i++)
        y[i] = 0.299 * im.rgb[3 * i] + 0.587 * im.rgb[3 * i + 1] + 0.114 * im.rgb[3 * i + 2];
    return y;
}

// Separable Gaussian, kernel cut at 3 sigma and normalised to sum 1, borders
// mirrored without repeating the edge pixel (x = -1 reads x = 1).
function blur(src, w, h, sigma) {
    const r = Math.ceil(3 * sigma), k = [];
    for (let i = -r; i <= r; i++) k.push(Math.exp(-(i * i) / (2 * sigma * sigma)));
    const sum = k.reduce((a, b) => a + b, 0);
    const mirror = (i, n) => (n === 1 ? 0 : i < 0 ? Math.min(-i, n - 1) : i >= n ? Math.max(2 * n - 2 - i, 0) : i);
    const pass = (a, horizontal) => {
        const b = new Float64Array(w * h);
        for (let y = 0; y < h; y++)
            for (let x = 0; x < w; x++) {
                let s = 0;
                for (let i = -r; i <= r; i++)
                    s += k[i + r] * (horizontal ? a[y * w + mirror(x + i, w)] : a[mirror(y + i, h) * w + x]);
                b[y * w + x] = s / sum;
            }
        return b;
    };
    return pass(pass(src, true), false);
}

// Detail energy: the mean square of the difference of Gaussians (sigma 1
// minus sigma 2) of the luma, in 8-bit levels: the band of fine texture
// (pores, wrinkles, hair) that a blurry generator loses first.
export function detailEnergy(im) {
    const y = luma(im);
    const a = blur(y, im.w, im.h, 1), b = blur(y, im.w, im.h, 2);
    let e = 0;
    for (let i = 0; i < y.length; i++) e += (a[i] - b[i]) ** 2;
    return e / y.length;
}

// Checkerboard amplitude of an image (b null), or of the change b - a
// from a to b (same size): over the 2x2 cells [p q; r s] at even (x, y) and
// the three channels, the mean of |p - q - r + s| / 4, the (-1)^(x+y)
// component of the cell, in 8-bit levels.  A +-k pattern added to every
// pixel gives k; a linear ramp gives nothing.  The (-1)^x and (-1)^y
// components are left out because every edge of a face has them.
export function checkerboard(a, b = null) {
    const cw = a.w >> 1, ch = a.h >> 1;
    if (!cw || !ch) return 0;
    let sum = 0;
    for (let j = 0; j < ch; j++)
        for (let i = 0; i < cw; i++)
            for (let c = 0; c < 3; c++) {
                const p = (x, y) => {
                    const k = 3 * ((2 * j + y) * a.w + 2 * i + x) + c;
                    return b ? b.rgb[k] - a.rgb[k] : a.rgb[k];
                };
                sum += Math.abs(p(0, 0) - p(1, 0) - p(0, 1) + p(1, 1)) / 4;
            }
    return sum / (cw * ch * 3);
}
