/*
 * test_face: the plain-C half of lib/face/face.c and lib/image/photo.c, no dlib
 * needed: the similarity fit recovers known transforms, the warp is exact
 * where it should be, the paste changes nothing where the generator did not
 * or the mask is 0, the model framing matches transform_eval, the template
 * is a face, EXIF orientation parsing and the eight orientations, the
 * photo pixel limit, and bad input.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/err.h"
#include "face/face.h"
#include "image/image.h"
#include "image/photo.h"
#include "base/rng.h"
#include "image/transform.h"

static void apply(const double M[6], double x, double y, double *ox, double *oy)
{
    *ox = M[0] * x + M[1] * y + M[2];
    *oy = M[3] * x + M[4] * y + M[5];
}

static int test_similarity_recovers(void)
{
    rng g;
    rng_seed(&g, 3);
    for (int t = 0; t < 50; t++) {
        double s = 0.3 + 3 * rng_uniform_f32(&g, 0, 1), a = rng_uniform_f32(&g, -3.1f, 3.1f);
        double M[6] = {s * cos(a), -s * sin(a), rng_uniform_f32(&g, -500, 500),
                       s * sin(a), s * cos(a),  rng_uniform_f32(&g, -500, 500)};
        float dst[5][2];
        for (int i = 0; i < 5; i++) {
            double x, y;
            apply(M, face_template[i][0], face_template[i][1], &x, &y);
            dst[i][0] = (float)x, dst[i][1] = (float)y;
        }
        double R[6];
        EXPECT(face_similarity(face_template, (const float(*)[2])dst, 5, R) == 0, "%s", err_msg());
        for (int k = 0; k < 6; k++)
            EXPECT(fabs(R[k] - M[k]) < 1e-3 * (k % 3 == 2 ? 100 : 1), "M[%d] %g, want %g", k, R[k], M[k]);
        double Ri[6], x, y, u, v;
        EXPECT(face_affine_invert(R, Ri) == 0, "invert");
        apply(R, 37, 91, &x, &y);
        apply(Ri, x, y, &u, &v);
        EXPECT(fabs(u - 37) < 1e-6 && fabs(v - 91) < 1e-6, "inverse gives %g %g", u, v);
    }
    float same[5][2] = {{1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
    double R[6];
    EXPECT(face_similarity((const float(*)[2])same, (const float(*)[2])same, 5, R) != 0,
           "degenerate accepted");
    return 0;
}

/* The template is a face: eyes level and apart, the nose below them, the
 * mouth below the nose, everything inside the frame and centred. */
static int test_template(void)
{
    const float(*t)[2] = face_template;
    EXPECT(fabsf(t[0][1] - t[1][1]) < 3, "eyes not level");
    EXPECT(t[1][0] - t[0][0] > 50 && t[1][0] - t[0][0] < 110, "eye distance %g", t[1][0] - t[0][0]);
    EXPECT(t[2][1] > t[0][1] + 20 && t[3][1] > t[2][1] + 15 && t[4][1] > t[2][1] + 15, "vertical order");
    EXPECT(fabsf((t[0][0] + t[1][0]) / 2 - FACE_FRAME / 2) < 10, "not centred");
    for (int i = 0; i < 5; i++)
        EXPECT(t[i][0] > 0 && t[i][0] < FACE_FRAME && t[i][1] > 0 && t[i][1] < FACE_FRAME, "point %d outside",
               i);
    return 0;
}

static image pattern(int w, int h, int c, uint32_t seed)
{
    image im = {.w = w, .h = h, .c = c, .px = malloc((size_t)w * h * c)};
    rng g;
    rng_seed(&g, seed);
    for (size_t i = 0; i < (size_t)w * h * c; i++)
        im.px[i] = (uint8_t)rng_below(&g, 256);
    return im;
}

