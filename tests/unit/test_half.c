/*
 * test_half: lib/base/half.h against torch 1.13's tensor.half() / .bfloat16()
 * and .float() on CPU, bit for bit.  The expected bits come from
 * tests/py/image_ops_ref.py (run with /usr/bin/python3; IMAGE_REF_DIR=dir
 * reuses an existing output folder); without torch those cases print a
 * SKIP comment.  Fixed known values and round trips need no Python.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "base/half.h"

static char dir_[4096];
static int state_, tmp_;

static void cleanup_(void)
{
    if (tmp_) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_);
        if (system(cmd) != 0)
            fprintf(stderr, "# could not remove %s\n", dir_);
    }
}

/* Folder holding the torch reference files, generated once; NULL to skip. */
static const char *ref_dir(void)
{
    if (state_)
        return state_ > 0 ? dir_ : NULL;
    state_ = -1;
    const char *env = getenv("IMAGE_REF_DIR"), *tests = getenv("TESTS_DIR");
    if (env && *env) {
        snprintf(dir_, sizeof dir_, "%s", env);
        state_ = 1;
        return dir_;
    }
    char script[4096];
    snprintf(script, sizeof script, "%s/py/image_ops_ref.py", tests && *tests ? tests : "tests");
    if (access("/usr/bin/python3", X_OK) != 0 || access(script, R_OK) != 0) {
        printf("# SKIP torch parity: /usr/bin/python3 or %s missing\n", script);
        return NULL;
    }
    snprintf(dir_, sizeof dir_, "/tmp/test_half.XXXXXX");
    if (!mkdtemp(dir_)) {
        printf("# SKIP torch parity: mkdtemp: %s\n", strerror(errno));
        return NULL;
    }
    tmp_ = 1;
    atexit(cleanup_);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' half", script, dir_); /* its half files only */
    if (system(cmd) != 0) {
        printf("# SKIP torch parity: %s failed (torch missing?)\n", script);
        return NULL;
    }
    state_ = 1;
    return dir_;
}

static void *slurp(const char *name, size_t *n)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir_, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f32 -> f16 / bf16 on random, denormal, overflow, inf and NaN inputs. */
static int test_from_f32_vs_torch(void)
{
    if (!ref_dir())
        return 0;
    size_t nf, nh, nb;
    float *in = slurp("half_in.f32", &nf);
    uint16_t *wh = slurp("half_out.u16", &nh), *wb = slurp("bf16_out.u16", &nb);
    EXPECT(in && wh && wb && nh == nf / 2 && nb == nf / 2, "reference files");
    size_t n = nf / 4, bad_h = 0, bad_b = 0;
    uint16_t *gh = malloc(2 * n), *gb = malloc(2 * n);
    half_from_f32_n(gh, in, n);
    bf16_from_f32_n(gb, in, n);
    for (size_t i = 0; i < n; i++) {
        if (gh[i] != wh[i] && bad_h++ < 5)
            printf("#   half  %08x: got %04x want %04x\n", fbits(in[i]), gh[i], wh[i]);
        if (gb[i] != wb[i] && bad_b++ < 5)
            printf("#   bf16  %08x: got %04x want %04x\n", fbits(in[i]), gb[i], wb[i]);
        if (gh[i] != half_from_f32(in[i]) || gb[i] != bf16_from_f32(in[i]))
            bad_h++; /* scalar and array versions must agree */
    }
    printf("# half_from_f32 n=%zu mismatches=%zu (max|d| 0 bits wanted)\n", n, bad_h);
    printf("# bf16_from_f32 n=%zu mismatches=%zu\n", n, bad_b);
    free(in), free(wh), free(wb), free(gh), free(gb);
    return bad_h || bad_b;
}

