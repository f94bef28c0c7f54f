/*
 * face: the search for faces over rotated and upsampled copies (dlib does
 * the detection and landmarks, loaded at run time), the similarity
 * alignment to the UTKFace template, the warps; the paste is lib/face/paste.c.
 */
#include "face.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fileio.h"
#include "paste.h"
#include "image/transform.h"

/* The UTKFace template, FACE_FRAME pixels (continuous coordinates): the
 * mean landmarks of 400 crops of ../shared/data/utkface/UTKFace (every
 * 24th of its 9720 files in name order; dlib found 397 of them), measured
 * on this build with
 *   build/bench/face_template ../shared/data/utkface/UTKFace 400
 * (bench/face_template.c; standard deviations 2.5 to 7 px).  Order: left
 * eye (as seen), right eye, nose tip, left and right mouth corners. */
const float face_template[5][2] = {
    {59.33f, 60.70f}, {138.13f, 60.60f}, {98.13f, 102.36f}, {63.20f, 138.25f}, {134.94f, 138.14f},
};

/* ------------------------------------------------------------------------ */
/* dlib, loaded at run time (lib/face/face-dlib.cpp) */

#define DEFAULT_MODEL "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"

struct face_finder {
    void *lib, *h;
    void *(*open)(const char *, char *, size_t);
    void (*close)(void *);
    int (*detect)(void *, const uint8_t *, int, int, float *, int);
    int (*landmarks)(void *, const uint8_t *, int, int, const float *, float *);
    const char *(*error)(void);
};

static int load_(face_finder *ff, const char *path, char *why, size_t n)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        if (access(path, F_OK) == 0 || !why[0])
            snprintf(why, n, "%s", e ? e : path);
        return -1;
    }
    ff->lib = lib;
    ff->open = (void *(*)(const char *, char *, size_t))(uintptr_t)dlsym(lib, "face_dlib_open");
    ff->close = (void (*)(void *))(uintptr_t)dlsym(lib, "face_dlib_close");
    ff->detect =
        (int (*)(void *, const uint8_t *, int, int, float *, int))(uintptr_t)dlsym(lib, "face_dlib_detect");
    ff->landmarks = (int (*)(void *, const uint8_t *, int, int, const float *, float *))(uintptr_t)dlsym(
        lib, "face_dlib_landmarks");
    ff->error = (const char *(*)(void))(uintptr_t)dlsym(lib, "face_dlib_error");
    if (!ff->open || !ff->close || !ff->detect || !ff->landmarks || !ff->error) {
        snprintf(why, n, "%s: not the aging face library", path);
        dlclose(lib);
        ff->lib = NULL;
        return -1;
    }
    return 0;
}

face_finder *face_finder_open(void)
{
    face_finder *ff = calloc(1, sizeof *ff);
    if (!ff) {
        err_set("out of memory");
        return NULL;
    }
    char why[1024] = "";
    const char *env = getenv("AGING_FACE_LIB");
    int ok = -1;
    if (env && *env) {
        ok = load_(ff, env, why, sizeof why);
    } else {
        char exe[PATH_MAX];
        if (file_exe_dir(exe, sizeof exe) == 0) {
            static const char *const rel[] = {"../build/libaging-face.so", "../libaging-face.so",
                                              "../lib/aging/libaging-face.so"};
            for (size_t i = 0; i < sizeof rel / sizeof *rel && ok != 0; i++) {
                char path[PATH_MAX + 64];
                snprintf(path, sizeof path, "%s/%s", exe, rel[i]);
                ok = load_(ff, path, why, sizeof why);
            }
        }
        if (ok != 0 && !why[0])
            snprintf(why, sizeof why, "no libaging-face.so");
    }
    if (ok != 0) {
        err_set("face detection needs dlib, and this build has none (%s): install libdlib-dev and "
                "libdlib-data (scripts/deps.sh --runtime) and run make again",
                why);
        free(ff);
        return NULL;
    }
    const char *model = getenv("AGING_FACE_MODEL");
    if (!model || !*model)
        model = DEFAULT_MODEL;
    if (access(model, R_OK) != 0) {
        err_set("%s: the landmark model is missing (install libdlib-data, or set AGING_FACE_MODEL)", model);
        face_finder_free(ff);
        return NULL;
    }
    why[0] = 0;
    if (!(ff->h = ff->open(model, why, sizeof why))) {
        err_set("%s", why);
        face_finder_free(ff);
        return NULL;
    }
    return ff;
}

