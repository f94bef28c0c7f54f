/*
 * image-ops: geometry and tensor conversion for image.h, written to give
 * the same bytes as PIL 9.4 (what torchvision 0.14 calls on PIL images).
 * Resizing (PIL's ImagingResample) is image-resize.c.
 *
 * image_rotate is PIL's Image.rotate + ImagingTransformAffine
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
#include "image-ops-impl.h"

#include <immintrin.h>

int img_alloc(image *out, int w, int h, int c)
{
    out->w = w;
    out->h = h;
    out->c = c;
    out->px = malloc((size_t)w * h * c);
    if (!out->px)
        return err_set("image: out of memory for %dx%dx%d", w, h, c);
    return 0;
}

int img_check_in(const image *in, const char *op)
{
    if (!in || !in->px || in->w <= 0 || in->h <= 0 || in->c < 1 || in->c > 4)
        return err_set("%s: invalid input image", op);
    return 0;
}

int img_copy(image *out, const image *in)
{
    if (img_alloc(out, in->w, in->h, in->c))
        return -1;
    memcpy(out->px, in->px, (size_t)in->w * in->h * in->c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Crops and flips */

int image_crop(image *out, const image *in, int x, int y, int w, int h)
{
    out->px = NULL;
    if (img_check_in(in, "crop"))
        return -1;
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || x > in->w - w || y > in->h - h)
        return err_set("crop: region %dx%d+%d+%d not inside %dx%d image", w, h, x, y, in->w, in->h);
    if (img_alloc(out, w, h, in->c))
        return -1;
    for (int r = 0; r < h; r++)
        memcpy(out->px + (size_t)r * w * in->c, in->px + ((size_t)(y + r) * in->w + x) * in->c,
               (size_t)w * in->c);
    return 0;
}

int image_center_crop(image *out, const image *in, int w, int h)
{
    out->px = NULL;
    if (img_check_in(in, "center_crop"))
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
    if (img_check_in(in, "hflip") || img_alloc(out, in->w, in->h, in->c))
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
    if (img_check_in(in, "rotate"))
        return -1;
    if (!isfinite(degrees))
        return err_set("rotate: angle is not finite");
    const int w = in->w, h = in->h, c = in->c;
    double angle = rotate_angle_(degrees);
    /* PIL's fast paths (no centre/translate given). */
    if (angle == 0)
        return img_copy(out, in);
    if (angle == 180 || ((angle == 90 || angle == 270) && w == h)) {
        if (img_alloc(out, w, h, c))
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
    if (img_alloc(out, w, h, c))
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
    if (img_check_in(in, "rotate"))
        return -1;
    if (!isfinite(degrees))
        return err_set("rotate: angle is not finite");
    const int w = in->w, h = in->h;
    double angle = rotate_angle_(degrees);
    double a[6];
    rotate_matrix_(a, w, h, angle);
    int special = angle == 0 || angle == 180 || ((angle == 90 || angle == 270) && w == h);
    if (in->c == 3 && !special && img_avx512bw() && !(a[1] == 0 && a[3] == 0) && check_fixed_(a, 0, 0) &&
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
    if (img_alloc(out, w, h, c))
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
