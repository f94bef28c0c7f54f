/*
 * image-ops: geometry and tensor conversion for image.h, written to give
 * the same bytes as PIL 9.4 (what torchvision 0.14 calls on PIL images).
 *
 * image_resize is PIL's ImagingResample for 8-bit images: a coefficient
 * table per axis (triangle filter, support widened by the scale factor when
 * downscaling, normalised to sum 1, then converted to 22-bit fixed point),
 * a horizontal pass over only the rows the vertical pass will read, then a
 * vertical pass.  image_rotate is PIL's Image.rotate + ImagingTransformAffine
 * with NEAREST: the inverse matrix rounded to 15 decimals as Python's round()
 * does, then 16.16 fixed-point stepping (or PIL's float paths where PIL
 * takes them).  Comments name the PIL function each piece mirrors.
 */
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#include <immintrin.h>

#define PRECISION_BITS (32 - 8 - 2) /* PIL Resample.c: 22 */

static int alloc_(image *out, int w, int h, int c)
{
    out->w = w;
    out->h = h;
    out->c = c;
    out->px = malloc((size_t)w * h * c);
    if (!out->px)
        return err_set("image: out of memory for %dx%dx%d", w, h, c);
    return 0;
}

static int check_in_(const image *in, const char *op)
{
    if (!in || !in->px || in->w <= 0 || in->h <= 0 || in->c < 1 || in->c > 4)
        return err_set("%s: invalid input image", op);
    return 0;
}

