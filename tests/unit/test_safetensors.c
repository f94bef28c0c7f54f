/*
 * test_safetensors: lib/safetensors round trips, interchange with an
 * independent Python implementation (tests/py/st_write.py: struct + json +
 * numpy), and rejection of every kind of malformed file with a message that
 * names the problem.  Runs in well under a second; meant for ASan/UBSan too.
 */
#include "base/err.h"
#include "format/safetensors.h"

#include "check.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// helpers

static char tmpdir[64];

/* A path inside this run's temporary directory (static buffer, rotating). */
static const char *tpath(const char *name)
{
    static char bufs[4][352];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static int setup(void)
{
    if (tmpdir[0])
        return 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_safetensors.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void cleanup(void)
{
    if (!tmpdir[0])
        return;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlink(tpath(e->d_name));
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

/* Number of files in tmpdir whose name contains ".tmp." (leftover temps). */
static int count_temps(void)
{
    int n = 0;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static int contains(const char *msg, const char *want)
{
    return strstr(msg, want) != NULL;
}

/* Parse 8-byte length (hlen, or strlen(json) when hlen < 0) + json + dlen
 * zero bytes; expect failure with a message containing want. */
static int expect_bad(const char *json, int64_t hlen, size_t dlen, const char *want)
{
    size_t jl = strlen(json), len = 8 + jl + dlen;
    uint8_t *b = calloc(1, len);
    uint64_t h = hlen < 0 ? (uint64_t)jl : (uint64_t)hlen;
    memcpy(b, &h, 8);
    memcpy(b + 8, json, jl);
    st_file *f = st_parse(b, len, "bad.safetensors");
    free(b);
    if (f) {
        st_free(f);
        printf("# accepted: %s\n", json);
        return 1;
    }
    if (!contains(err_msg(), "bad.safetensors: ") || !contains(err_msg(), want)) {
        printf("# for %s\n#   got message: %s\n#   want it to contain: %s\n", json, err_msg(), want);
        return 1;
    }
    return 0;
}

static int expect_good(const char *json, size_t dlen)
{
    size_t jl = strlen(json), len = 8 + jl + dlen;
    uint8_t *b = calloc(1, len);
    uint64_t h = jl;
    memcpy(b, &h, 8);
    memcpy(b + 8, json, jl);
    st_file *f = st_parse(b, len, "good.safetensors");
    free(b);
    if (!f)
        printf("# rejected %s: %s\n", json, err_msg());
    st_free(f);
    return f ? 0 : 1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, fp);
    fclose(fp);
    return b;
}

// ----------------------------------------------------------------------------
// the shared fixture (must match fixture() in tests/py/st_write.py)

static float a_f32[6];
static const uint16_t b_f16[5] = {0x3C00, 0xC100, 0x7BFF, 0x0400, 0x0001};
static const float b_want[5] = {1.0f, -2.5f, 65504.0f, 0x1p-14f, 0x1p-24f};
static const uint16_t c_bf16[4] = {0x3F80, 0xC040, 0x3E20, 0x7180};
static const float c_want[4] = {1.0f, -3.0f, 0.15625f, 0x1p100f};
static const double d_f64[3] = {0.1, -1e300, 3.0};
static const int64_t e_i64 = 7;
static const uint8_t f_u8[4] = {0, 1, 254, 255};
static const uint8_t g_bool[3] = {1, 0, 1};
static const int32_t h_i32[2] = {-5, 2147483647};
static float w_f32[6];

static int fixture_add(st_writer *w)
{
    for (int i = 0; i < 6; i++)
        a_f32[i] = (float)i * 0.25f - 0.5f, w_f32[i] = (float)i;
    int rc = 0;
    /* Added in a mixed order: the writer lays out 8-byte types first. */
    rc |= st_writer_add(w, "a.f32", ST_F32, (int64_t[]){2, 3}, 2, a_f32);
    rc |= st_writer_add(w, "b.f16", ST_F16, (int64_t[]){5}, 1, b_f16);
    rc |= st_writer_add(w, "c.bf16", ST_BF16, (int64_t[]){2, 2}, 2, c_bf16);
    rc |= st_writer_add(w, "G.model.1.weight", ST_F32, (int64_t[]){2, 3, 1, 1}, 4, w_f32);
    rc |= st_writer_add(w, "d.f64", ST_F64, (int64_t[]){3}, 1, d_f64);
    rc |= st_writer_add(w, "e.i64", ST_I64, NULL, 0, &e_i64);
    rc |= st_writer_add(w, "f.u8", ST_U8, (int64_t[]){4}, 1, f_u8);
    rc |= st_writer_add(w, "g.bool", ST_BOOL, (int64_t[]){3}, 1, g_bool);
    rc |= st_writer_add(w, "h.i32", ST_I32, (int64_t[]){2, 1}, 2, h_i32);
    rc |= st_writer_add(w, "i.empty", ST_F32, (int64_t[]){0, 4}, 2, NULL);
    rc |= st_writer_meta(w, "format", "aging-cyclegan");
    rc |= st_writer_meta(w, "epoch", "2");
    rc |= st_writer_meta(w, "config", "{\"lr\": 0.0002, \"name\": \"\xc3\xa9\"}");
    rc |= st_writer_meta(w, "quote", "a\"b\\c\n\t");
    rc |= st_writer_meta(w, "epoch", "3"); /* replaces, keeps its place */
    return rc;
}

static int write_fixture(const char *path)
{
    st_writer *w = st_writer_new();
    int rc = fixture_add(w);
    if (!rc)
        rc = st_writer_save(w, path);
    if (rc)
        printf("# write_fixture: %s\n", err_msg());
    st_writer_free(w);
    return rc;
}

static int same_shape(const st_tensor *t, const int64_t *shape, int ndim)
{
    if (t->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            return 0;
    return 1;
}

/* Everything in the fixture, checked on an open file. */
static int check_fixture(const st_file *f)
{
    EXPECT(st_count(f) == 10, "count %d", st_count(f));
    struct {
        const char *name;
        st_dtype dtype;
        int ndim;
        int64_t shape[4];
        const void *data;
        size_t nbytes;
    } want[] = {
        {"a.f32", ST_F32, 2, {2, 3}, a_f32, 24},   {"b.f16", ST_F16, 1, {5}, b_f16, 10},
        {"c.bf16", ST_BF16, 2, {2, 2}, c_bf16, 8}, {"d.f64", ST_F64, 1, {3}, d_f64, 24},
        {"e.i64", ST_I64, 0, {0}, &e_i64, 8},      {"f.u8", ST_U8, 1, {4}, f_u8, 4},
        {"g.bool", ST_BOOL, 1, {3}, g_bool, 3},    {"h.i32", ST_I32, 2, {2, 1}, h_i32, 8},
        {"i.empty", ST_F32, 2, {0, 4}, NULL, 0},   {"G.model.1.weight", ST_F32, 4, {2, 3, 1, 1}, w_f32, 24},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const st_tensor *t = st_get(f, want[i].name);
        EXPECT(t, "missing %s: %s", want[i].name, err_msg());
        EXPECT(strcmp(t->name, want[i].name) == 0, "name %s", t->name);
        EXPECT(t->dtype == want[i].dtype, "%s dtype %s", t->name, st_dtype_name(t->dtype));
        EXPECT(same_shape(t, want[i].shape, want[i].ndim), "%s shape", t->name);
        EXPECT(t->nbytes == want[i].nbytes, "%s nbytes %zu", t->name, t->nbytes);
        EXPECT(t->numel * (int64_t)st_dtype_size(t->dtype) == (int64_t)t->nbytes, "%s numel", t->name);
        EXPECT(!t->nbytes || memcmp(t->data, want[i].data, t->nbytes) == 0, "%s bytes differ", t->name);
        EXPECT((uintptr_t)t->data % st_dtype_size(t->dtype) == 0, "%s misaligned", t->name);
    }
    EXPECT(!st_get(f, "nope"), "found nope");
    EXPECT(contains(err_msg(), "missing tensor 'nope'"), "%s", err_msg());
    EXPECT(st_meta_count(f) == 4, "%d meta", st_meta_count(f));
    EXPECT(strcmp(st_meta(f, "format"), "aging-cyclegan") == 0, "format");
    EXPECT(strcmp(st_meta(f, "epoch"), "3") == 0, "epoch %s", st_meta(f, "epoch"));
    EXPECT(strcmp(st_meta(f, "quote"), "a\"b\\c\n\t") == 0, "quote %s", st_meta(f, "quote"));
    EXPECT(strcmp(st_meta(f, "config"), "{\"lr\": 0.0002, \"name\": \"\xc3\xa9\"}") == 0, "config %s",
           st_meta(f, "config"));
    EXPECT(st_meta(f, "missing") == NULL, "meta missing");
    EXPECT(st_meta_key(f, 4) == NULL && st_at(f, 10) == NULL && st_at(f, -1) == NULL, "bounds");
    return 0;
}

// ----------------------------------------------------------------------------
// tests

static int test_roundtrip(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    const char *p = tpath("rt.safetensors");
    EXPECT(write_fixture(p) == 0, "write");
    EXPECT(count_temps() == 0, "temporary files left behind");
    st_file *f = st_open(p);
    EXPECT(f, "%s", err_msg());
    int rc = check_fixture(f);
    /* Layout: 8-byte dtypes first, then 4, 2, 1; insertion order within. */
    static const char *order[] = {"d.f64",  "e.i64", "a.f32", "G.model.1.weight", "h.i32", "i.empty", "b.f16",
                                  "c.bf16", "f.u8",  "g.bool"};
    for (int i = 0; !rc && i < 10; i++)
        if (strcmp(st_at(f, i)->name, order[i]) != 0) {
            printf("# st_at(%d) = %s, want %s\n", i, st_at(f, i)->name, order[i]);
            rc = 1;
        }
    EXPECT(!rc && strcmp(st_meta_key(f, 0), "format") == 0 && strcmp(st_meta_key(f, 1), "epoch") == 0,
           "metadata order");
    st_free(f);
    /* Header padded to a multiple of 8, metadata first. */
    size_t len = 0;
    uint8_t *b = slurp(p, &len);
    uint64_t hlen;
    memcpy(&hlen, b, 8);
    int ok = hlen % 8 == 0 && memcmp(b + 8, "{\"__metadata__\":{", 17) == 0 && b[8 + hlen - 1] == ' ' &&
             len == 8 + hlen + 24 + 8 + 24 + 24 + 8 + 0 + 10 + 8 + 4 + 3;
    free(b);
    EXPECT(ok, "layout of the written file (len %zu, hlen %llu)", len, (unsigned long long)hlen);
    /* Saving again replaces the file. */
    st_writer *w = st_writer_new();
    EXPECT(st_writer_add(w, "x", ST_U8, (int64_t[]){1}, 1, "z") == 0, "%s", err_msg());
    EXPECT(st_writer_save(w, p) == 0, "%s", err_msg());
    st_writer_free(w);
    f = st_open(p);
    EXPECT(f && st_count(f) == 1 && st_meta_count(f) == 0 && st_get(f, "x"), "overwrite");
    st_free(f);
    return 0;
}

static int test_empty_writer(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    st_writer *w = st_writer_new();
    EXPECT(st_writer_save(w, tpath("empty.safetensors")) == 0, "%s", err_msg());
    st_writer_free(w);
    size_t len = 0;
    uint8_t *b = slurp(tpath("empty.safetensors"), &len);
    int ok = len == 16 && memcmp(b + 8, "{}      ", 8) == 0;
    free(b);
    EXPECT(ok, "empty file is 8 + '{}' padded to 8 (len %zu)", len);
    st_file *f = st_open(tpath("empty.safetensors"));
    EXPECT(f && st_count(f) == 0 && st_meta_count(f) == 0, "%s", err_msg());
    st_free(f);
    st_writer_free(NULL);
    st_free(NULL);
    return 0;
}

static int test_read_f32(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    const char *p = tpath("f32.safetensors");
    EXPECT(write_fixture(p) == 0, "write");
    st_file *f = st_open(p);
    EXPECT(f, "%s", err_msg());
    float got[6];
    int rc = 0;
    rc |= st_read_f32(f, "a.f32", got, (int64_t[]){2, 3}, 2) || check_tensor("F32 copy", got, a_f32, 6, 0, 0);
    rc |= st_read_f32(f, "b.f16", got, (int64_t[]){5}, 1) || check_tensor("F16 -> F32", got, b_want, 5, 0, 0);
    rc |= st_read_f32(f, "c.bf16", got, (int64_t[]){2, 2}, 2) ||
          check_tensor("BF16 -> F32", got, c_want, 4, 0, 0);
    rc |= st_read_f32(f, "d.f64", got, (int64_t[]){3}, 1);
    EXPECT(!rc && got[0] == 0.1f && got[1] == -INFINITY && got[2] == 3.0f, "F64 -> F32");
    int64_t i64 = 0;
    EXPECT(st_read(f, "e.i64", ST_I64, &i64, NULL, 0) == 0 && i64 == 7, "%s", err_msg());

    EXPECT(st_read_f32(f, "e.i64", got, NULL, 0) == -1, "I64 as f32");
    EXPECT(contains(err_msg(), "'e.i64' is I64, which cannot be read as F32"), "%s", err_msg());
    EXPECT(st_read_f32(f, "G.model.1.weight", got, (int64_t[]){3, 2, 1, 1}, 4) == -1, "shape");
    EXPECT(strcmp(err_msg(), "") != 0 &&
               contains(err_msg(), "f32.safetensors: tensor 'G.model.1.weight' has shape "
                                   "[2,3,1,1] but the model expects [3,2,1,1]"),
           "%s", err_msg());
    EXPECT(st_read_f32(f, "a.f32", got, (int64_t[]){6}, 1) == -1, "ndim");
    EXPECT(contains(err_msg(), "has shape [2,3] but the model expects [6]"), "%s", err_msg());
    EXPECT(st_read_f32(f, "G.model.2.weight", got, (int64_t[]){3}, 1) == -1, "missing");
    EXPECT(contains(err_msg(), "f32.safetensors: missing tensor 'G.model.2.weight'"), "%s", err_msg());
    EXPECT(st_read(f, "h.i32", ST_I64, got, (int64_t[]){2, 1}, 2) == -1, "dtype");
    EXPECT(contains(err_msg(), "tensor 'h.i32' is I32 but I64 is expected"), "%s", err_msg());
    st_free(f);
    return 0;
}

/* Every half-precision bit pattern against the compiler's conversion. */
static int test_f16_exhaustive(void)
{
#ifdef __FLT16_MAX__
    static uint16_t bits[65536];
    static float got[65536], want[65536];
    for (int i = 0; i < 65536; i++) {
        bits[i] = (uint16_t)i;
        _Float16 h;
        memcpy(&h, &bits[i], 2);
        want[i] = (float)h;
    }
    st_writer *w = st_writer_new();
    EXPECT(setup() == 0 && st_writer_add(w, "h", ST_F16, (int64_t[]){65536}, 1, bits) == 0, "add");
    EXPECT(st_writer_save(w, tpath("f16.safetensors")) == 0, "%s", err_msg());
    st_writer_free(w);
    st_file *f = st_open(tpath("f16.safetensors"));
    EXPECT(f && st_read_f32(f, "h", got, (int64_t[]){65536}, 1) == 0, "%s", err_msg());
    st_free(f);
    int bad = 0;
    for (int i = 0; i < 65536; i++)
        if (memcmp(&got[i], &want[i], 4) != 0 && !(isnan(got[i]) && isnan(want[i]))) {
            if (!bad)
                printf("# f16 0x%04x: got %a want %a\n", i, got[i], want[i]);
            bad++;
        }
    EXPECT(!bad, "%d f16 values differ", bad);
#else
    printf("# no _Float16 in this compiler; skipped\n");
#endif
    return 0;
}

/* The Python reference-style writer and reader; skipped without numpy. */
static const char *py_script(void)
{
    static char p[512];
    const char *dir = getenv("TESTS_DIR");
    snprintf(p, sizeof p, "%s/py/st_write.py", dir ? dir : "tests");
    return p;
}

static int have_python(void)
{
    if (access(py_script(), R_OK) != 0) {
        printf("# %s not found (run from the repository root); skipped\n", py_script());
        return 0;
    }
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("# /usr/bin/python3 with numpy not available; skipped\n");
        return 0;
    }
    return 1;
}

static int test_python_writes_c_reads(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    if (!have_python())
        return 0;
    for (int i = 0; i < 6; i++)
        a_f32[i] = (float)i * 0.25f - 0.5f, w_f32[i] = (float)i;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s write %s", py_script(), tpath("py.safetensors"));
    EXPECT(system(cmd) == 0, "%s failed", cmd);
    st_file *f = st_open(tpath("py.safetensors"));
    EXPECT(f, "%s", err_msg());
    int rc = check_fixture(f);
    st_free(f);
    return rc;
}

static int test_c_writes_python_reads(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    if (!have_python())
        return 0;
    EXPECT(write_fixture(tpath("c.safetensors")) == 0, "write");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s check %s", py_script(), tpath("c.safetensors"));
    fflush(stdout);
    EXPECT(system(cmd) == 0, "%s failed", cmd);
    return 0;
}

static int test_truncated(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    const char *p = tpath("trunc.safetensors");
    EXPECT(write_fixture(p) == 0, "write");
    size_t len = 0;
    uint8_t *b = slurp(p, &len);
    uint64_t hlen;
    memcpy(&hlen, b, 8);
    int bad = 0;
    /* Every proper prefix must be refused with a message. */
    for (size_t n = 0; n < len; n++) {
        st_file *f = st_parse(b, n, "t.safetensors");
        if (f || !contains(err_msg(), "t.safetensors: ")) {
            if (!bad)
                printf("# prefix of %zu bytes: %s\n", n, f ? "accepted" : err_msg());
            bad++;
        }
        st_free(f);
        /* The messages say what is wrong at characteristic points. */
        const char *want = n == 0          ? "empty file"
                           : n < 8         ? "too short for the 8-byte header length"
                           : n < 8 + hlen  ? "runs past the end"
                           : n == 8 + hlen ? "run past the end of the data area (0 bytes"
                                           : NULL;
        if (!f && want && !contains(err_msg(), want)) {
            if (!bad)
                printf("# prefix of %zu bytes: '%s' lacks '%s'\n", n, err_msg(), want);
            bad++;
        }
    }
    /* One byte too many is refused too. */
    uint8_t *more = calloc(1, len + 1);
    memcpy(more, b, len);
    st_file *f = st_parse(more, len + 1, "t.safetensors");
    if (f || !contains(err_msg(), "1 bytes of data after the last tensor"))
        bad++;
    st_free(f);
    free(more);
    free(b);
    EXPECT(!bad, "%d truncated files were not refused properly", bad);
    /* And through st_open: truncate the file on disk. */
    EXPECT(truncate(p, (off_t)(len - 3)) == 0, "truncate");
    f = st_open(p);
    EXPECT(!f && contains(err_msg(), "trunc.safetensors: ") &&
               contains(err_msg(), "run past the end of the data area"),
           "%s", err_msg());
    return 0;
}

static int test_bad_length_and_garbage(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    int rc = 0;
    rc |= expect_bad("{}", (int64_t)1 << 40, 0, "header length 1099511627776 is over the 100 MB");
    rc |= expect_bad("{}", 100000001, 0, "over the 100 MB limit");
    rc |= expect_bad("{}      ", 50, 0, "header length 50 runs past the end of the 16-byte file");
    rc |= expect_bad("hello world", -1, 0, "header does not start with '{'");
    rc |= expect_bad("", 0, 0, "header does not start with '{'");
    rc |= expect_bad("{\"a\":", -1, 0, "header is not valid JSON");
    rc |= expect_bad("{\"a\": {} x", -1, 0, "not valid JSON");
    rc |= expect_bad("{} x", -1, 0, "header has bytes after its JSON object");
    rc |= expect_bad("{}\n", 5, 2, "NUL byte");
    rc |= expect_bad("[1, 2]", -1, 0, "does not start with '{'");

    /* Magic numbers of other formats get a hint. */
    st_file *f = st_parse("PK\3\4rest", 8, "m.pth");
    EXPECT(!f && contains(err_msg(), "m.pth: this is a PyTorch .pth (zip) checkpoint") &&
               contains(err_msg(), "ckpt"),
           "%s", err_msg());
    f = st_parse("\x80\x02\x8a\x0a", 4, "m.pth");
    EXPECT(!f && contains(err_msg(), "legacy PyTorch .pth"), "%s", err_msg());
    f = st_parse("", 0, "e.safetensors");
    EXPECT(!f && contains(err_msg(), "e.safetensors: empty file"), "%s", err_msg());
    /* Files of other kinds are named for what they are before anything else. */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0,   0, 0,
                                  13,   'I', 'H', 'D', 'R',  0,    0,    0,    200, 0, 0,
                                  0,    100, 8,   2,   0,    0,    0,    0,    0,   0, 0};
    f = st_parse(png, sizeof png, "face.png");
    EXPECT(!f && contains(err_msg(), "face.png: not a checkpoint: this is a 200x100 PNG image"), "%s",
           err_msg());
    f = st_parse("\xff\xd8\xff\xe0\0\x10JFIF\0", 12, "face.jpg");
    EXPECT(!f && contains(err_msg(), "face.jpg: not a checkpoint: this is a JPEG image"), "%s", err_msg());
    f = st_parse("lr = 2e-4\nseed = 42\n", 20, "config.txt");
    EXPECT(!f && contains(err_msg(), "config.txt: not a checkpoint: this is text"), "%s", err_msg());
    f = st_parse("\x7f"
                 "ELF\2\1\1\0\0\0\0\0",
                 12, "ls");
    EXPECT(!f && contains(err_msg(), "not a checkpoint: this is an ELF executable"), "%s", err_msg());

    /* Files that cannot be read at all. */
    f = st_open(tpath("does-not-exist.safetensors"));
    EXPECT(!f && contains(err_msg(), "does-not-exist.safetensors: No such file"), "%s", err_msg());
    f = st_open(tmpdir);
    EXPECT(!f && contains(err_msg(), "Is a directory"), "%s", err_msg());
    return rc;
}

static int test_bad_entries(void)
{
    int rc = 0;
    /* Sanity: the hand-written good forms parse. */
    rc |= expect_good("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    rc |= expect_good("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}, "
                      "\"__metadata__\":{}}   \n",
                      8);
    rc |= expect_good("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[0,0]}}",
                      0);
    /* Unaligned data area (header not padded): still readable. */
    rc |= expect_good("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);

    /* Wrong offsets: run past the data, end before begin, size mismatch. */
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 4,
                     "tensor 'a': data_offsets [0, 8] run past the end of the data area (4 bytes; "
                     "file truncated?)");
    rc |= expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}", -1, 4,
                     "tensor 'a': data_offsets [6, 8] run past the end of the data area (4 bytes");
    rc |= expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[3,2]}}", -1, 4,
                     "data_offsets [3, 2] end before they begin");
    rc |= expect_bad("{\"G.model.1.weight\":{\"dtype\":\"F32\",\"shape\":[32,3,7,7],"
                     "\"data_offsets\":[0,12]}}",
                     -1, 18816,
                     "tensor 'G.model.1.weight': data_offsets [0, 12] do not match shape "
                     "[32,3,7,7] of F32 (18816 bytes)");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 12,
                     "data_offsets [0, 8] do not match shape [3] of F32 (12 bytes)");
    /* Tiling: overlap, gap, hole at the start, bytes after the end. */
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                     -1, 12, "tensors 'a' and 'b' overlap");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                     -1, 4, "overlap");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                     -1, 12,
                     "gap of 4 bytes in the data area between tensors 'a' (ends at 4) and 'b' "
                     "(starts at 8)");
    rc |= expect_bad("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8,
                     "4 unused bytes at the start of the data area, before tensor 'b'");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 6,
                     "2 bytes of data after the last tensor 'a' (it ends at 4, the data area is "
                     "6 bytes)");
    rc |= expect_bad("{}", -1, 3, "no tensors, but 3 bytes of data follow the header");
    /* Names, dtypes, shapes. */
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                     -1, 8, "tensor name 'a' appears twice");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
                     "tensor 'a': unknown dtype 'F31'");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", -1, 1,
                     "sub-byte dtype 'F4' is not supported");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4,
                     "tensor 'a': negative dimension -1 in shape");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", -1, 4,
                     "shape entry 0 is not a non-negative integer");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", -1, 4,
                     "shape entry 0 is not a non-negative integer");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", -1, 4,
                     "not a non-negative integer");
    rc |= expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
                     "\"data_offsets\":[0,4]}}",
                     -1, 4, "shape [4294967296,4294967296,4294967296] is too large");
    rc |= expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                     "\"data_offsets\":[0,1]}}",
                     -1, 1, "9 dimensions, at most 8");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", -1, 4,
                     "data_offsets are not non-negative integers");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", -1, 4,
                     "no \"data_offsets\" [begin, end] pair");
    rc |= expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4, "no \"dtype\" string");
    rc |= expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4, "no \"shape\" array");
    rc |= expect_bad("{\"a\":[1]}", -1, 0, "tensor 'a': entry is not an object");
    /* Metadata. */
    rc |= expect_bad("{\"__metadata__\":{\"epoch\":3}}", -1, 0,
                     "__metadata__ value for 'epoch' is not a string");
    rc |= expect_bad("{\"__metadata__\":[]}", -1, 0, "\"__metadata__\" is not an object");
    rc |= expect_bad("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", -1, 0,
                     "__metadata__ key 'k' appears twice");
    rc |= expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", -1, 0, "two \"__metadata__\" entries");
    return rc;
}