void face_finder_free(face_finder *ff)
{
    if (!ff)
        return;
    if (ff->h)
        ff->close(ff->h);
    /* the library stays loaded: dlib's statics may outlive the handle */
    free(ff);
}

/* ------------------------------------------------------------------------ */
/* Geometry */

void face_points5(const float pts[68][2], float p5[5][2])
{
    for (int e = 0; e < 2; e++) {
        float x = 0, y = 0;
        for (int k = 36 + 6 * e; k < 42 + 6 * e; k++)
            x += pts[k][0], y += pts[k][1];
        p5[e][0] = x / 6, p5[e][1] = y / 6;
    }
    static const int idx[3] = {30, 48, 54};
    for (int i = 0; i < 3; i++)
        p5[2 + i][0] = pts[idx[i]][0], p5[2 + i][1] = pts[idx[i]][1];
}

int face_similarity(const float src[][2], const float dst[][2], int n, double M[6])
{
    double sx = 0, sy = 0, dx = 0, dy = 0;
    for (int i = 0; i < n; i++)
        sx += src[i][0], sy += src[i][1], dx += dst[i][0], dy += dst[i][1];
    sx /= n, sy /= n, dx /= n, dy /= n;
    double ss = 0, a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        double px = src[i][0] - sx, py = src[i][1] - sy, qx = dst[i][0] - dx, qy = dst[i][1] - dy;
        ss += px * px + py * py;
        a += px * qx + py * qy;
        b += px * qy - py * qx;
    }
    if (!(ss > 1e-9)) {
        err_set("face: degenerate landmarks");
        return -1;
    }
    a /= ss, b /= ss;
    /* dst = [a -b; b a] src + t */
    M[0] = a, M[1] = -b, M[2] = dx - (a * sx - b * sy);
    M[3] = b, M[4] = a, M[5] = dy - (b * sx + a * sy);
    return 0;
}

int face_affine_invert(const double M[6], double Mi[6])
{
    double det = M[0] * M[4] - M[1] * M[3];
    if (!(fabs(det) > 1e-12)) {
        err_set("face: singular transform");
        return -1;
    }
    Mi[0] = M[4] / det, Mi[1] = -M[1] / det;
    Mi[3] = -M[3] / det, Mi[4] = M[0] / det;
    Mi[2] = -(Mi[0] * M[2] + Mi[1] * M[5]);
    Mi[5] = -(Mi[3] * M[2] + Mi[4] * M[5]);
    return 0;
}

/* C = A after B: C(p) = A(B(p)). */
static void compose_(double C[6], const double A[6], const double B[6])
{
    double r[6] = {A[0] * B[0] + A[1] * B[3], A[0] * B[1] + A[1] * B[4], A[0] * B[2] + A[1] * B[5] + A[2],
                   A[3] * B[0] + A[4] * B[3], A[3] * B[1] + A[4] * B[4], A[3] * B[2] + A[4] * B[5] + A[5]};
    memcpy(C, r, sizeof r);
}

static void apply_(const double M[6], double x, double y, double *ox, double *oy)
{
    *ox = M[0] * x + M[1] * y + M[2];
    *oy = M[3] * x + M[4] * y + M[5];
}