static int copy_(image *out, const image *in)
{
    if (alloc_(out, in->w, in->h, in->c))
        return -1;
    memcpy(out->px, in->px, (size_t)in->w * in->h * in->c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Resize (PIL Resample.c) */

static double bilinear_filter_(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* precompute_coeffs + normalize_coeffs_8bpc: for each output position the
 * first input index (bounds[2i]), the tap count (bounds[2i+1]) and ksize
 * fixed-point weights.  Returns ksize, or -1 on allocation failure. */
static int resize_coeffs_(int in_size, int out_size, int **boundsp, int32_t **kkp)
{
    double scale = (double)in_size / out_size, filterscale = scale;
    if (filterscale < 1.0)
        filterscale = 1.0;
    double support = 1.0 * filterscale; /* BILINEAR support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc(sizeof(double) * ksize);
    int32_t *kk = malloc(sizeof(int32_t) * (size_t)out_size * ksize);
    int *bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    if (!k || !kk || !bounds) {
        free(k);
        free(kk);
        free(bounds);
        return err_set("resize: out of memory");
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* truncation, as PIL */
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        int x = 0;
        for (; x < xmax; x++) {
            double w = bilinear_filter_((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0;
        int32_t *kx = kk + (size_t)xx * ksize;
        for (x = 0; x < ksize; x++)
            kx[x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PRECISION_BITS))
                             : (int32_t)(0.5 + k[x] * (1 << PRECISION_BITS));
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(k);
    *boundsp = bounds;
    *kkp = kk;
    return ksize;
}

/* PIL's clip8: value >> 22 clamped to 0..255. */
static inline uint8_t clip8_(int32_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* AVX-512 (F+BW+VL) versions of the two passes, chosen at run time; the
 * same integer sums, the same clip8 (>> 22, then max 0 and an unsigned
 * saturating narrow to 8 bits). */
static int avx512bw_(void)
{
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl");
    }
    return v;
}

/* Horizontal pass, 3 channels, in chunks of up to 5 output pixels whose
 * taps all lie in one 16-byte window of the source row: per tap a pshufb
 * picks each output byte's source byte (0x80 = no tap, weight 0), and 16
 * int32 lanes accumulate.  Chunks whose window would run past the row end
 * are done by the scalar code.  Returns 0 (nothing done) when the filter
 * is too wide for this. */
struct hchunk_ {
    int xx0, npix, base, vec;
};

#define HTAPS_ 4

__attribute__((target("avx512f,avx512bw,avx512vl"))) static int
resample_h3_avx512_(uint8_t *dst, int dw, const uint8_t *src, int sw, int y0, int rows, int ksize,
                    const int *bounds, const int32_t *kk)
{
    int taps = 0;
    for (int xx = 0; xx < dw; xx++)
        if (bounds[2 * xx + 1] > taps)
            taps = bounds[2 * xx + 1];
    if (taps > HTAPS_ || taps < 1)
        return 0;
    struct hchunk_ *ch = malloc(sizeof *ch * (size_t)dw);
    uint8_t *shuf = malloc((size_t)dw * HTAPS_ * 16);
    int32_t *wt = aligned_alloc(64, (size_t)dw * HTAPS_ * 16 * sizeof(int32_t));
    if (!ch || !shuf || !wt) {
        free(ch);
        free(shuf);
        free(wt);
        return 0;
    }
    int nch = 0;
    for (int xx = 0; xx < dw;) {
        int base = bounds[2 * xx] * 3, np = 0;
        while (np < 5 && xx + np < dw) {
            int last = (bounds[2 * (xx + np)] + bounds[2 * (xx + np) + 1] - 1) * 3 + 2;
            if (last - base >= 16 || bounds[2 * (xx + np)] * 3 < base)
                break;
            np++;
        }
        if (np == 0)
            np = 1; /* cannot happen with taps <= 4; keeps the loop finite */
        struct hchunk_ *c = &ch[nch];
        c->xx0 = xx, c->npix = np, c->base = base;
        c->vec = base + 16 <= sw * 3;
        uint8_t *sh = shuf + (size_t)nch * HTAPS_ * 16;
        int32_t *w = wt + (size_t)nch * HTAPS_ * 16;
        for (int t = 0; t < HTAPS_; t++)
            for (int lane = 0; lane < 16; lane++) {
                int j = lane / 3, chn = lane % 3;
                int ok = lane < 3 * np && t < bounds[2 * (xx + j) + 1];
                sh[t * 16 + lane] = ok ? (uint8_t)((bounds[2 * (xx + j)] + t) * 3 + chn - base) : 0x80;
                w[t * 16 + lane] = ok ? kk[(size_t)(xx + j) * ksize + t] : 0;
            }
        nch++;
        xx += np;
    }
    const int32_t half = 1 << (PRECISION_BITS - 1);
    const __m512i vhalf = _mm512_set1_epi32(half), zero = _mm512_setzero_si512();
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)(y + y0) * sw * 3;
        uint8_t *d = dst + (size_t)y * dw * 3;
        for (int q = 0; q < nch; q++) {
            const struct hchunk_ *c = &ch[q];
            if (c->vec) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(s + c->base));
                const uint8_t *sh = shuf + (size_t)q * HTAPS_ * 16;
                const int32_t *w = wt + (size_t)q * HTAPS_ * 16;
                __m512i acc = vhalf;
                for (int t = 0; t < taps; t++) {
                    __m128i b = _mm_shuffle_epi8(v, _mm_loadu_si128((const __m128i *)(sh + 16 * t)));
                    acc = _mm512_add_epi32(
                        acc, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(b), _mm512_load_si512(w + 16 * t)));
                }
                acc = _mm512_max_epi32(_mm512_srai_epi32(acc, PRECISION_BITS), zero);
                _mm_mask_storeu_epi8(d + c->xx0 * 3, (__mmask16)((1u << (3 * c->npix)) - 1),
                                     _mm512_cvtusepi32_epi8(acc));
                continue;
            }
            for (int xx = c->xx0; xx < c->xx0 + c->npix; xx++) {
                const int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
                const int32_t *k = kk + (size_t)xx * ksize;
                const uint8_t *p = s + (size_t)xmin * 3;
                int32_t s0 = half, s1 = half, s2 = half;
                for (int x = 0; x < xmax; x++, p += 3) {
                    s0 += p[0] * k[x];
                    s1 += p[1] * k[x];
                    s2 += p[2] * k[x];
                }
                d[3 * xx] = clip8_(s0);
                d[3 * xx + 1] = clip8_(s1);
                d[3 * xx + 2] = clip8_(s2);
            }
        }
    }
    free(ch);
    free(shuf);
    free(wt);
    return 1;
}

/* Vertical pass over bytes [0, n) of each row, 64 at a time; returns how
 * many bytes per row it did (a multiple of 64). */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static size_t