/* Mutate header bytes of a good file: each result is accepted or refused
 * with a message, never a crash (the point under ASan/UBSan). */
static int test_mutations_never_crash(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    const char *p = tpath("mut.safetensors");
    EXPECT(write_fixture(p) == 0, "write");
    size_t len = 0;
    uint8_t *b = slurp(p, &len);
    uint64_t hlen;
    memcpy(&hlen, b, 8);
    static const uint8_t vals[] = {0, '"', '{', '}', '[', ']', ',', ':', '-', '9', 'x', 0xff};
    int accepted = 0, silent = 0;
    for (size_t i = 0; i < 8 + hlen; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            uint8_t old = b[i];
            b[i] = vals[v];
            st_file *f = st_parse(b, len, "m");
            if (f) {
                accepted++;
                for (int k = 0; k < st_count(f); k++) { /* touch everything */
                    const st_tensor *t = st_at(f, k);
                    volatile uint8_t s = 0;
                    for (size_t j = 0; j < t->nbytes; j++)
                        s ^= ((const uint8_t *)t->data)[j];
                    (void)s;
                }
            } else if (!contains(err_msg(), "m: ")) {
                silent++;
            }
            st_free(f);
            b[i] = old;
        }
    free(b);
    printf("# %d of %zu mutated headers still valid\n", accepted, (size_t)(8 + hlen) * sizeof vals);
    EXPECT(!silent, "%d refusals without a message", silent);
    return 0;
}