int face_align(face *f)
{
    float p5[5][2];
    face_points5((const float(*)[2])f->pts, p5);
    if (face_similarity(face_template, (const float(*)[2])p5, 5, f->A) != 0)
        return -1;
    f->scale = sqrt(fabs(f->A[0] * f->A[4] - f->A[1] * f->A[3]));
    double Ai[6], e = 0;
    if (face_affine_invert(f->A, Ai) != 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        double x, y;
        apply_(Ai, p5[i][0], p5[i][1], &x, &y);
        e += (x - face_template[i][0]) * (x - face_template[i][0]) +
             (y - face_template[i][1]) * (y - face_template[i][1]);
    }
    f->rmse = sqrt(e / 5);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Warping */

/* Reflect a pixel index into [0, n) (period 2n: ... 1 0 | 0 1 ... n-1 | n-1 ...). */
static inline int reflect_(int i, int n)
{
    if (i >= 0 && i < n)
        return i;
    int p = 2 * n;
    i %= p;
    if (i < 0)
        i += p;
    return i < n ? i : p - 1 - i;
}

/* Bilinear sample of all channels at continuous (x, y), added to acc. */
static inline void sample_add_(const image *in, double x, double y, float *acc)
{
    x -= 0.5, y -= 0.5;
    double fx = floor(x), fy = floor(y);
    int x0 = (int)fx, y0 = (int)fy;
    float ax = (float)(x - fx), ay = (float)(y - fy);
    int xa = reflect_(x0, in->w), xb = reflect_(x0 + 1, in->w);
    int ya = reflect_(y0, in->h), yb = reflect_(y0 + 1, in->h);
    const uint8_t *r0 = in->px + (size_t)ya * in->w * in->c, *r1 = in->px + (size_t)yb * in->w * in->c;
    for (int c = 0; c < in->c; c++) {
        float t = r0[xa * in->c + c] + ax * (r0[xb * in->c + c] - r0[xa * in->c + c]);
        float b = r1[xa * in->c + c] + ax * (r1[xb * in->c + c] - r1[xa * in->c + c]);
        acc[c] += t + ay * (b - t);
    }
}

int face_warp(image *out, const image *in, const double M[6], int w, int h)
{
    if (!in || !in->px || in->w <= 0 || in->h <= 0 || in->c < 1 || in->c > 4 || w <= 0 || h <= 0)
        return err_set("face_warp: invalid image");
    /* Coordinates far outside (a broken transform) would overflow ints. */
    double lim = 4.0 * (in->w + in->h) + 1e6;
    for (int k = 0; k < 4; k++) {
        double x, y;
        apply_(M, (k & 1) * w, (k >> 1) * h, &x, &y);
        if (!(fabs(x) < lim && fabs(y) < lim))
            return err_set("face_warp: the transform leaves the image far behind");
    }
    out->w = w, out->h = h, out->c = in->c;
    if (!(out->px = malloc((size_t)w * h * in->c)))
        return err_set("face_warp: out of memory");
    double sc = sqrt(fabs(M[0] * M[4] - M[1] * M[3]));
    int n = (int)ceil(sc - 1e-6);
    n = n < 1 ? 1 : n > 8 ? 8 : n;
    float inv = 1.0f / (float)(n * n);
#pragma omp parallel for schedule(static) if ((long)w * h * n * n > 200000)
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float acc[4] = {0};
            for (int j = 0; j < n; j++)
                for (int i = 0; i < n; i++) {
                    double px, py;
                    apply_(M, x + (i + 0.5) / n, y + (j + 0.5) / n, &px, &py);
                    sample_add_(in, px, py, acc);
                }
            uint8_t *d = out->px + ((size_t)y * w + x) * in->c;
            for (int c = 0; c < in->c; c++) {
                float v = acc[c] * inv + 0.5f;
                d[c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
        }
    }
    return 0;
}

void face_model_to(double B[6], const double A[6], int size, int resize)
{
    /* transform_eval: the frame is resized to R (scale R/FACE_FRAME), then
     * centre-cropped at offset o = round((R - size) / 2), half to even as
     * image_center_crop does.  Model m -> frame f = (m + o) * FACE_FRAME / R. */
    int R = resize > 0 ? resize : transform_resize_size(size);
    double o = nearbyint((R - size) / 2.0);
    double k = (double)FACE_FRAME / R;
    double S[6] = {k, 0, o * k, 0, k, o * k};
    compose_(B, A, S);
}

int face_input(float *x, const image *photo, const double A[6], int size, int resize)
{
    image crop = {0};
    if (face_warp(&crop, photo, A, FACE_FRAME, FACE_FRAME) != 0)
        return -1;
    if (crop.c < 3) {
        image_free(&crop);
        return err_set("face_input: the photo must be RGB or RGBA");
    }
    image_drop_alpha(&crop);
    if (transform_eval(&crop, size, resize) != 0) {
        image_free(&crop);
        return -1;
    }
    image_to_chw_f32(x, &crop);
    image_free(&crop);
    return 0;
}

int face_apply(image *photo, const face *faces, int n, int size, int resize, face_gen_fn gen, void *ctx,
               float strength)
{
    size_t nx = (size_t)3 * size * size;
    float *x = malloc(nx * (size_t)(n + 1) * sizeof *x), *y = malloc(nx * sizeof *y);
    int rc = -1;
    if (!x || !y) {
        err_set("face: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (face_input(x + nx * i, photo, faces[i].A, size, resize) != 0)
            goto out;
    for (int i = 0; i < n; i++) {
        double B[6];
        if (gen(ctx, x + nx * i, y, size) != 0)
            goto out;
        face_model_to(B, faces[i].A, size, resize);
        if (paste_change(photo, x + nx * i, y, size, B, PASTE_FACE, strength) != 0)
            goto out;
    }
    rc = 0;
out:
    free(x);
    free(y);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The search */

/* Grey (BT.601 luma, as PIL's convert("L")) of any c. */
static int to_grey_(image *g, const image *im)
{
    g->w = im->w, g->h = im->h, g->c = 1;
    if (!(g->px = malloc((size_t)im->w * im->h)))
        return err_set("face: out of memory");
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = im->px + i * im->c;
        g->px[i] = im->c < 3 ? p[0] : (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
    return 0;
}

#define DETECT_MAX_SIDE     2048
#define UPSAMPLE_MAX_PIXELS (8L << 20)
#define MAX_DETECTIONS      64
#define VERIFY_BELOW        0.5f /* detections scoring less get a second look */

static int cmp_scale_(const void *a, const void *b)
{
    double x = ((const face *)a)->scale, y = ((const face *)b)->scale;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A second look: the face's aligned crop (upright, FACE_FRAME square, as
 * the generator will see it) must itself hold a face for the detector.
 * HOG alone takes some patterns for faces (a mission patch on a suit);
 * their crops rarely pass, while real faces' do (aligned crops are what
 * the detector finds best).  1 keep, 0 drop, -1 error. */
static int verify_(face_finder *ff, const image *grey, const double P[6], const face *f)
{
    if (f->score >= VERIFY_BELOW)
        return 1;
    double Pi[6], V[6];
    if (face_affine_invert(P, Pi) != 0)
        return -1;
    compose_(V, Pi, f->A); /* frame -> grey */
    image c = {0};
    if (face_warp(&c, grey, V, FACE_FRAME, FACE_FRAME) != 0)
        return -1;
    float boxes[MAX_DETECTIONS * 5];
    int nd = ff->detect(ff->h, c.px, c.w, c.h, boxes, MAX_DETECTIONS);
    image_free(&c);
    if (nd < 0)
        return err_set("%s", ff->error());
    return nd > 0;
}

/* Detect in a copy of grey warped by M (copy -> grey) at w x h; the faces
 * get landmarks there and are mapped to the photo with P (grey -> photo). */
static int search_(face_finder *ff, const image *grey, const double M[6], int w, int h, const double P[6],
                   float angle, int up, face **faces, int *n)
{
    image c = {0};
    if (face_warp(&c, grey, M, w, h) != 0)
        return -1;
    /* Room for MAX_DETECTIONS; a crowd of more is detected again with room
     * for all, so that no face is dropped (a photo of 100 faces). */
    float few[MAX_DETECTIONS * 5], *boxes = few;
    int nd = ff->detect(ff->h, c.px, c.w, c.h, boxes, MAX_DETECTIONS);
    if (nd > MAX_DETECTIONS) {
        int all = nd;
        if (!(boxes = malloc((size_t)all * 5 * sizeof *boxes))) {
            image_free(&c);
            return err_set("face: out of memory");
        }
        nd = ff->detect(ff->h, c.px, c.w, c.h, boxes, all);
        nd = nd > all ? all : nd;
    }
    if (nd < 0) {
        if (boxes != few)
            free(boxes);
        image_free(&c);
        return err_set("%s", ff->error());
    }
    double T[6];
    compose_(T, P, M); /* copy -> photo */
    face *fs = nd ? calloc((size_t)nd, sizeof *fs) : NULL;
    if (nd && !fs) {
        if (boxes != few)
            free(boxes);
        image_free(&c);
        return err_set("face: out of memory");
    }
    int k = 0;
    for (int i = 0; i < nd; i++) {
        face *f = &fs[k];
        float pts[136];
        if (ff->landmarks(ff->h, c.px, c.w, c.h, boxes + 5 * i, pts) != 0) {
            if (boxes != few)
                free(boxes);
            free(fs);
            image_free(&c);
            return err_set("%s", ff->error());
        }
        for (int p = 0; p < 68; p++) {
            double x, y;
            apply_(T, pts[2 * p] + 0.5, pts[2 * p + 1] + 0.5, &x, &y);
            f->pts[p][0] = (float)x, f->pts[p][1] = (float)y;
        }
        double bx0 = INFINITY, by0 = INFINITY, bx1 = -INFINITY, by1 = -INFINITY;
        for (int q = 0; q < 4; q++) {
            double x, y;
            apply_(T, boxes[5 * i + (q & 1 ? 2 : 0)], boxes[5 * i + (q & 2 ? 3 : 1)], &x, &y);
            bx0 = fmin(bx0, x), by0 = fmin(by0, y), bx1 = fmax(bx1, x), by1 = fmax(by1, y);
        }
        f->box[0] = (float)bx0, f->box[1] = (float)by0, f->box[2] = (float)bx1, f->box[3] = (float)by1;
        f->score = boxes[5 * i + 4];
        f->angle = angle;
        f->upsample = up;
        if (face_align(f) != 0)
            continue;
        int v = verify_(ff, grey, P, f);
        if (v < 0) {
            if (boxes != few)
                free(boxes);
            free(fs);
            image_free(&c);
            return -1;
        }
        k += v;
    }
    if (boxes != few)
        free(boxes);
    image_free(&c);
    *faces = fs;
    *n = k;
    return 0;
}

static double now_(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int face_find(face_finder *ff, const image *im, int max, face **faces)
{
    return face_find_until(ff, im, max, 0, faces, NULL);
}

int face_find_until(face_finder *ff, const image *im, int max, double seconds, face **faces, int *late)
{
    double until = seconds > 0 ? now_() + seconds : 0;
    if (late)
        *late = 0;
    *faces = NULL;
    if (!im || !im->px || im->w <= 0 || im->h <= 0 || im->c < 1 || im->c > 4)
        return err_set("face_find: invalid image");
    image g = {0}, full = {0};
    if (to_grey_(&full, im) != 0)
        return -1;
    /* P: grey -> photo.  Big photos are searched at DETECT_MAX_SIDE. */
    double P[6] = {1, 0, 0, 0, 1, 0};
    int side = im->w > im->h ? im->w : im->h;
    if (side > DETECT_MAX_SIDE) {
        double s = (double)DETECT_MAX_SIDE / side;
        int w = (int)lround(im->w * s), h = (int)lround(im->h * s);
        w = w < 1 ? 1 : w, h = h < 1 ? 1 : h;
        int rc = image_resize(&g, &full, w, h);
        image_free(&full);
        if (rc != 0)
            return -1;
        P[0] = (double)im->w / w, P[4] = (double)im->h / h;
    } else {
        g = full;
    }
    static const float angles[] = {0, 15, -15, 30, -30};
    double per_px = 0; /* seconds per pixel searched, from the upright copy */
    int n = 0;
    face *fs = NULL;
    for (int a = 0; a < 5 && n == 0; a++) {
        for (int up = 1; up <= 2 && n == 0; up++) {
            if (up == 2 && (long)g.w * g.h * 4 > UPSAMPLE_MAX_PIXELS)
                continue;
            /* The copy: g rotated by angle about its centre on a canvas
             * that holds all of it, scaled by up.  M: copy -> g. */
            double rad = angles[a] * M_PI / 180, cs = cos(rad), sn = sin(rad);
            int w = (int)ceil((fabs(cs) * g.w + fabs(sn) * g.h) * up);
            int h = (int)ceil((fabs(sn) * g.w + fabs(cs) * g.h) * up);
            double M[6] = {cs / up, -sn / up, 0, sn / up, cs / up, 0};
            M[2] = g.w / 2.0 - (M[0] * w / 2.0 + M[1] * h / 2.0);
            M[5] = g.h / 2.0 - (M[3] * w / 2.0 + M[4] * h / 2.0);
            /* The upright copy is always searched; the others only when
             * the time the first took per pixel says they end in time. */
            double t = now_();
            if (until && (a || up > 1) && t + per_px * w * h > until) {
                if (late)
                    *late = 1;
                continue;
            }
            if (search_(ff, &g, M, w, h, P, angles[a], up, &fs, &n) != 0) {
                image_free(&g);
                return -1;
            }
            if (!a && up == 1)
                per_px = (now_() - t) / ((double)w * h);
            if (n == 0)
                free(fs), fs = NULL;
        }
    }
    image_free(&g);
    if (n > 1)
        qsort(fs, (size_t)n, sizeof *fs, cmp_scale_);
    if (n > max)
        n = max;
    *faces = fs;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Drawing */

static void dot_(image *im, int x, int y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h)
        return;
    uint8_t *p = im->px + ((size_t)y * im->w + x) * im->c;
    memcpy(p, rgb, 3);
    if (im->c == 4)
        p[3] = 255;
}

static void line_(image *im, double x0, double y0, double x1, double y1, const uint8_t rgb[3], int thick)
{
    double len = fmax(fabs(x1 - x0), fabs(y1 - y0));
    int n = (int)ceil(len) + 1;
    if (n > 100000)
        return;
    for (int i = 0; i <= n; i++) {
        double x = x0 + (x1 - x0) * i / n, y = y0 + (y1 - y0) * i / n;
        for (int dy = 0; dy < thick; dy++)
            for (int dx = 0; dx < thick; dx++)
                dot_(im, (int)floor(x) + dx, (int)floor(y) + dy, rgb);
    }
}

void face_draw(image *im, const face *f)
{
    if (im->c < 3)
        return;
    static const uint8_t blue[3] = {40, 90, 255}, green[3] = {40, 220, 60}, red[3] = {255, 40, 40};
    int th = f->scale > 3 ? 3 : f->scale > 1.5 ? 2 : 1;
    line_(im, f->box[0], f->box[1], f->box[2], f->box[1], blue, th);
    line_(im, f->box[2], f->box[1], f->box[2], f->box[3], blue, th);
    line_(im, f->box[2], f->box[3], f->box[0], f->box[3], blue, th);
    line_(im, f->box[0], f->box[3], f->box[0], f->box[1], blue, th);
    double c[4][2];
    for (int k = 0; k < 4; k++)
        apply_(f->A, (k == 1 || k == 2) * FACE_FRAME, (k >= 2) * FACE_FRAME, &c[k][0], &c[k][1]);
    for (int k = 0; k < 4; k++)
        line_(im, c[k][0], c[k][1], c[(k + 1) % 4][0], c[(k + 1) % 4][1], green, th);
    for (int p = 0; p < 68; p++)
        line_(im, f->pts[p][0] - th, f->pts[p][1], f->pts[p][0] + th, f->pts[p][1], red, th);
}