resample_v_avx512_(uint8_t *dst, int dh, const uint8_t *src, size_t n, int ksize, const int *bounds,
                   const int32_t *kk)
{
    const size_t n64 = n / 64 * 64;
    const __m512i vhalf = _mm512_set1_epi32(1 << (PRECISION_BITS - 1)), zero = _mm512_setzero_si512();
    for (int yy = 0; yy < dh; yy++) {
        const int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
        const int32_t *k = kk + (size_t)yy * ksize;
        uint8_t *d = dst + (size_t)yy * n;
        for (size_t i0 = 0; i0 < n64; i0 += 64) {
            __m512i a0 = vhalf, a1 = vhalf, a2 = vhalf, a3 = vhalf;
            for (int y = 0; y < ymax; y++) {
                const uint8_t *sp = src + (size_t)(y + ymin) * n + i0;
                const __m512i ky = _mm512_set1_epi32(k[y]);
                a0 = _mm512_add_epi32(
                    a0, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)sp)), ky));
                a1 = _mm512_add_epi32(
                    a1, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sp + 16))),
                                           ky));
                a2 = _mm512_add_epi32(
                    a2, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sp + 32))),
                                           ky));
                a3 = _mm512_add_epi32(
                    a3, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sp + 48))),
                                           ky));
            }
            a0 = _mm512_max_epi32(_mm512_srai_epi32(a0, PRECISION_BITS), zero);
            a1 = _mm512_max_epi32(_mm512_srai_epi32(a1, PRECISION_BITS), zero);
            a2 = _mm512_max_epi32(_mm512_srai_epi32(a2, PRECISION_BITS), zero);
            a3 = _mm512_max_epi32(_mm512_srai_epi32(a3, PRECISION_BITS), zero);
            _mm_storeu_si128((__m128i *)(d + i0), _mm512_cvtusepi32_epi8(a0));
            _mm_storeu_si128((__m128i *)(d + i0 + 16), _mm512_cvtusepi32_epi8(a1));
            _mm_storeu_si128((__m128i *)(d + i0 + 32), _mm512_cvtusepi32_epi8(a2));
            _mm_storeu_si128((__m128i *)(d + i0 + 48), _mm512_cvtusepi32_epi8(a3));
        }
    }
    return n64;
}

/* ImagingResampleHorizontal_8bpc over input rows [y0, y0 + rows). */
static void resample_h_(uint8_t *dst, int dw, const uint8_t *src, int sw, int c, int y0, int rows, int ksize,
                        const int *bounds, const int32_t *kk)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    if (c == 3 && avx512bw_() && resample_h3_avx512_(dst, dw, src, sw, y0, rows, ksize, bounds, kk))
        return;
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)(y + y0) * sw * c;
        uint8_t *d = dst + (size_t)y * dw * c;
        for (int xx = 0; xx < dw; xx++) {
            const int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
            const int32_t *k = kk + (size_t)xx * ksize;
            const uint8_t *p = s + (size_t)xmin * c;
#if defined(__SSE4_1__)
            if (c == 3) {
                /* One pixel as 4 int32 lanes (R, G, B, unused): same integer
                 * sums as the scalar code, four channels per instruction. */
                __m128i acc = _mm_set1_epi32(half);
                for (int x = 0; x < xmax; x++, p += 3) {
                    /* Assembled in a register: 3 bytes so the last pixel
                     * never reads past the buffer, and no store-forwarding
                     * stall as a memcpy into an int would cause. */
                    int v = p[0] | p[1] << 8 | p[2] << 16;
                    __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(v));
                    acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[x])));
                }
                acc = _mm_srai_epi32(acc, PRECISION_BITS);
                acc = _mm_packus_epi16(_mm_packs_epi32(acc, acc), acc);
                uint32_t r = (uint32_t)_mm_cvtsi128_si32(acc);
                d[3 * xx] = (uint8_t)r;
                d[3 * xx + 1] = (uint8_t)(r >> 8);
                d[3 * xx + 2] = (uint8_t)(r >> 16);
                continue;
            }
