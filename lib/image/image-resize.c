/*
 * image-resize: image_resize and image_resize_short of image.h, PIL's
 * ImagingResample for 8-bit images (Resample.c): a coefficient table per
 * axis (triangle filter, support widened by the scale factor when
 * downscaling, normalised to sum 1, then converted to 22-bit fixed point), a
 * horizontal pass over only the rows the vertical pass will read, then a
 * vertical pass, each with an AVX-512 version chosen at run time that gives
 * the same bytes.  The rest of the geometry is image-ops.c.
 */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "image-ops-impl.h"

#include <immintrin.h>

#define PRECISION_BITS (32 - 8 - 2) /* PIL Resample.c: 22 */

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
int img_avx512bw(void)
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
    if (c == 3 && img_avx512bw() && resample_h3_avx512_(dst, dw, src, sw, y0, rows, ksize, bounds, kk))
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
    const size_t done = img_avx512bw() ? resample_v_avx512_(dst, dh, src, n, ksize, bounds, kk) : 0;
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
    if (img_check_in(in, "resize"))
        return -1;
    if (w <= 0 || h <= 0 || (long)w * h > IMAGE_MAX_PIXELS)
        return err_set("resize: bad target size %dx%d", w, h);
    int need_h = w != in->w, need_v = h != in->h;
    if (!need_h && !need_v)
        return img_copy(out, in);

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
    if (!acc || img_alloc(out, sw, h, in->c)) {
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
    if (img_check_in(in, "resize_short"))
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
