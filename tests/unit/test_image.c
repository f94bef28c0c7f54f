/*
 * test_image: lib/image/image.h against PIL 9.4 / torchvision 0.14.
 *
 * tests/py/image_ops_ref.py (run with /usr/bin/python3, which has torch)
 * writes test images and the expected output of every op into a temporary
 * folder (or use IMAGE_REF_DIR=folder to reuse one); each case is compared
 * byte for byte and reported as "# op ... max|d|=N".  Without that Python
 * the parity tests print a SKIP comment and pass.  The bad-input tests need
 * no Python and are meant to be run under `make asan` too.
 * UTKFACE_DIR=.../UTKFace adds 5 real faces (decode, Resize(250), CenterCrop(200)).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "base/err.h"
#include "image/image.h"

/* ------------------------------------------------------------------------ */
/* Reference folder */

static char ref_dir_[4096];
static int ref_state_; /* 0 unknown, 1 ready, -1 unavailable */
static int ref_tmp_;

static void ref_cleanup_(void)
{
    if (ref_tmp_ && ref_dir_[0]) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", ref_dir_);
        if (system(cmd) != 0)
            fprintf(stderr, "# could not remove %s\n", ref_dir_);
    }
}

/* The folder with manifest.txt, generating it on first use; NULL to skip. */
static const char *ref_dir(void)
{
    if (ref_state_)
        return ref_state_ > 0 ? ref_dir_ : NULL;
    ref_state_ = -1;
    const char *env = getenv("IMAGE_REF_DIR");
    if (env && *env) {
        snprintf(ref_dir_, sizeof ref_dir_, "%s", env);
        ref_state_ = 1;
        return ref_dir_;
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("# SKIP parity: /usr/bin/python3 (with torch) not found\n");
        return NULL;
    }
    const char *tests = getenv("TESTS_DIR");
    char script[4096];
    snprintf(script, sizeof script, "%s/py/image_ops_ref.py", tests && *tests ? tests : "tests");
    if (access(script, R_OK) != 0) {
        printf("# SKIP parity: %s not found (run from the repository root)\n", script);
        return NULL;
    }
    snprintf(ref_dir_, sizeof ref_dir_, "/tmp/test_image.XXXXXX");
    if (!mkdtemp(ref_dir_)) {
        printf("# SKIP parity: mkdtemp: %s\n", strerror(errno));
        return NULL;
    }
    ref_tmp_ = 1;
    atexit(ref_cleanup_);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, ref_dir_);
    int rc = system(cmd);
    if (rc != 0) {
        printf("# SKIP parity: %s failed (status %d; torch/torchvision/PIL missing?)\n", script, rc);
        return NULL;
    }
    ref_state_ = 1;
    return ref_dir_;
}

static uint8_t *slurp(const char *dir, const char *name, size_t *n)
{
    char p[8192];
    if (name[0] == '/')
        snprintf(p, sizeof p, "%s", name);
    else
        snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "# cannot open %s\n", p);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

static int decode_file(image *im, const char *dir, const char *name)
{
    size_t n;
    uint8_t *b = slurp(dir, name, &n);
    if (!b)
        return -1;
    int rc = image_decode(im, b, n);
    free(b);
    if (rc)
        fprintf(stderr, "# decode %s: %s\n", name, err_msg());
    return rc;
}

/* Max |got - want| over w*h*c bytes; -1 if the sizes differ. */
static int max_diff(const image *got, const uint8_t *want, int w, int h, int c)
{
    if (got->w != w || got->h != h || got->c != c)
        return -1;
    int m = 0;
    for (size_t i = 0; i < (size_t)w * h * c; i++) {
        int d = abs((int)got->px[i] - (int)want[i]);
        if (d > m)
            m = d;
    }
    return m;
}