#endif
            if (c == 3) {
                int32_t s0 = half, s1 = half, s2 = half;
                for (int x = 0; x < xmax; x++, p += 3) {
                    s0 += p[0] * k[x];
                    s1 += p[1] * k[x];
                    s2 += p[2] * k[x];
                }
                d[3 * xx] = clip8_(s0);
                d[3 * xx + 1] = clip8_(s1);
                d[3 * xx + 2] = clip8_(s2);
            } else {
                for (int ch = 0; ch < c; ch++) {
                    int32_t acc = half;
                    for (int x = 0; x < xmax; x++)
                        acc += p[x * c + ch] * k[x];
                    d[xx * c + ch] = clip8_(acc);
                }
            }
        }
    }
}

/* ImagingResampleVertical_8bpc: row-wise so the inner loop runs along
 * contiguous memory (same sums, same order per pixel as PIL). */
static void resample_v_(uint8_t *dst, int dh, const uint8_t *src, int w, int c, int ksize, const int *bounds,
                        const int32_t *kk, int32_t *acc)
{
    const size_t n = (size_t)w * c;
    const size_t done = avx512bw_() ? resample_v_avx512_(dst, dh, src, n, ksize, bounds, kk) : 0;
    for (int yy = 0; yy < dh; yy++) {
        const int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
        const int32_t *k = kk + (size_t)yy * ksize;
        uint8_t *d = dst + (size_t)yy * n;
        size_t i0 = done;
#if defined(__SSE4_1__)
        /* 16 bytes at a time with the sums in registers; the shift and the
         * two saturating packs are exactly clip8 (>> 22, clamp 0..255). */
        for (; i0 + 16 <= n; i0 += 16) {
            __m128i a0 = _mm_set1_epi32(1 << (PRECISION_BITS - 1)), a1 = a0, a2 = a0, a3 = a0;
            for (int y = 0; y < ymax; y++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(src + (size_t)(y + ymin) * n + i0));
                __m128i ky = _mm_set1_epi32(k[y]);
                a0 = _mm_add_epi32(a0, _mm_mullo_epi32(_mm_cvtepu8_epi32(v), ky));
                a1 = _mm_add_epi32(a1, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 4)), ky));
                a2 = _mm_add_epi32(a2, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 8)), ky));
                a3 = _mm_add_epi32(a3, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(v, 12)), ky));
            }
            a0 = _mm_srai_epi32(a0, PRECISION_BITS);
            a1 = _mm_srai_epi32(a1, PRECISION_BITS);
            a2 = _mm_srai_epi32(a2, PRECISION_BITS);
            a3 = _mm_srai_epi32(a3, PRECISION_BITS);
            __m128i r = _mm_packus_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3));
            _mm_storeu_si128((__m128i *)(d + i0), r);
        }
#endif
        for (size_t i = i0; i < n; i++)
            acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) {
            const uint8_t *s = src + (size_t)(y + ymin) * n;
            const int32_t ky = k[y];
            for (size_t i = i0; i < n; i++)
                acc[i] += s[i] * ky;
        }
        for (size_t i = i0; i < n; i++)
            d[i] = clip8_(acc[i]);
    }
}

int image_resize(image *out, const image *in, int w, int h)
{
    out->px = NULL;
    if (check_in_(in, "resize"))
        return -1;
    if (w <= 0 || h <= 0 || (long)w * h > IMAGE_MAX_PIXELS)
        return err_set("resize: bad target size %dx%d", w, h);
    int need_h = w != in->w, need_v = h != in->h;
    if (!need_h && !need_v)
        return copy_(out, in);

    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL, *acc = NULL;
    uint8_t *tmp = NULL;
    int rc = -1;
    int ksh = resize_coeffs_(in->w, w, &bh, &kh);
    int ksv = ksh < 0 ? -1 : resize_coeffs_(in->h, h, &bv, &kv);
    if (ksv < 0)
        goto done;
    const uint8_t *src = in->px;
    int sw = in->w;
    if (need_h) {
        /* Only the rows the vertical pass reads (ImagingResampleInner). */
        int first = bv[0], last = bv[2 * h - 2] + bv[2 * h - 1];
        for (int i = 0; i < h; i++)
            bv[2 * i] -= first;
        int rows = need_v ? last - first : in->h;
        if (!need_v)
            first = 0;
        tmp = malloc((size_t)w * rows * in->c);
        if (!tmp) {
            err_set("resize: out of memory");
            goto done;
        }
        resample_h_(tmp, w, in->px, in->w, in->c, first, rows, ksh, bh, kh);
        src = tmp;
        sw = w;
        if (!need_v) {
            out->w = w;
            out->h = h;
            out->c = in->c;
            out->px = tmp;
            tmp = NULL;
            rc = 0;
            goto done;
        }
    }
    acc = malloc(sizeof(int32_t) * (size_t)sw * in->c);
    if (!acc || alloc_(out, sw, h, in->c)) {
        if (!acc)
            err_set("resize: out of memory");
        goto done;
    }
    resample_v_(out->px, h, src, sw, in->c, ksv, bv, kv, acc);
    rc = 0;
done:
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    free(acc);
    free(tmp);
    return rc;
}