/* Every one of the 65536 f16 and bf16 patterns widened to f32. */
static int test_to_f32_vs_torch(void)
{
    if (!ref_dir())
        return 0;
    size_t n1, n2;
    uint32_t *wh = slurp("half_all.f32", &n1), *wb = slurp("bf16_all.f32", &n2);
    EXPECT(wh && wb && n1 == 65536 * 4 && n2 == 65536 * 4, "reference files");
    uint16_t *all = malloc(2 * 65536);
    float *g = malloc(4 * 65536);
    for (int i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    size_t bad_h = 0, bad_b = 0;
    half_to_f32_n(g, all, 65536);
    for (int i = 0; i < 65536; i++)
        if (fbits(g[i]) != wh[i] && bad_h++ < 5)
            printf("#   half %04x: got %08x want %08x\n", i, fbits(g[i]), wh[i]);
    bf16_to_f32_n(g, all, 65536);
    for (int i = 0; i < 65536; i++)
        if (fbits(g[i]) != wb[i] && bad_b++ < 5)
            printf("#   bf16 %04x: got %08x want %08x\n", i, fbits(g[i]), wb[i]);
    printf("# half_to_f32 all 65536 mismatches=%zu, bf16_to_f32 mismatches=%zu\n", bad_h, bad_b);
    free(wh), free(wb), free(all), free(g);
    return bad_h || bad_b;
}

static int test_known_values(void)
{
    static const struct {
        float f;
        uint16_t h, b;
    } cases[] = {
        {1.0f, 0x3C00, 0x3F80},           {-2.0f, 0xC000, 0xC000},
        {65504.0f, 0x7BFF, 0x4780},       {65519.996f, 0x7BFF, 0x4780},
        {65520.0f, 0x7C00, 0x4780},       {1e10f, 0x7C00, 0x5015},
        {0x1p-24f, 0x0001, 0x3380},       {0x1p-25f, 0x0000, 0x3300},
        {0x1.8p-25f, 0x0001, 0x3340},     {0x1p-14f, 0x0400, 0x3880},
        {1.0009765625f, 0x3C01, 0x3F80},  {1.00048828125f, 0x3C00, 0x3F80}, /* tie -> even */
        {1.00146484375f, 0x3C02, 0x3F80},                                   /* tie -> even */
        {0x1.01p0f, 0x3C04, 0x3F80},      {0x1.03p0f, 0x3C0C, 0x3F82},      /* bf16 ties */
        {-0.0f, 0x8000, 0x8000},          {INFINITY, 0x7C00, 0x7F80},
        {-INFINITY, 0xFC00, 0xFF80},      {NAN, 0x7E00, 0xFFFF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = half_from_f32(cases[i].f), b = bf16_from_f32(cases[i].f);
        EXPECT(h == cases[i].h, "half(%a) = %04x, want %04x", cases[i].f, h, cases[i].h);
        EXPECT(b == cases[i].b, "bf16(%a) = %04x, want %04x", cases[i].f, b, cases[i].b);
    }
    EXPECT(half_from_f32(-NAN) == 0xFE00, "-NaN keeps its sign in fp16");
    EXPECT(half_to_f32(0x7BFF) == 65504.0f && half_to_f32(0x0001) == 0x1p-24f, "widen");
    EXPECT(fbits(half_to_f32(0x7C01)) == 0x7FC02000u, "f16 sNaN widens quiet, as torch");
    EXPECT(fbits(bf16_to_f32(0x7F81)) == 0x7F810000u, "bf16 widens by shift");
    return 0;
}

/* Every finite, non-NaN pattern survives narrow(widen(x)). */
static int test_round_trip(void)
{
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = half_to_f32(h);
        if (!isnan(f))
            EXPECT(half_from_f32(f) == h, "half %04x -> %a -> %04x", h, f, half_from_f32(f));
        float g = bf16_to_f32(h);
        if (!isnan(g))
            EXPECT(bf16_from_f32(g) == h, "bf16 %04x -> %a", h, g);
    }
    EXPECT(isnan(half_to_f32(half_from_f32(bitsf(0x7F800001u)))), "sNaN stays NaN");
    return 0;
}

CHECK_MAIN(T(test_known_values), T(test_round_trip), T(test_from_f32_vs_torch), T(test_to_f32_vs_torch))