static int test_warp(void)
{
    image in = pattern(37, 23, 3, 1), out = {0};
    /* identity and integer shifts are exact copies */
    double I[6] = {1, 0, 0, 0, 1, 0}, S[6] = {1, 0, 5, 0, 1, 3};
    EXPECT(face_warp(&out, &in, I, 37, 23) == 0, "%s", err_msg());
    EXPECT(memcmp(out.px, in.px, (size_t)37 * 23 * 3) == 0, "identity warp changed pixels");
    image_free(&out);
    EXPECT(face_warp(&out, &in, S, 10, 10) == 0, "%s", err_msg());
    for (int y = 0; y < 10; y++)
        EXPECT(memcmp(out.px + (size_t)y * 30, in.px + ((size_t)(y + 3) * 37 + 5) * 3, 30) == 0,
               "shift row %d", y);
    image_free(&out);
    /* a 90 degree turn about the centre of a square image is exact */
    image sq = pattern(16, 16, 1, 2);
    double Rt[6] = {0, 1, 0, -1, 0, 16}; /* out (x, y) <- in (y, 16 - x) */
    EXPECT(face_warp(&out, &sq, Rt, 16, 16) == 0, "%s", err_msg());
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            EXPECT(out.px[y * 16 + x] == sq.px[(15 - x) * 16 + y], "turn at %d,%d", x, y);
    image_free(&out);
    /* borders are reflected: one pixel left of the image is column 0 */
    double L[6] = {1, 0, -1, 0, 1, 0};
    EXPECT(face_warp(&out, &in, L, 2, 1) == 0, "%s", err_msg());
    EXPECT(memcmp(out.px, in.px, 3) == 0 && memcmp(out.px + 3, in.px, 3) == 0, "reflection");
    image_free(&out);
    /* shrinking averages: a 4x box of a flat image stays flat, of a
     * checkerboard gives its mean */
    image cb = {.w = 64, .h = 64, .c = 1, .px = malloc(64 * 64)};
    for (int i = 0; i < 64 * 64; i++)
        cb.px[i] = ((i % 64) + (i / 64)) % 2 ? 200 : 0;
    double D[6] = {4, 0, 0, 0, 4, 0};
    EXPECT(face_warp(&out, &cb, D, 16, 16) == 0, "%s", err_msg());
    for (int i = 0; i < 256; i++)
        EXPECT(abs(out.px[i] - 100) <= 1, "box mean %d", out.px[i]);
    image_free(&out);
    double bad[6] = {1e12, 0, 0, 0, 1, 0};
    EXPECT(face_warp(&out, &in, bad, 4, 4) != 0, "a wild transform accepted");
    image_free(&cb);
    image_free(&sq);
    image_free(&in);
    return 0;
}

/* face_model_to against transform_eval: the model pixel centres map to the
 * frame points that transform_eval samples (checked on a linear ramp). */
static int test_model_framing(void)
{
    image ramp = {.w = FACE_FRAME, .h = FACE_FRAME, .c = 3, .px = malloc(FACE_FRAME * FACE_FRAME * 3)};
    for (int y = 0; y < FACE_FRAME; y++)
        for (int x = 0; x < FACE_FRAME; x++) {
            uint8_t *p = ramp.px + ((size_t)y * FACE_FRAME + x) * 3;
            p[0] = (uint8_t)(x + 20), p[1] = (uint8_t)(y + 20), p[2] = 0;
        }
    int sizes[3] = {128, 256, 64};
    for (int k = 0; k < 3; k++) {
        int size = sizes[k];
        image m = {.w = ramp.w, .h = ramp.h, .c = 3, .px = malloc((size_t)FACE_FRAME * FACE_FRAME * 3)};
        memcpy(m.px, ramp.px, (size_t)FACE_FRAME * FACE_FRAME * 3);
        EXPECT(transform_eval(&m, size, 0) == 0, "%s", err_msg());
        double I[6] = {1, 0, 0, 0, 1, 0}, B[6];
        face_model_to(B, I, size, 0);
        for (int y = 4; y < size - 4; y += 7)
            for (int x = 4; x < size - 4; x += 5) {
                double fx, fy;
                apply(B, x + 0.5, y + 0.5, &fx, &fy);
                const uint8_t *p = m.px + ((size_t)y * size + x) * 3;
                EXPECT(fabs(p[0] - (fx - 0.5 + 20)) <= 1 && fabs(p[1] - (fy - 0.5 + 20)) <= 1,
                       "size %d at %d,%d: %d,%d vs %.1f,%.1f", size, x, y, p[0], p[1], fx + 19.5, fy + 19.5);
            }
        image_free(&m);
    }
    image_free(&ramp);
    return 0;
}