int image_resize_short(image *out, const image *in, int size)
{
    out->px = NULL;
    if (check_in_(in, "resize_short"))
        return -1;
    if (size <= 0)
        return err_set("resize_short: bad size %d", size);
    int w = in->w, h = in->h;
    int sh = w <= h ? w : h, lo = w <= h ? h : w;
    /* torchvision: int(size * long / short); Python's true division is
     * correctly rounded, as is this double division of exact integers. */
    double nl = (double)((long long)size * lo) / sh;
    if (nl > 2147483647.0)
        return err_set("resize_short: result too large");
    int new_long = (int)nl;
    return w <= h ? image_resize(out, in, size, new_long) : image_resize(out, in, new_long, size);
}

/* ------------------------------------------------------------------------ */
/* Crops and flips */

int image_crop(image *out, const image *in, int x, int y, int w, int h)
{
    out->px = NULL;
    if (check_in_(in, "crop"))
        return -1;
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || x > in->w - w || y > in->h - h)
        return err_set("crop: region %dx%d+%d+%d not inside %dx%d image", w, h, x, y, in->w, in->h);
    if (alloc_(out, w, h, in->c))
        return -1;
    for (int r = 0; r < h; r++)
        memcpy(out->px + (size_t)r * w * in->c, in->px + ((size_t)(y + r) * in->w + x) * in->c,
               (size_t)w * in->c);
    return 0;
}

int image_center_crop(image *out, const image *in, int w, int h)
{
    out->px = NULL;
    if (check_in_(in, "center_crop"))
        return -1;
    if (w <= 0 || h <= 0 || w > in->w || h > in->h)
        return err_set("center_crop: %dx%d does not fit in %dx%d", w, h, in->w, in->h);
    /* int(round(d / 2.0)): Python rounds halves to even, as nearbyint does
     * in the default rounding mode. */
    int top = (int)nearbyint((in->h - h) / 2.0);
    int left = (int)nearbyint((in->w - w) / 2.0);
    return image_crop(out, in, left, top, w, h);
}