static int test_writer_errors(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    st_writer *w = st_writer_new();
    float x[2] = {1, 2};
    EXPECT(st_writer_add(w, "x", ST_F32, (int64_t[]){2}, 1, x) == 0, "%s", err_msg());
    EXPECT(st_writer_add(w, "x", ST_F32, (int64_t[]){2}, 1, x) == -1, "dup");
    EXPECT(contains(err_msg(), "tensor 'x' added twice"), "%s", err_msg());
    EXPECT(st_writer_add(w, "__metadata__", ST_F32, (int64_t[]){2}, 1, x) == -1, "reserved");
    EXPECT(contains(err_msg(), "'__metadata__' cannot be a tensor name"), "%s", err_msg());
    EXPECT(st_writer_add(w, "y", ST_F32, (int64_t[]){-2}, 1, x) == -1, "negative");
    EXPECT(contains(err_msg(), "tensor 'y': dimension 0 is -2"), "%s", err_msg());
    EXPECT(st_writer_add(w, "y", ST_F32, (int64_t[9]){1}, 9, x) == -1, "ndim");
    EXPECT(contains(err_msg(), "9 dimensions"), "%s", err_msg());
    EXPECT(st_writer_add(w, "y", ST_F32, (int64_t[]){2}, 1, NULL) == -1, "null data");
    EXPECT(st_writer_add(w, "y", ST_DTYPE_COUNT, (int64_t[]){2}, 1, x) == -1, "dtype");
    /* Names needing JSON escapes survive. */
    EXPECT(st_writer_add(w, "we\"ird\\name\x01", ST_F32, (int64_t[]){1}, 1, x) == 0, "escape");

    /* A directory that does not exist: error, nothing created. */
    EXPECT(st_writer_save(w, tpath("no/such/dir.safetensors")) == -1, "bad dir");
    EXPECT(contains(err_msg(), "cannot create a temporary file") && contains(err_msg(), "No such file"), "%s",
           err_msg());

    /* Saved once, then a save that fails mid-write (file size limit) must
     * leave the old file intact and no temporary behind. */
    const char *p = tpath("keep.safetensors");
    EXPECT(st_writer_save(w, p) == 0, "%s", err_msg());
    st_file *f = st_open(p);
    EXPECT(f && st_get(f, "we\"ird\\name\x01") && st_count(f) == 2, "escaped name: %s", err_msg());
    st_free(f);
    static float big[1 << 16];
    st_writer *w2 = st_writer_new();
    EXPECT(st_writer_add(w2, "big", ST_F32, (int64_t[]){1 << 16}, 1, big) == 0, "add");
    struct rlimit old, lim;
    EXPECT(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    EXPECT(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    int rc = st_writer_save(w2, p);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    st_writer_free(w2);
    EXPECT(rc == -1 && contains(err_msg(), "keep.safetensors failed: File too large"), "%s", err_msg());
    EXPECT(count_temps() == 0, "temporary file left after a failed save");
    f = st_open(p);
    EXPECT(f && st_count(f) == 2, "old file damaged: %s", err_msg());
    st_free(f);
    st_writer_free(w);
    return 0;
}

static int test_dtype_table(void)
{
    EXPECT(strcmp(st_dtype_name(ST_BF16), "BF16") == 0 && st_dtype_size(ST_BF16) == 2, "bf16");
    EXPECT(st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_BOOL) == 1, "sizes");
    EXPECT(strcmp(st_dtype_name(ST_DTYPE_COUNT), "?") == 0 && !st_dtype_size(ST_DTYPE_COUNT), "invalid");
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        EXPECT(st_dtype_size((st_dtype)d) && strcmp(st_dtype_name((st_dtype)d), "?"), "%d", d);
    return 0;
}

static int test_zz_cleanup(void)
{
    cleanup();
    return 0;
}

CHECK_MAIN(T(test_dtype_table), T(test_roundtrip), T(test_empty_writer), T(test_read_f32),
           T(test_f16_exhaustive), T(test_python_writes_c_reads), T(test_c_writes_python_reads),
           T(test_truncated), T(test_bad_length_and_garbage), T(test_bad_entries),
           T(test_mutations_never_crash), T(test_writer_errors), T(test_zz_cleanup))
