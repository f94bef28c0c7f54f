/*
 * paste: the generator's change, low-passed, upsampled and feathered into
 * the picture (see paste.h); the whole picture's framing.
 */
#include "paste.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "face.h"
#include "image/photo.h"
#include "image/transform.h"

int paste_lowpass(float *d, int c, int size)
{
    float *row = malloc((size_t)(size + 2) * sizeof *row);
    if (!row)
        return err_set("paste: out of memory");
    for (int k = 0; k < c; k++) {
        float *p = d + (size_t)k * size * size;
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0 filters rows, pass 1 columns: stride s between taps */
            size_t s = pass ? (size_t)size : 1, line = pass ? 1 : (size_t)size;
            for (int j = 0; j < size; j++) {
                float *q = p + j * line;
                for (int i = 0; i < size; i++)
                    row[i + 1] = q[i * s];
                row[0] = row[1], row[size + 1] = row[size];
                for (int i = 0; i < size; i++)
                    q[i * s] = 0.25f * row[i] + 0.5f * row[i + 1] + 0.25f * row[i + 2];
            }
        }
    }
    free(row);
    return 0;
}

static void apply_(const double M[6], double x, double y, double *ox, double *oy)
{
    *ox = M[0] * x + M[1] * y + M[2];
    *oy = M[3] * x + M[4] * y + M[5];
}

static inline double smooth_(double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

/* The feather at model coordinates (continuous, the square is [0, size]^2). */
struct feather {
    enum paste_feather kind;
    int size;
    double ramp[4]; /* PASTE_FRAME: fade lengths left, top, right, bottom, model pixels */
};

static inline float weight_(const struct feather *f, double mx, double my)
{
    double s = f->size;
    if (f->kind == PASTE_FACE) {
        /* a superellipse (|u|^4 + |v|^4 <= 1), 1 inside r < 0.75 */
        double u = 2 * mx / s - 1, v = 2 * my / s - 1;
        double r = sqrt(sqrt(u * u * u * u + v * v * v * v));
        return r >= 1 ? 0 : r <= 0.75 ? 1 : (float)smooth_((1 - r) / 0.25);
    }
    double over[4] = {-mx, -my, mx - s, my - s}, w = 1;
    for (int k = 0; k < 4; k++)
        if (over[k] > 0)
            w *= f->ramp[k] > 0 ? smooth_(1 - over[k] / f->ramp[k]) : 0;
    return (float)w;
}

/* Bilinear sample of the change d at model coordinates, edge-clamped. */
static inline void sample_(const float *d, int size, double x, double y, float out[3])
{
    x -= 0.5, y -= 0.5;
    x = x < 0 ? 0 : x > size - 1 ? size - 1 : x;
    y = y < 0 ? 0 : y > size - 1 ? size - 1 : y;
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < size ? x0 + 1 : x0, y1 = y0 + 1 < size ? y0 + 1 : y0;
    float ax = (float)(x - x0), ay = (float)(y - y0);
    for (int c = 0; c < 3; c++) {
        const float *p = d + (size_t)c * size * size;
        float t = p[y0 * size + x0] + ax * (p[y0 * size + x1] - p[y0 * size + x0]);
        float b = p[y1 * size + x0] + ax * (p[y1 * size + x1] - p[y1 * size + x0]);
        out[c] = t + ay * (b - t);
    }
}

/* d = strength * the change as paste.h says: the generator's change with
 * its uniform blur of the input's detail (above the band split) given
 * back; then [1 2 1]. */
static int change_(float *d, const float *x, const float *y, int size, float strength)
{
    size_t n = (size_t)3 * size * size;
    float *xl = malloc(2 * n * sizeof *xl);
    if (!xl)
        return err_set("paste: out of memory");
    float *dl = xl + n;
    for (size_t i = 0; i < n; i++)
        xl[i] = x[i], dl[i] = y[i] - x[i];
    for (int k = 0; k < PASTE_SPLIT; k++)
        if (paste_lowpass(xl, 3, size) != 0 || paste_lowpass(dl, 3, size) != 0) {
            free(xl);
            return -1;
        }
    /* The generator's blur: the fraction k of the input's detail that the
     * high band of the change takes away everywhere (least squares, in
     * double and in a fixed order, so every thread count agrees).  Only
     * that much is given back: what goes past it in one place (F smoothing
     * wrinkles, G drawing them) is the generator's aim, not its blur. */
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < n; i++) {
        double hi = (double)y[i] - x[i] - dl[i], detail = (double)x[i] - xl[i];
        sxy += hi * detail, sxx += detail * detail;
    }
    float k = sxx > 0 ? (float)(-sxy / sxx) : 0;
    k = k < 0 ? 0 : k > 1 ? 1 : k;
    for (size_t i = 0; i < n; i++)
        d[i] = (y[i] - x[i] + k * (x[i] - xl[i])) * strength;
    free(xl);
    return paste_lowpass(d, 3, size);
}

