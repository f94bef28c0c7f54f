/*
 * fixture.h: reader for the PyTorch parity fixtures written by
 * tests/py/fixture.py, plus the glue the parity tests share: run a
 * tests/py/ref_*.py script with /usr/bin/python3 into a temp file (or learn
 * that torch is missing and SKIP), and a TAP main() with SKIP support.
 *
 * Format (little-endian): "AGFX", u32 version = 1, u32 count, then per tensor
 * u32 name length, name, u32 ndim, ndim x i64 shape, float32 data.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx_tensor {
    char name[128];
    int ndim;
    int64_t shape[8];
    long n;
    float *data;
};

struct fixture {
    int count;
    struct fx_tensor *t;
};

static inline void fixture_free(struct fixture *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->count; i++)
        free(f->t[i].data);
    free(f->t);
    free(f);
}

/* Caller frees with fixture_free.  NULL (with a message) on any error. */
static inline struct fixture *fixture_load(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "# fixture %s: cannot open\n", path);
        return NULL;
    }
    struct fixture *f = calloc(1, sizeof *f);
    char magic[4];
    uint32_t ver, count;
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "AGFX", 4) || fread(&ver, 4, 1, fp) != 1 || ver != 1 ||
        fread(&count, 4, 1, fp) != 1)
        goto bad;
    f->t = calloc(count, sizeof *f->t);
    for (uint32_t i = 0; i < count; i++) {
        struct fx_tensor *t = &f->t[i];
        uint32_t len, nd;
        if (fread(&len, 4, 1, fp) != 1 || len >= sizeof t->name || fread(t->name, 1, len, fp) != len ||
            fread(&nd, 4, 1, fp) != 1 || nd > 8)
            goto bad;
        t->ndim = (int)nd;
        if (fread(t->shape, 8, nd, fp) != nd)
            goto bad;
        t->n = 1;
        for (uint32_t d = 0; d < nd; d++)
            t->n *= t->shape[d];
        t->data = malloc(sizeof(float) * (t->n ? t->n : 1));
        if (fread(t->data, sizeof(float), t->n, fp) != (size_t)t->n)
            goto bad;
        f->count = (int)i + 1;
    }
    fclose(fp);
    return f;
bad:
    fprintf(stderr, "# fixture %s: truncated or bad format (HINT: rerun tests/py/ref_*.py)\n", path);
    fclose(fp);
    fixture_free(f);
    return NULL;
}

/* The tensor named `name`; NULL (and a message) if absent. */
static inline const struct fx_tensor *fixture_get(const struct fixture *f, const char *name)
{
    for (int i = 0; f && i < f->count; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    fprintf(stderr, "# fixture: no tensor %s\n", name);
    return NULL;
}

/* Data of `prefix.suffix`, or NULL. */
static inline const float *fxd(const struct fixture *f, const char *prefix, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const struct fx_tensor *t = fixture_get(f, name);
    return t ? t->data : NULL;
}

static inline long fxn(const struct fixture *f, const char *prefix, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const struct fx_tensor *t = fixture_get(f, name);
    return t ? t->n : 0;
}

/* Run `/usr/bin/python3 tests/py/<script> <tmpfile>` and load the result.
 * Returns NULL and sets *skip when python3/torch is not there. */
static inline struct fixture *fixture_from_python(const char *script, int *skip)
{
    *skip = 0;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        *skip = 1;
        return NULL;
    }
    const char *dir = getenv("TESTS_DIR");
    char tmpl[] = "/tmp/aging-fixture-XXXXXX", cmd[1024];
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return NULL;
    close(fd);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/py/%s %s", dir ? dir : "tests", script, tmpl);
    struct fixture *f = NULL;
    if (system(cmd) == 0)
        f = fixture_load(tmpl);
    else
        fprintf(stderr, "# %s failed\n", cmd);
    unlink(tmpl);
    return f;
}

/* Test functions return 0 ok, 1 failure, FX_SKIP to report "# SKIP no torch". */
#define FX_SKIP CHECK_SKIP

/* CHECK_MAIN that also calls the test file's fixtures_release() at the end. */
#define FX_MAIN(...)                                                                                         \
    int main(int argc, char **argv)                                                                          \
    {                                                                                                        \
        static const struct check_case cases[] = {__VA_ARGS__};                                              \
        int status = check_run(cases, (int)(sizeof cases / sizeof cases[0]), argc, argv);                    \
        fixtures_release();                                                                                  \
        return status;                                                                                       \
    }