int image_hflip(image *out, const image *in)
{
    out->px = NULL;
    if (check_in_(in, "hflip") || alloc_(out, in->w, in->h, in->c))
        return -1;
    const int c = in->c, w = in->w;
    for (int y = 0; y < in->h; y++) {
        const uint8_t *s = in->px + (size_t)y * w * c;
        uint8_t *d = out->px + (size_t)y * w * c;
        for (int x = 0; x < w; x++)
            memcpy(d + (size_t)(w - 1 - x) * c, s + (size_t)x * c, c);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Rotate (PIL Image.rotate -> Geometry.c) */

#define COORD_(v) ((v) < 0.0 ? -1 : (int)(v))
#define FLOOR_(v) ((v) < 0.0 ? (int)floor(v) : (int)(v))

/* Python's round(x, 15): correctly rounded to 15 decimals and back, which
 * is what glibc's printf/strtod pair computes. */
static double round15_(double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.15f", x);
    return strtod(buf, NULL);
}

static int check_fixed_(const double *a, int x, int y)
{
    return fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

static inline void put_(uint8_t *d, const image *in, int xin, int yin)
{
    const uint8_t *s = in->px + ((size_t)yin * in->w + xin) * in->c;
    if (in->c == 3) { /* the common case, without a memcpy call */
        d[0] = s[0];
        d[1] = s[1];
        d[2] = s[2];
    } else {
        memcpy(d, s, in->c);
    }
}

/* ImagingTransformAffine with NEAREST; out is allocated and zeroed. */
static void affine_nearest_(image *out, const image *in, const double *a)
{
    const int W = out->w, H = out->h, c = in->c, xs = in->w, ys = in->h;
    if (a[1] == 0 && a[3] == 0) {
        /* ImagingScaleAffine */
        double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
        for (int y = 0; y < H; y++) {
            int yi = COORD_(yo);
            if (yi >= 0 && yi < ys) {
                double xx = xo;
                for (int x = 0; x < W; x++) {
                    int xi = COORD_(xx);
                    if (xi >= 0 && xi < xs)
                        put_(out->px + ((size_t)y * W + x) * c, in, xi, yi);
                    xx += a[0];
                }
            }
            yo += a[4];
        }
        return;
    }
    if (check_fixed_(a, 0, 0) && check_fixed_(a, W, H) && check_fixed_(a, 0, H) && check_fixed_(a, W, 0)) {
        /* affine_fixed: 16.16 fixed point */
        int a0 = FLOOR_(a[0] * 65536.0 + 0.5), a1 = FLOOR_(a[1] * 65536.0 + 0.5);
        int a3 = FLOOR_(a[3] * 65536.0 + 0.5), a4 = FLOOR_(a[4] * 65536.0 + 0.5);
        double v2 = a[2] + a[0] * 0.5 + a[1] * 0.5, v5 = a[5] + a[3] * 0.5 + a[4] * 0.5;
        int a2 = FLOOR_(v2 * 65536.0 + 0.5), a5 = FLOOR_(v5 * 65536.0 + 0.5);
        for (int y = 0; y < H; y++) {
            int xx = a2, yy = a5;
            uint8_t *d = out->px + (size_t)y * W * c;
            for (int x = 0; x < W; x++, d += c) {
                int xin = xx >> 16;
                if (xin >= 0 && xin < xs) {
                    int yin = yy >> 16;
                    if (yin >= 0 && yin < ys)
                        put_(d, in, xin, yin);
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
        return;
    }
    /* PIL's float fallback, for coordinates beyond 16.16 range. */
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int y = 0; y < H; y++) {
        double xx = xo, yy = yo;
        uint8_t *d = out->px + (size_t)y * W * c;
        for (int x = 0; x < W; x++, d += c) {
            int xin = COORD_(xx);
            if (xin >= 0 && xin < xs) {
                int yin = COORD_(yy);
                if (yin >= 0 && yin < ys)
                    put_(d, in, xin, yin);
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}

/* The inverse (destination -> source) matrix, as Image.rotate builds it. */
static void rotate_matrix_(double *a, int w, int h, double angle)
{
    double cx = w / 2.0, cy = h / 2.0;
    /* -math.radians(angle); Py_MATH_PI is this same literal */
    double r = -(angle * (3.14159265358979323846 / 180.0));
    a[0] = round15_(cos(r));
    a[1] = round15_(sin(r));
    a[2] = 0.0;
    a[3] = round15_(-sin(r));
    a[4] = round15_(cos(r));
    a[5] = 0.0;
    double m2 = a[0] * -cx + a[1] * -cy + a[2];
    double m5 = a[3] * -cx + a[4] * -cy + a[5];
    a[2] = m2 + cx;
    a[5] = m5 + cy;
}

/* Python's float %: remainder takes the divisor's sign. */
static double rotate_angle_(float degrees)
{
    double angle = fmod((double)degrees, 360.0);
    if (angle != 0 && angle < 0)
        angle += 360.0;
    return angle;
}

int image_rotate(image *out, const image *in, float degrees)
{
    out->px = NULL;
    if (check_in_(in, "rotate"))
        return -1;
    if (!isfinite(degrees))
        return err_set("rotate: angle is not finite");
    const int w = in->w, h = in->h, c = in->c;
    double angle = rotate_angle_(degrees);
    /* PIL's fast paths (no centre/translate given). */
    if (angle == 0)
        return copy_(out, in);
    if (angle == 180 || ((angle == 90 || angle == 270) && w == h)) {
        if (alloc_(out, w, h, c))
            return -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int ox, oy; /* where input (x, y) lands */
                if (angle == 180)
                    ox = w - 1 - x, oy = h - 1 - y;
                else if (angle == 90) /* ImagingRotate90: counter-clockwise */
                    ox = y, oy = w - 1 - x;
                else /* ImagingRotate270 */
                    ox = h - 1 - y, oy = x;
                put_(out->px + ((size_t)oy * w + ox) * c, in, x, y);
            }
        return 0;
    }
    double a[6];
    rotate_matrix_(a, w, h, angle);
    if (alloc_(out, w, h, c))
        return -1;
    memset(out->px, 0, (size_t)w * h * c); /* fill colour 0 */
    affine_nearest_(out, in, a);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tensor conversion */

void image_to_chw_f32(float *out, const image *in)
{
    /* 256-entry table: the same float ops torch does, done once per level. */
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = ((float)i / 255.0f - 0.5f) / 0.5f;
    const size_t plane = (size_t)in->w * in->h;
    const int c = in->c;
    const uint8_t *p = in->px;
    if (c == 3) { /* one pass over the pixels, three output streams */
        float *o0 = out, *o1 = out + plane, *o2 = out + 2 * plane;
        for (size_t i = 0; i < plane; i++, p += 3) {
            o0[i] = lut[p[0]];
            o1[i] = lut[p[1]];
            o2[i] = lut[p[2]];
        }
        return;
    }
    for (int ch = 0; ch < c; ch++) {
        float *o = out + ch * plane;
        for (size_t i = 0; i < plane; i++)
            o[i] = lut[p[i * c + ch]];
    }
}

/* The affine_fixed walk of image_rotate for 3 channels, 16 output pixels
 * at a time: source offsets by 16.16 stepping (x*a0 from the row start is
 * the same integer the scalar += reaches), one masked dword gather of the
 * pixels (fill 0 outside), then the ToTensor+Normalize table by gathers. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void
rotate_chw3_avx512_(float *out, const image *in, const int *fx, const float *lut)
{
    const int W = in->w, H = in->h, xs = in->w, ys = in->h;
    const size_t plane = (size_t)W * H;
    const int total = xs * ys * 3;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vxs = _mm512_set1_epi32(xs), vys = _mm512_set1_epi32(ys);
    const __m512i lim = _mm512_set1_epi32(total - 4), ff = _mm512_set1_epi32(0xff);
    int a2 = fx[2], a5 = fx[5];
    for (int y = 0; y < H; y++, a2 += fx[1], a5 += fx[4]) {
        float *o0 = out + (size_t)y * W, *o1 = o0 + plane, *o2 = o1 + plane;
        for (int x0 = 0; x0 < W; x0 += 16) {
            __mmask16 live = W - x0 >= 16 ? 0xFFFF : (__mmask16)((1u << (W - x0)) - 1);
            __m512i xv = _mm512_add_epi32(lane, _mm512_set1_epi32(x0));
            __m512i xx =
                _mm512_add_epi32(_mm512_set1_epi32(a2), _mm512_mullo_epi32(xv, _mm512_set1_epi32(fx[0])));
            __m512i yy =
                _mm512_add_epi32(_mm512_set1_epi32(a5), _mm512_mullo_epi32(xv, _mm512_set1_epi32(fx[3])));
            __m512i xi = _mm512_srai_epi32(xx, 16), yi = _mm512_srai_epi32(yy, 16);
            __mmask16 ok = live & _mm512_cmplt_epu32_mask(xi, vxs) & _mm512_cmplt_epu32_mask(yi, vys);
            __m512i idx =
                _mm512_mullo_epi32(_mm512_add_epi32(_mm512_mullo_epi32(yi, vxs), xi), _mm512_set1_epi32(3));
            __mmask16 g = ok & _mm512_cmple_epi32_mask(idx, lim);
            __m512i px = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), g, idx, in->px, 1);
            if (ok != g) { /* the image's last pixel: a 4-byte read would overrun */
                uint32_t buf[16];
                int ib[16];
                _mm512_storeu_si512(buf, px);
                _mm512_storeu_si512(ib, idx);
                for (int l = 0; l < 16; l++)
                    if ((ok & ~g) >> l & 1) {
                        const uint8_t *s = in->px + ib[l];
                        buf[l] = s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16;
                    }
                px = _mm512_loadu_si512(buf);
            }
            __m512 f0 = _mm512_i32gather_ps(_mm512_and_si512(px, ff), lut, 4);
            __m512 f1 = _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(px, 8), ff), lut, 4);
            __m512 f2 = _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(px, 16), ff), lut, 4);
            _mm512_mask_storeu_ps(o0 + x0, live, f0);
            _mm512_mask_storeu_ps(o1 + x0, live, f1);
            _mm512_mask_storeu_ps(o2 + x0, live, f2);
        }
    }
}