int paste_change(image *pic, const float *before, const float *after, int size, const double B[6],
                 enum paste_feather kind, float strength)
{
    if (!pic || !pic->px || (pic->c != 3 && pic->c != 4) || size <= 0)
        return err_set("paste: invalid image");
    if (!(strength >= 0 && strength <= PASTE_MAX_STRENGTH))
        return err_set("paste: the strength %g is outside [0, %g]", strength, PASTE_MAX_STRENGTH);
    if (kind == PASTE_FRAME && (B[1] != 0 || B[3] != 0))
        return err_set("paste: a whole picture's frame is not rotated");
    double Bi[6];
    if (face_affine_invert(B, Bi) != 0)
        return -1;
    if (strength == 0)
        return 0;
    struct feather f = {.kind = kind, .size = size};
    /* The region's bound in the picture: the model's square, or for
     * PASTE_FRAME the square and its fade, up to the picture's borders. */
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 4; k++) {
        double x, y;
        apply_(B, (k & 1) * size, (k >> 1) * size, &x, &y);
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
    }
    if (kind == PASTE_FRAME) {
        double ux0, uy0, ux1, uy1, quarter = size / 4.0;
        apply_(Bi, 0, 0, &ux0, &uy0);
        apply_(Bi, pic->w, pic->h, &ux1, &uy1);
        double margin[4] = {-fmin(ux0, ux1), -fmin(uy0, uy1), fmax(ux0, ux1) - size, fmax(uy0, uy1) - size};
        for (int k = 0; k < 4; k++)
            f.ramp[k] = margin[k] <= 0 ? 0 : fmin(margin[k], quarter);
        double sx = fabs(B[0]), sy = fabs(B[4]);
        x0 -= f.ramp[0] * sx, y0 -= f.ramp[1] * sy, x1 += f.ramp[2] * sx, y1 += f.ramp[3] * sy;
    }
    size_t plane = (size_t)size * size;
    float *d = malloc(3 * plane * sizeof *d);
    if (!d)
        return err_set("paste: out of memory");
    if (change_(d, before, after, size, strength) != 0) {
        free(d);
        return -1;
    }
    int X0 = (int)fmax(0, floor(x0)), Y0 = (int)fmax(0, floor(y0));
    int X1 = (int)fmin(pic->w, ceil(x1)), Y1 = (int)fmin(pic->h, ceil(y1));
    /* Model pixels per picture pixel above 1 (a region smaller than the
     * model's input): average n x n sub-samples. */
    double sc = sqrt(fabs(Bi[0] * Bi[4] - Bi[1] * Bi[3]));
    int n = (int)ceil(sc - 1e-6);
    n = n < 1 ? 1 : n > 8 ? 8 : n;
    int C = pic->c;