/* Run every manifest case of the given ops; tolerance 0 (bit-exact). */
static int run_cases(const char *const *ops)
{
    const char *dir = ref_dir();
    if (!dir)
        return 0;
    char mpath[8192];
    snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
    FILE *m = fopen(mpath, "r");
    EXPECT(m, "cannot open %s", mpath);
    char line[8192];
    int fails = 0, count = 0;
    while (fgets(line, sizeof line, m)) {
        char op[64], in[4096], exp[256], a1[64] = "", a2[64] = "", a3[64] = "", a4[64] = "";
        int w, h;
        if (sscanf(line, "%63s %4095s %255s %d %d %63s %63s %63s %63s", op, in, exp, &w, &h, a1, a2, a3, a4) <
            5)
            continue;
        int want_op = 0;
        for (const char *const *o = ops; *o; o++)
            want_op |= strcmp(*o, op) == 0;
        if (!want_op)
            continue;
        count++;
        size_t n;
        uint8_t *want = slurp(dir, exp, &n);
        image src = {0}, got = {0};
        int rc = want && n == (size_t)w * h * 3 ? 0 : -1;
        if (!rc && strcmp(op, "from_chw") == 0) {
            size_t fn;
            // cppcheck-suppress invalidPointerCast ; the file holds little-endian f32
            float *f = (float *)slurp(dir, in, &fn);
            rc = f ? image_from_chw_f32(&got, f, 3, h, w) : -1;
            free(f);
        } else if (!rc) {
            rc = decode_file(&src, dir, in);
        }
        if (!rc) {
            if (!strcmp(op, "decode")) {
                got = src;
                src.px = NULL;
            } else if (!strcmp(op, "resize"))
                rc = image_resize(&got, &src, atoi(a1), atoi(a2));
            else if (!strcmp(op, "resize_short"))
                rc = image_resize_short(&got, &src, atoi(a1));
            else if (!strcmp(op, "center_crop"))
                rc = image_center_crop(&got, &src, atoi(a1), atoi(a2));
            else if (!strcmp(op, "crop"))
                rc = image_crop(&got, &src, atoi(a1), atoi(a2), atoi(a3), atoi(a4));
            else if (!strcmp(op, "hflip"))
                rc = image_hflip(&got, &src);
            else if (!strcmp(op, "rotate")) {
                uint32_t bits = (uint32_t)strtoul(a1, NULL, 16);
                float deg;
                memcpy(&deg, &bits, sizeof deg);
                rc = image_rotate(&got, &src, deg);
            } else if (!strcmp(op, "utk")) {
                image r = {0};
                rc = image_resize_short(&r, &src, 250);
                if (!rc)
                    rc = image_center_crop(&got, &r, 200, 200);
                image_free(&r);
            }
        }
        int d = rc ? -1 : max_diff(&got, want, w, h, 3);
        const char *base = strrchr(in, '/');
        printf("# %-12s %-24s %s %s -> %dx%d max|d|=%d%s\n", op, base ? base + 1 : in, a1, a2, w, h,
               d < 0 ? 999 : d, d == 0 ? "" : "  NOT OK");
        if (rc)
            printf("#   error: %s\n", err_msg());
        fails += d != 0;
        image_free(&src);
        image_free(&got);
        free(want);
    }
    fclose(m);
    EXPECT(count > 0, "no %s cases in manifest", ops[0]);
    return fails ? 1 : 0;
}

static int test_decode_parity(void)
{
    static const char *const ops[] = {"decode", NULL};
    return run_cases(ops);
}

static int test_resize_parity(void)
{
    static const char *const ops[] = {"resize", "resize_short", NULL};
    return run_cases(ops);
}

static int test_crop_flip_parity(void)
{
    static const char *const ops[] = {"center_crop", "crop", "hflip", NULL};
    return run_cases(ops);
}

static int test_rotate_parity(void)
{
    static const char *const ops[] = {"rotate", NULL};
    return run_cases(ops);
}

static int test_chain_parity(void)
{
    static const char *const ops[] = {"utk", "from_chw", NULL};
    return run_cases(ops);
}