int image_rotate_chw_f32(float *out, const image *in, float degrees)
{
    if (check_in_(in, "rotate"))
        return -1;
    if (!isfinite(degrees))
        return err_set("rotate: angle is not finite");
    const int w = in->w, h = in->h;
    double angle = rotate_angle_(degrees);
    double a[6];
    rotate_matrix_(a, w, h, angle);
    int special = angle == 0 || angle == 180 || ((angle == 90 || angle == 270) && w == h);
    if (in->c == 3 && !special && avx512bw_() && !(a[1] == 0 && a[3] == 0) && check_fixed_(a, 0, 0) &&
        check_fixed_(a, w, h) && check_fixed_(a, 0, h) && check_fixed_(a, w, 0)) {
        /* the same fixed-point constants as affine_nearest_ */
        int fx[6];
        fx[0] = FLOOR_(a[0] * 65536.0 + 0.5), fx[1] = FLOOR_(a[1] * 65536.0 + 0.5);
        fx[3] = FLOOR_(a[3] * 65536.0 + 0.5), fx[4] = FLOOR_(a[4] * 65536.0 + 0.5);
        double v2 = a[2] + a[0] * 0.5 + a[1] * 0.5, v5 = a[5] + a[3] * 0.5 + a[4] * 0.5;
        fx[2] = FLOOR_(v2 * 65536.0 + 0.5), fx[5] = FLOOR_(v5 * 65536.0 + 0.5);
        float lut[256];
        for (int i = 0; i < 256; i++)
            lut[i] = ((float)i / 255.0f - 0.5f) / 0.5f;
        rotate_chw3_avx512_(out, in, fx, lut);
        return 0;
    }
    image t = {0};
    if (image_rotate(&t, in, degrees))
        return -1;
    image_to_chw_f32(out, &t);
    image_free(&t);
    return 0;
}