static int test_paste(void)
{
    int size = 32;
    image ph = pattern(120, 90, 4, 5), orig = pattern(120, 90, 4, 5);
    float *x = malloc(sizeof(float) * 3 * size * size), *y = malloc(sizeof(float) * 3 * size * size);
    for (int i = 0; i < 3 * size * size; i++)
        x[i] = y[i] = (float)((i % 17) / 8.0 - 1);
    /* the model square at (40, 20), 2 photo pixels per model pixel, turned */
    double B[6] = {2 * cos(0.3), -2 * sin(0.3), 40, 2 * sin(0.3), 2 * cos(0.3), 20};
    EXPECT(paste_change(&ph, x, y, size, B, PASTE_FACE, 1.0f) == 0, "%s", err_msg());
    EXPECT(memcmp(ph.px, orig.px, (size_t)120 * 90 * 4) == 0,
           "no change from the generator, yet pixels changed");
    /* +0.2 everywhere: inside the mask's core +25.5 (127.5 per unit), outside the square nothing, alpha never
     */
    for (int i = 0; i < 3 * size * size; i++)
        y[i] = x[i] + 0.2f;
    EXPECT(paste_change(&ph, x, y, size, B, PASTE_FACE, 1.0f) == 0, "%s", err_msg());
    double Bi[6];
    face_affine_invert(B, Bi);
    int inside = 0;
    for (int py = 0; py < 90; py++)
        for (int px = 0; px < 120; px++) {
            double mx, my;
            apply(Bi, px + 0.5, py + 0.5, &mx, &my);
            const uint8_t *a = ph.px + ((size_t)py * 120 + px) * 4,
                          *b = orig.px + ((size_t)py * 120 + px) * 4;
            EXPECT(a[3] == b[3], "alpha changed at %d,%d", px, py);
            double u = fabs(2 * mx / size - 1), v = fabs(2 * my / size - 1);
            if (u > 1.02 || v > 1.02)
                EXPECT(memcmp(a, b, 3) == 0, "outside the square changed at %d,%d", px, py);
            if (u < 0.5 && v < 0.5) {
                for (int c = 0; c < 3; c++)
                    EXPECT(fabs(a[c] - fmin(255, b[c] + 25.5)) <= 0.51, "core at %d,%d: %d from %d", px, py,
                           a[c], b[c]);
                inside++;
            }
        }
    EXPECT(inside > 500, "only %d core pixels", inside);
    image grey = pattern(10, 10, 1, 1);
    EXPECT(paste_change(&grey, x, y, size, B, PASTE_FACE, 1.0f) != 0, "a grey photo accepted");
    image_free(&grey);
    free(x), free(y);
    image_free(&ph), image_free(&orig);
    return 0;
}

static void put16(uint8_t *p, unsigned v, int be)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8), p[be ? 1 : 0] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v, int be)
{
    put16(p + (be ? 0 : 2), v >> 16, be), put16(p + (be ? 2 : 0), v & 0xFFFF, be);
}

/* A JPEG-like buffer: SOI, an APP1 Exif segment with IFD0 holding a Make
 * entry and the orientation (either byte order), then SOF0 with comps
 * components.  b holds at least 128 bytes. */
static size_t fake_jpeg(uint8_t *b, int orientation, int be, int comps)
{
    uint8_t tiff[46] = {0};
    tiff[0] = tiff[1] = be ? 'M' : 'I';
    put16(tiff + 2, 42, be), put32(tiff + 4, 8, be);
    put16(tiff + 8, 2, be);                                                         /* two entries */
    put16(tiff + 10, 0x010F, be), put16(tiff + 12, 2, be), put32(tiff + 14, 4, be); /* Make, ASCII "ABC" */
    memcpy(tiff + 18, "ABC", 4);
    put16(tiff + 22, 0x0112, be), put16(tiff + 24, 3, be), put32(tiff + 26, 1, be);
    put16(tiff + 30, (unsigned)orientation, be); /* then 2 bytes of padding and next-IFD 0 */
    size_t n = 0, len = 2 + 6 + sizeof tiff;
    b[n++] = 0xFF, b[n++] = 0xD8;
    b[n++] = 0xFF, b[n++] = 0xE1, b[n++] = (uint8_t)(len >> 8), b[n++] = (uint8_t)len;
    memcpy(b + n, "Exif\0\0", 6), n += 6;
    memcpy(b + n, tiff, sizeof tiff), n += sizeof tiff;
    const uint8_t sof[] = {0xFF, 0xC0, 0, 11, 8, 0, 10, 0, 10, (uint8_t)comps, 1, 0x11, 0};
    memcpy(b + n, sof, sizeof sof), n += sizeof sof;
    return n;
}