static int test_to_chw_parity(void)
{
    const char *dir = ref_dir();
    if (!dir)
        return 0;
    char mpath[8192], line[8192];
    snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
    FILE *m = fopen(mpath, "r");
    EXPECT(m, "cannot open %s", mpath);
    int fails = 0, count = 0;
    while (fgets(line, sizeof line, m)) {
        char op[64], in[4096], exp[256];
        int w, h;
        if (sscanf(line, "%63s %4095s %255s %d %d", op, in, exp, &w, &h) != 5 || strcmp(op, "to_chw"))
            continue;
        count++;
        image src = {0};
        size_t n;
        // cppcheck-suppress invalidPointerCast ; the file holds little-endian f32
        float *want = (float *)slurp(dir, exp, &n);
        EXPECT(want && !decode_file(&src, dir, in), "inputs for %s", in);
        EXPECT(n == (size_t)3 * w * h * sizeof(float), "size of %s", exp);
        float *got = malloc(n);
        image_to_chw_f32(got, &src);
        /* bit-exact: tolerance 0 */
        char label[4200];
        snprintf(label, sizeof label, "to_chw %s", in);
        fails += check_tensor(label, got, want, 3L * w * h, 0, 0);
        free(got);
        free(want);
        image_free(&src);
    }
    fclose(m);
    EXPECT(count > 0, "no to_chw cases");
    return fails ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Self-contained tests (no Python) */

static image pattern(int w, int h)
{
    image im = {w, h, 3, malloc((size_t)w * h * 3)};
    /* smooth ramp plus small noise, clamped: JPEG-friendly */
    uint32_t s = 12345;
    for (int i = 0; i < w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        int y = i / (w * 3), x = (i / 3) % w;
        int v = (x * 255 / w + y * 255 / h) / 2 + (int)(s >> 28) - 8;
        im.px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return im;
}

static int test_encode_roundtrip(void)
{
    image im = pattern(57, 41), back = {0};
    uint8_t *buf;
    size_t n;
    EXPECT(image_encode_png(&im, &buf, &n) == 0, "%s", err_msg());
    EXPECT(image_decode(&back, buf, n) == 0, "%s", err_msg());
    EXPECT(max_diff(&back, im.px, 57, 41, 3) == 0, "PNG round trip not exact");
    free(buf);
    image_free(&back);
    EXPECT(image_encode_jpeg(&im, 95, &buf, &n) == 0, "%s", err_msg());
    EXPECT(image_decode(&back, buf, n) == 0, "%s", err_msg());
    int d = max_diff(&back, im.px, 57, 41, 3);
    printf("# jpeg q95 round trip max|d|=%d\n", d);
    EXPECT(d >= 0 && d < 40, "JPEG round trip max|d|=%d", d);
    free(buf);
    image_free(&back);
    image g = {5, 4, 1, im.px};
    EXPECT(image_encode_png(&g, &buf, &n) == 0, "%s", err_msg());
    EXPECT(image_decode(&back, buf, n) == 0 && back.c == 3, "grey png");
    EXPECT(back.px[3] == g.px[1] && back.px[4] == g.px[1], "grey replicated");
    free(buf);
    image_free(&back);
    EXPECT(image_encode_jpeg(&im, 0, &buf, &n) == -1, "quality 0 accepted");
    image_free(&im);
    image_free(&im); /* NULL-safe twice */
    image_free(NULL);
    return 0;
}

static int expect_fail(const uint8_t *b, size_t n, const char *what, const char *needle)
{
    image im = {1, 1, 1, (uint8_t *)"x"};
    int rc = image_decode(&im, b, n);
    printf("# %-28s -> %d \"%s\"\n", what, rc, rc ? err_msg() : "");
    EXPECT(rc == -1, "%s decoded", what);
    EXPECT(im.px == NULL, "%s: px left set", what);
    EXPECT(!needle || strstr(err_msg(), needle), "%s: message \"%s\" lacks \"%s\"", what, err_msg(), needle);
    return 0;
}

static int test_bad_input(void)
{
    image im = pattern(64, 48);
    uint8_t *jpg, *png;
    size_t nj, np;
    EXPECT(!image_encode_jpeg(&im, 90, &jpg, &nj) && !image_encode_png(&im, &png, &np), "enc");
    image_free(&im);

    EXPECT(!expect_fail(NULL, 0, "NULL", "empty"), "see above");
    EXPECT(!expect_fail(jpg, 0, "zero length", "empty"), "see above");
    uint8_t junk[512];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
    EXPECT(!expect_fail(junk, sizeof junk, "random bytes", "not a JPEG or PNG"), "see above");
    EXPECT(!expect_fail(jpg, 2, "JPEG 2 bytes", NULL), "see above");
    EXPECT(!expect_fail(jpg, 3, "JPEG magic only", "corrupt JPEG"), "see above");
    EXPECT(!expect_fail(jpg, 200, "JPEG truncated in header", "corrupt JPEG"), "see above");
    EXPECT(!expect_fail(jpg, nj / 2, "JPEG truncated in data", "corrupt JPEG"), "see above");
    EXPECT(!expect_fail(jpg, nj - 2, "JPEG without EOI", "corrupt JPEG"), "see above");
    EXPECT(!expect_fail(png, 8, "PNG signature only", "corrupt PNG"), "see above");
    EXPECT(!expect_fail(png, 30, "PNG truncated in IHDR", "corrupt PNG"), "see above");
    EXPECT(!expect_fail(png, np / 2, "PNG truncated in IDAT", "corrupt PNG"), "see above");
    /* PIL loads a PNG cut after the image data (no IEND), and so do we. */
    image cut = {0};
    EXPECT(image_decode(&cut, png, np - 12) == 0, "PNG without IEND: %s", err_msg());
    image_free(&cut);

    /* JPEG header garbage: overwrite the bytes after SOI. */
    uint8_t *b = malloc(nj);
    memcpy(b, jpg, nj);
    memset(b + 4, 0x41, 40);
    EXPECT(!expect_fail(b, nj, "JPEG corrupt header", "corrupt JPEG"), "see above");
    /* Huge declared size: patch SOF0 to 60000x60000. */
    memcpy(b, jpg, nj);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < nj; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    EXPECT(sof, "no SOF0 in our JPEG");
    b[sof + 5] = 0xEA, b[sof + 6] = 0x60, b[sof + 7] = 0xEA, b[sof + 8] = 0x60;
    EXPECT(!expect_fail(b, nj, "JPEG 60000x60000", "too large"), "see above");
    b[sof + 5] = 0, b[sof + 6] = 0; /* height 0 */
    expect_fail(b, nj, "JPEG height 0", NULL);
    free(b);

    /* PNG with forged IHDR sizes (CRC fixed so only the size is wrong). */
    b = malloc(np);
    const uint32_t dims[][2] = {{100000, 100000}, {0x7fffffff, 2}, {0, 10}};
    const char *names[] = {"PNG 100000x100000", "PNG 2^31-1 x 2", "PNG width 0"};
    for (int k = 0; k < 3; k++) {
        memcpy(b, png, np);
        check_put_be32(b + 16, dims[k][0]);
        check_put_be32(b + 20, dims[k][1]);
        check_put_be32(b + 29, check_crc32(b + 12, 17));
        EXPECT(!expect_fail(b, np, names[k], k < 2 ? "too large" : NULL), "see above");
    }
    /* Bad CRC in IHDR. */
    memcpy(b, png, np);
    b[20] ^= 1;
    EXPECT(!expect_fail(b, np, "PNG bad IHDR CRC", "corrupt PNG"), "see above");
    free(b);

    /* Fuzz: random byte flips and cuts must never crash (ASan checks the
     * rest); the result may be an image or an error. */
    int ok = 0, err = 0;
    for (int t = 0; t < 400; t++) {
        const uint8_t *src = t % 2 ? png : jpg;
        size_t n = t % 2 ? np : nj;
        uint8_t *f = malloc(n);
        memcpy(f, src, n);
        int flips = 1 + (int)((s = s * 1103515245u + 12345u) >> 16) % 8;
        for (int k = 0; k < flips; k++) {
            s = s * 1103515245u + 12345u;
            f[(s >> 8) % n] ^= (uint8_t)(1 + (s >> 24) % 255);
        }
        s = s * 1103515245u + 12345u;
        size_t cut = (t % 5 == 0) ? (s >> 4) % n : n;
        image out = {0};
        if (image_decode(&out, f, cut) == 0) {
            ok++;
            EXPECT(out.w > 0 && out.h > 0 && out.c == 3 && out.px, "decoded garbage shape");
        } else {
            err++;
            EXPECT(out.px == NULL && err_msg()[0], "error without message");
        }
        image_free(&out);
        free(f);
    }
    printf("# fuzz: 400 mutants, %d decoded, %d rejected, no crash\n", ok, err);
    free(jpg);
    free(png);
    return 0;
}

static int test_op_errors(void)
{
    image im = pattern(10, 8), out = {0};
    EXPECT(image_crop(&out, &im, 5, 0, 6, 8) == -1 && !out.px, "crop past right edge");
    EXPECT(image_crop(&out, &im, -1, 0, 2, 2) == -1, "crop negative x");
    EXPECT(image_crop(&out, &im, 0, 0, 0, 2) == -1, "crop zero width");
    EXPECT(image_center_crop(&out, &im, 11, 8) == -1, "center crop too wide");
    EXPECT(image_resize(&out, &im, 0, 5) == -1, "resize to 0");
    EXPECT(image_resize_short(&out, &im, -3) == -1, "resize_short negative");
    EXPECT(image_rotate(&out, &im, NAN) == -1, "rotate NaN");
    EXPECT(image_rotate(&out, &im, INFINITY) == -1, "rotate inf");
    image bad = {0, 0, 3, NULL};
    EXPECT(image_hflip(&out, &bad) == -1, "hflip of empty image");
    EXPECT(image_from_chw_f32(&out, NULL, 3, 0, 5) == -1, "from_chw zero height");
    /* NaN and infinities in from_chw: NaN -> 0, +inf -> 255, -inf -> 0. */
    float f[4] = {NAN, INFINITY, -INFINITY, 0.0f};
    EXPECT(image_from_chw_f32(&out, f, 1, 2, 2) == 0, "%s", err_msg());
    EXPECT(out.px[0] == 0 && out.px[1] == 255 && out.px[2] == 0 && out.px[3] == 128, "got %d %d %d %d",
           out.px[0], out.px[1], out.px[2], out.px[3]);
    image_free(&out);
    /* Same-size resize and zero rotation are copies; other channel counts work. */
    EXPECT(image_resize(&out, &im, 10, 8) == 0 && !memcmp(out.px, im.px, 240), "resize copy");
    image_free(&out);
    image g = {10, 8, 1, im.px};
    EXPECT(image_resize(&out, &g, 5, 3) == 0 && out.c == 1 && out.w == 5, "grey resize");
    image_free(&out);
    EXPECT(image_rotate(&out, &g, 33.0f) == 0 && out.c == 1, "grey rotate");
    image_free(&out);
    image_free(&im);
    return 0;
}

static double now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */
/* What a small file may cost: pixel limits, reduced decodes, scan bombs */

static size_t seg_(uint8_t *b, uint8_t marker, const uint8_t *payload, size_t n)
{
    b[0] = 0xFF, b[1] = marker, b[2] = (uint8_t)((n + 2) >> 8), b[3] = (uint8_t)(n + 2);
    memcpy(b + 4, payload, n);
    return n + 4;
}

/* A grey 256x256 progressive JPEG (tests/py/hostile_jpeg.py's, smaller): a
 * DC scan, then `scans` AC scans that code one EOB run each; with refine,
 * an AC scan at Al=1 and `scans` refinements that all claim bit 0. */
static uint8_t *scan_bomb_(int scans, int refine, size_t *len)
{
    uint8_t *b = malloc(1024 + (size_t)scans * 16), q[65] = {0}, sof[9] = {8, 1, 0, 1, 0, 1, 1, 0x11, 0};
    uint8_t dc[18] = {0x00, 1}, ac[18] = {0x10, 1, [17] = 0xE0};
    size_t n = 2;
    b[0] = 0xFF, b[1] = 0xD8;
    memset(q + 1, 1, 64);
    n += seg_(b + n, 0xDB, q, sizeof q);
    n += seg_(b + n, 0xC2, sof, sizeof sof);
    n += seg_(b + n, 0xC4, dc, sizeof dc);
    n += seg_(b + n, 0xC4, ac, sizeof ac);
    uint8_t sos[6] = {1, 1, 0, 0, 0, 0};
    n += seg_(b + n, 0xDA, sos, sizeof sos);
    memset(b + n, 0, 1024 / 8), n += 1024 / 8; /* a '0' bit per block: DC differences of 0 */
    for (int i = -!!refine; i < scans; i++) {
        sos[3] = 1, sos[4] = 63, sos[5] = refine ? (i < 0 ? 0x01 : 0x10) : 0;
        n += seg_(b + n, 0xDA, sos, sizeof sos);
        b[n++] = 0x00, b[n++] = 0x01; /* EOB14: a run of 16384 blocks, then a padding bit */
    }
    b[n++] = 0xFF, b[n++] = 0xD9;
    *len = n;
    return b;
}

static int test_decode_limits(void)
{
    image src = {640, 480, 3, malloc(640 * 480 * 3)}, im = {0};
    for (int i = 0; i < 640 * 480 * 3; i++)
        src.px[i] = (uint8_t)(i * 7 + i / 1920);
    uint8_t *jpg;
    size_t n;
    EXPECT(image_encode_jpeg(&src, 90, &jpg, &n) == 0, "%s", err_msg());
    image_free(&src);
    /* the caller's pixel limit, from the header */
    image_need need = {.max_pixels = 640 * 480 - 1};
    EXPECT(image_decode_need(&im, jpg, n, &need) != 0 && strstr(err_msg(), "exceeds the limit of 307199"),
           "%s", err_msg());
    need.max_pixels = 640 * 480;
    EXPECT(image_decode_need(&im, jpg, n, &need) == 0 && im.w == 640 && im.h == 480, "%s", err_msg());
    image_free(&im);
    /* a reduced decode: the smallest of 1/8, 1/4, 1/2 that keeps both sides
     * >= 2 x 50 is 1/4; 2 x 100 needs 1/2; 2 x 200 (less than twice) none */
    need = (image_need){.min_w = 50, .min_h = 50};
    EXPECT(image_decode_need(&im, jpg, n, &need) == 0 && im.w == 160 && im.h == 120, "%dx%d", im.w, im.h);
    image_free(&im);
    need = (image_need){.min_w = 100, .min_h = 100};
    EXPECT(image_decode_need(&im, jpg, n, &need) == 0 && im.w == 320 && im.h == 240, "%dx%d", im.w, im.h);
    image_free(&im);
    need = (image_need){.min_w = 200, .min_h = 200};
    EXPECT(image_decode_need(&im, jpg, n, &need) == 0 && im.w == 640 && im.h == 480, "%dx%d", im.w, im.h);
    image_free(&im);
    /* a frame header declaring more than the data holds: libjpeg would fill
     * 4096x4096 from nothing after "premature end of data segment" */
    for (size_t i = 2; i + 9 < n; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = jpg[i + 7] = 0x10, jpg[i + 6] = jpg[i + 8] = 0;
            break;
        }
    EXPECT(image_decode(&im, jpg, n) != 0 && strstr(err_msg(), "premature end of data segment"), "%s",
           err_msg());
    free(jpg);
    /* scans: a few empty ones decode; past IMAGE_MAX_SCANS, or an
     * inconsistent progression, is refused */
    uint8_t *bomb = scan_bomb_(IMAGE_MAX_SCANS - 2, 0, &n);
    EXPECT(image_decode(&im, bomb, n) == 0 && im.w == 256, "%s", err_msg());
    image_free(&im);
    free(bomb);
    bomb = scan_bomb_(IMAGE_MAX_SCANS + 50, 0, &n);
    EXPECT(image_decode(&im, bomb, n) != 0 && strstr(err_msg(), "more than 100 scans"), "%s", err_msg());
    free(bomb);
    bomb = scan_bomb_(1, 1, &n);
    EXPECT(image_decode(&im, bomb, n) == 0, "one refinement: %s", err_msg());
    image_free(&im);
    free(bomb);
    bomb = scan_bomb_(3, 1, &n);
    EXPECT(image_decode(&im, bomb, n) != 0 && strstr(err_msg(), "inconsistent progression"), "%s", err_msg());
    free(bomb);
    return 0;
}

/* The aug chain per image, for a throughput figure next to torchvision's
 * (measured by the Python script, single thread).  Informational only. */
static int test_speed(void)
{
    const char *dir = ref_dir();
    if (!dir)
        return 0;
    char mpath[8192], line[8192];
    double py_us = 0;
    snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
    FILE *m = fopen(mpath, "r");
    EXPECT(m, "manifest");
    while (fgets(line, sizeof line, m))
        if (!strncmp(line, "pytime ", 7))
            sscanf(line, "pytime %*s %*s %lf", &py_us);
    fclose(m);
    size_t n;
    uint8_t *jpg = slurp(dir, "q90.jpg", &n);
    EXPECT(jpg, "q90.jpg");
    float *chw = malloc(sizeof(float) * 3 * 200 * 200);
    int iters = getenv("AGING_SANITIZED") ? 20 : 300;
    double t0 = now_();
    for (int i = 0; i < iters; i++) {
        image a = {0}, b = {0}, c = {0};
        EXPECT(!image_decode(&a, jpg, n) && !image_resize_short(&b, &a, 250), "chain");
        image_free(&a);
        EXPECT(!image_center_crop(&c, &b, 200, 200), "chain");
        image_free(&b);
        if (i & 1) {
            EXPECT(!image_hflip(&a, &c), "chain");
            image_free(&c);
            c = a;
        }
        EXPECT(!image_rotate(&b, &c, (float)(i % 61) - 30.0f), "chain");
        image_to_chw_f32(chw, &b);
        image_free(&b);
        image_free(&c);
    }
    double c_us = (now_() - t0) / iters * 1e6;
    printf("# speed: C chain %.0f us/image, torchvision+PIL %.0f us/image, ratio %.2fx\n", c_us, py_us,
           py_us > 0 ? py_us / c_us : 0);
    free(chw);
    free(jpg);
    return 0;
}

CHECK_MAIN(T(test_decode_parity), T(test_resize_parity), T(test_crop_flip_parity), T(test_rotate_parity),
           T(test_to_chw_parity), T(test_chain_parity), T(test_encode_roundtrip), T(test_bad_input),
           T(test_op_errors), T(test_decode_limits), T(test_speed))