int image_from_chw_f32(image *out, const float *in, int c, int h, int w)
{
    out->px = NULL;
    if (c < 1 || c > 4 || h <= 0 || w <= 0 || (long)w * h > IMAGE_MAX_PIXELS)
        return err_set("image_from_chw_f32: bad shape [%d,%d,%d]", c, h, w);
    if (alloc_(out, w, h, c))
        return -1;
    const size_t plane = (size_t)w * h;
    for (int ch = 0; ch < c; ch++) {
        const float *s = in + ch * plane;
        uint8_t *d = out->px + ch;
        for (size_t i = 0; i < plane; i++) {
            float v = s[i];
            v = v > 1.0f ? 1.0f : v;
            v = v >= -1.0f ? v : -1.0f; /* also maps NaN to -1 -> 0 */
            v = (v + 1.0f) / 2.0f;
            v = v * 255.0f + 0.5f;
            v = v > 255.0f ? 255.0f : v < 0.0f ? 0.0f : v;
            d[i * c] = (uint8_t)v;
        }
    }
    return 0;
}

void image_drop_alpha(image *im)
{
    if (im->c != 4)
        return;
    for (size_t i = 0; i < (size_t)im->w * im->h; i++)
        memmove(im->px + 3 * i, im->px + 4 * i, 3);
    im->c = 3;
}

int image_blit(image *dst, const image *src, int x, int y)
{
    if (src->c != dst->c || x < 0 || y < 0 || src->w > dst->w - x || src->h > dst->h - y)
        return err_set("image_blit: a %dx%dx%d image does not fit at (%d, %d) in %dx%dx%d", src->w, src->h,
                       src->c, x, y, dst->w, dst->h, dst->c);
    for (int r = 0; r < src->h; r++)
        memcpy(dst->px + ((size_t)(y + r) * dst->w + x) * dst->c, src->px + (size_t)r * src->w * src->c,
               (size_t)src->w * src->c);
    return 0;
}