static int test_exif(void)
{
    uint8_t b[256];
    for (int o = 1; o <= 8; o++)
        for (int be = 0; be < 2; be++) {
            size_t n = fake_jpeg(b, o, be, 3);
            EXPECT(photo_exif_orientation(b, n) == o, "orientation %d (big-endian %d): got %d", o, be,
                   photo_exif_orientation(b, n));
            /* cut anywhere: never read past the end, 1 or the tag */
            for (size_t k = 0; k < n; k++) {
                int got = photo_exif_orientation(b, k);
                EXPECT(got == 1 || got == o, "cut at %zu: %d", k, got);
            }
        }
    size_t n = fake_jpeg(b, 9, 0, 3);
    EXPECT(photo_exif_orientation(b, n) == 1, "an invalid orientation is ignored");
    uint8_t png[8] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
    EXPECT(photo_exif_orientation(png, 8) == 1, "PNG");
    return 0;
}

/* Each orientation's transform, applied to what a camera would store for
 * it, gives back the upright picture. */
static int test_orient(void)
{
    image up = pattern(5, 3, 3, 9);
    for (int o = 1; o <= 8; o++) {
        /* stored = the inverse of o applied to up, built pixel by pixel from
         * the EXIF definitions: row 0 / column 0 of the stored image is ... */
        int sw = o >= 5 ? 3 : 5, sh = o >= 5 ? 5 : 3;
        image st = {.w = sw, .h = sh, .c = 3, .px = malloc(45)};
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++) {
                int sx, sy; /* where upright (x, y) is stored */
                switch (o) {
                case 2: sx = 4 - x, sy = y; break;
                case 3: sx = 4 - x, sy = 2 - y; break;
                case 4: sx = x, sy = 2 - y; break;
                case 5: sx = y, sy = x; break;
                case 6: sx = y, sy = 4 - x; break; /* stored turned 90 degrees anticlockwise */
                case 7: sx = 2 - y, sy = 4 - x; break;
                case 8: sx = 2 - y, sy = x; break; /* stored turned clockwise */
                default: sx = x, sy = y;
                }
                memcpy(st.px + ((size_t)sy * sw + sx) * 3, up.px + ((size_t)y * 5 + x) * 3, 3);
            }
        image back = {0};
        EXPECT(photo_orient(&back, &st, o) == 0, "%s", err_msg());
        EXPECT(back.w == 5 && back.h == 3 && memcmp(back.px, up.px, 45) == 0, "orientation %d", o);
        image_free(&back);
        image_free(&st);
    }
    image_free(&up);
    return 0;
}

static int test_photo_limits(void)
{
    image im = pattern(40, 30, 3, 4);
    uint8_t *png;
    size_t n;
    EXPECT(image_encode_png(&im, &png, &n) == 0, "%s", err_msg());
    photo p;
    EXPECT(photo_decode(&p, png, n, 40 * 30 - 1) != 0, "over the pixel limit accepted");
    EXPECT(strstr(err_msg(), "over the limit"), "message: %s", err_msg());
    EXPECT(photo_decode(&p, png, n, 40 * 30) == 0, "%s", err_msg());
    EXPECT(p.im.c == 3 && !p.grey && !p.jpeg && p.orientation == 1, "photo fields");
    EXPECT(memcmp(p.im.px, im.px, (size_t)40 * 30 * 3) == 0, "pixels");
    photo_free(&p);
    EXPECT(photo_decode(&p, png, n / 2, 1L << 30) != 0, "a cut PNG accepted");
    photo_free(&p);
    free(png);
    image_free(&im);
    return 0;
}

CHECK_MAIN(T(test_similarity_recovers), T(test_template), T(test_warp), T(test_model_framing), T(test_paste),
           T(test_exif), T(test_orient), T(test_photo_limits))