#pragma omp parallel for schedule(static) if ((long)(Y1 - Y0) * (X1 - X0) > 100000)
    for (int y = Y0; y < Y1; y++) {
        for (int x = X0; x < X1; x++) {
            float acc[3] = {0}, wsum = 0;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < n; i++) {
                    double mx, my;
                    apply_(Bi, x + (i + 0.5) / n, y + (j + 0.5) / n, &mx, &my);
                    float w = weight_(&f, mx, my);
                    if (w <= 0)
                        continue;
                    float v[3];
                    sample_(d, size, mx, my, v);
                    for (int c = 0; c < 3; c++)
                        acc[c] += w * v[c];
                    wsum += w;
                }
            if (wsum <= 0)
                continue;
            uint8_t *p = pic->px + ((size_t)y * pic->w + x) * C;
            for (int c = 0; c < 3; c++) {
                /* [-1, 1] floats are 127.5 per unit of u8 */
                float v = nearbyintf(p[c] + acc[c] / (float)(n * n) * 127.5f);
                p[c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
        }
    }
    free(d);
    return 0;
}

int paste_frame_input(float *x, double B[6], const image *pic, int size, int resize)
{
    if (!pic || !pic->px || (pic->c != 3 && pic->c != 4))
        return err_set("paste: the picture must be RGB or RGBA");
    int s = pic->w < pic->h ? pic->w : pic->h, ox = (pic->w - s) / 2, oy = (pic->h - s) / 2;
    image sq = {0};
    if (image_crop(&sq, pic, ox, oy, s, s) != 0)
        return -1;
    image_drop_alpha(&sq);
    if (transform_eval(&sq, size, resize) != 0) {
        image_free(&sq);
        return -1;
    }
    image_to_chw_f32(x, &sq);
    image_free(&sq);
    if (B) {
        /* the square as an aligned face: FACE_FRAME -> the square */
        double A[6] = {(double)s / FACE_FRAME, 0, ox, 0, (double)s / FACE_FRAME, oy};
        face_model_to(B, A, size, resize);
    }
    return 0;
}

int paste_whole(image *pic, int size, int resize, paste_gen_fn gen, void *ctx, float strength)
{
    size_t nx = (size_t)3 * size * size;
    float *x = malloc(nx * sizeof *x), *y = malloc(nx * sizeof *y);
    double B[6];
    int rc = -1;
    if (!x || !y)
        err_set("paste: out of memory");
    else if (paste_frame_input(x, B, pic, size, resize) == 0 && gen(ctx, x, y, size) == 0)
        rc = paste_change(pic, x, y, size, B, PASTE_FRAME, strength);
    free(x);
    free(y);
    return rc;
}

bool paste_photo_unchanged(const paste_job *j, const photo *p, bool jpeg)
{
    return !j->raw && j->strength == 0 && jpeg == p->jpeg;
}

int paste_photo_apply(const paste_job *j, photo *p)
{
    if (!j->raw)
        return paste_whole(&p->im, j->size, j->resize, j->gen, j->ctx, j->strength);
    size_t nx = (size_t)3 * j->size * j->size;
    float *x = malloc(2 * nx * sizeof *x);
    image r = {0};
    int rc = -1;
    if (!x)
        err_set("paste: out of memory");
    else if (paste_frame_input(x, NULL, &p->im, j->size, j->resize) == 0 &&
             j->gen(j->ctx, x, x + nx, j->size) == 0 &&
             image_from_chw_f32(&r, x + nx, 3, j->size, j->size) == 0)
        rc = 0;
    free(x);
    if (rc == 0) {
        image_free(&p->im);
        p->im = r;
        p->grey = false; /* the generator's output is in colour */
    }
    return rc;
}

int paste_photo(const paste_job *j, const uint8_t *bytes, size_t n, int fmt, uint8_t **out, size_t *len)
{
    photo p;
    if (photo_decode(&p, bytes, n, j->max_pixels) != 0)
        return -1;
    bool jpeg = photo_out_jpeg(fmt, p.jpeg);
    int rc = -1;
    if (paste_photo_unchanged(j, &p, jpeg)) {
        /* exactly the input: no re-encoding either */
        if ((*out = malloc(n ? n : 1))) {
            memcpy(*out, bytes, n);
            *len = n;
            rc = 0;
        } else {
            err_set("paste: out of memory");
        }
    } else if (paste_photo_apply(j, &p) == 0) {
        rc = photo_encode(&p, jpeg, out, len);
    }
    photo_free(&p);
    return rc;
}
