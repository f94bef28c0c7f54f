/*
 * translate: run generator G (young -> old) or F (old -> young) on a face
 * image (at the image's resolution, lib/face/paste.h; --raw: the generator's
 * own image), on a stream of records, or on a few records to make a sample
 * grid; with --face, on every face of a whole photo (lib/face/face.h: found with
 * dlib, aligned like a UTKFace crop, translated, blended back).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "tool/cli.h"
#include "tool/device.h"
#include "base/err.h"
#include "face/face.h"
#include "base/fileio.h"
#include "image/grid.h"
#include "image/image.h"
#include "nn/infer.h"
#include "tool/models.h"
#include "face/paste-file.h"
#include "face/paste.h"
#include "image/photo.h"
#include "tool/progress.h"
#include "stream/record-image.h"
#include "stream/stream.h"
#include "image/transform.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: translate (--y2o | --o2y) [options] [FACE]\n"
               "       translate (--y2o | --o2y) [options] -o FOLDER FACE...\n"
               "       translate --y2o --o2y -o GRID.png FACE...\n"
               "       translate (--y2o | --o2y) --face [-i PHOTO | PHOTO] [-o OUT.jpg|png]\n"
               "       translate (--y2o | --o2y) --face-crop -o GRID.png PHOTO...\n"
               "Age (--y2o, generator G) or de-age (--o2y, generator F) faces.  A FACE (a\n"
               "centred face; not square: its central square) comes back at its own size and\n"
               "format: the picture plus the generator's change over the framed region, feathered\n"
               "out to the borders.  -o FOLDER: each FACE into FOLDER as NAME_young2old.EXT\n"
               "(or _old2young).  Several FACE files (or --grid) make one grid at the model's\n"
               "size: the faces on top, each direction's results in a row below.\n\n"
               "  --ckpt FILE      checkpoint (default: outputs/checkpoints/best.safetensors when it\n"
               "                   exists, else the shipped model, models/" MODELS_SHIPPED ")\n"
               "  -i FILE          input image, PNG or JPEG (default stdin; or FACE)\n"
               "  -o FILE          output (default stdout): .png PNG, .jpg/.jpeg JPEG; no\n"
               "                   extension, a pipe or stdout: the input's format\n"
               "  --size N         image size (default: the model's training size); faces are\n"
               "                   resized to N*306/256 and centre-cropped to N, as in training\n"
               "  --strength S     scale the change, 0 (the input, exactly) to 2 (default 1;\n"
               "                   above 1 halos and artefacts grow with it)\n"
               "  --raw            the generator's own N x N image instead (the reference's)\n"
               "  --stream         tensor or image records in, tensor records out\n"
               "  --grid N         read records (or FACE files), write one grid of N inputs over their\n"
               "                   raw outputs, at the model's size (the rest of the input is dropped)\n"
               "  --all            stream/grid: translate every record, not only the source domain\n"
               "  --only           stream: drop the records it does not translate (default: pass them on)\n"
               "  --dtype T        stream output dtype f32|f16|bf16|u8 (default: the input's)\n"
               "  --in EP, --out EP  stream endpoints (default -)\n"
               "  --face           find the faces of any photo (dlib), align each like a UTKFace crop,\n"
               "                   translate it and blend it back: the same photo (size, format, EXIF\n"
               "                   orientation applied) with the faces changed\n"
               "  --face-crop      as --face, but write each face's aligned 200x200 crop beside its\n"
               "                   result, one row per face of each PHOTO\n"
               "  --landmarks      as --face, but draw each detection (blue), aligned frame (green)\n"
               "                   and 68 landmarks (red) instead of translating\n"
               "  --max-faces N    the N largest faces (default all, however many: a crowd of 100\n"
               "                   has all 100 changed); the others are counted on stderr\n"
               "  --no-face ok|fail  a photo without a face: pass it through, or exit 1 (default)\n"
               "  --device D       cpu, cuda, cuda:N or auto (default: $AGING_DEVICE, else auto)\n"
               "  --precision P    fp32, bf16 or fp16 convolutions (bf16 on the CPU's bf16 units\n"
               "                   when it has them), or auto: bf16 on a GPU, fp32 on the CPU\n"
               "                   (default fp32)\n"
               "  --help, --version\n");
    exit(status);
}

struct tr {
    infer *g[2]; /* the generators, ng of them: G or F, or G and F (a grid of both) */
    int ng;
    int size, resize, all, only, has_dtype;
    int fmt;     /* PHOTO_*: the output's format */
    paste_job J; /* a single picture's way */
    dtype dt;
    const char *src, *dst, *net; /* source/target domain, "G" or "F" */
};

/* The image of r as a float CHW tensor in *x (malloc'd), or 0 = skip. */
static int record_input(struct tr *T, const record *r, float **x, int *h, int *w, dtype *in_dt)
{
    const char *kind = record_kind(r), *dom = record_get_str(r, "domain");
    bool is_img = strcmp(kind, "image") == 0, is_tensor = strcmp(kind, "tensor") == 0;
    if ((!is_img && !is_tensor) || (!T->all && dom && strcmp(dom, T->src) != 0))
        return 0;
    if (is_img) {
        image im = {0};
        if (record_decode_image(r, &im) != 0 || transform_eval(&im, T->size, T->resize) != 0) {
            image_free(&im);
            return -1;
        }
        *h = im.h;
        *w = im.w;
        *x = malloc((size_t)3 * im.h * im.w * sizeof **x);
        image_to_chw_f32(*x, &im);
        image_free(&im);
        *in_dt = DTYPE_F32;
        return 1;
    }
    tensor_view v;
    if (record_tensor_view(r, &v) != 0)
        return -1;
    if (v.c != 3)
        return err_set("the generator takes 3-channel images, got %lld channels", (long long)v.c);
    *h = (int)v.h;
    *w = (int)v.w;
    *x = malloc((size_t)3 * v.h * v.w * sizeof **x);
    tensor_view_to_f32(&v, *x);
    *in_dt = v.dt;
    return 1;
}

__attribute__((__noreturn__)) static void die_record(const stream_in *si, const record *r)
{
    const char *id = record_get_str(r, "id");
    die("record %ld%s%s: %s", stream_in_count(si), id ? " " : "", id ? id : "", err_msg());
}

/* The live line of --stream and --grid: faces done of those announced by
 * utk-split's records (total 0: unknown), the rate and the ETA. */
static void show_count(progress *p, const char *what, long done, long total, double t0)
{
    if (!p || !done)
        return;
    double rate = done / (progress_now() - t0);
    char eta[16];
    if (total >= done)
        progress_line(p, "translate: %s %ld/%ld faces, %.1f/s, ETA %s", what, done, total, rate,
                      progress_eta(eta, sizeof eta, (total - done) / rate));
    else
        progress_line(p, "translate: %s %ld faces, %.1f/s", what, done, rate);
}

static int run_stream(struct tr *T, const char *in, const char *out)
{
    stream_in *si = stream_in_open(in);
    stream_out *so = si ? stream_out_open(out) : NULL;
    if (!so)
        die("%s", err_msg());
    record r;
    record_init(&r);
    int rc;
    long done = 0, total = 0;
    progress *prog = progress_new(stderr);
    double t0 = progress_now();
    while ((rc = stream_in_next(si, &r)) == 1) {
        float *x = NULL;
        int h = 0, w = 0;
        dtype in_dt = DTYPE_F32;
        total += record_pairs_ahead(&r) * (T->all ? 2 : 1);
        int got = record_input(T, &r, &x, &h, &w, &in_dt);
        if (got)
            show_count(prog, "translating", ++done, total, t0);
        if (got < 0 || (got && infer_run(T->g[0], x, x, h, w) != 0)) {
            stream_out_close(so, false, 1);
            die_record(si, &r);
        }
        if (got) {
            record_set_tensor_f32(&r, x, 3, h, w, T->has_dtype ? T->dt : in_dt);
            record_remove(&r, "bytes");
            record_remove(&r, "encoding");
            record_set_str(&r, "domain", T->dst);
            record_set_str(&r, "generator", T->net);
            record_set_bool(&r, "generated", true);
            free(x);
        }
        if ((got || !T->only) && stream_out_put(so, &r) != 0) {
            stream_out_close(so, false, 1);
            die("%s", err_msg());
        }
    }
    progress_free(prog);
    if (rc < 0) {
        stream_out_close(so, false, 1);
        die("%s", err_msg());
    }
    record_clear(&r);
    stream_in_free(si);
    if (stream_out_close(so, true, 1) != 0)
        die("%s", err_msg());
    return 0;
}

/* Add input x [3,h,w] as column g->used of the grid (lib/image/grid.h), its
 * translations in the rows below; what names the input in messages. */
static void grid_add(struct tr *T, grid *g, const float *x, int h, int w, const char *what)
{
    int col = g->used;
    if (grid_put(g, col, 0, x, h, w) != 0)
        die("%s: %s", what, err_msg());
    float *y = malloc((size_t)3 * h * w * sizeof *y);
    if (!y)
        die("out of memory");
    for (int j = 0; j < T->ng; j++)
        if (infer_run(T->g[j], x, y, h, w) != 0 || grid_put(g, col, j + 1, y, h, w) != 0)
            die("%s: %s", what, err_msg());
    free(y);
}

/* PNG unless -o says JPEG. */
static void grid_write(struct tr *T, grid *g, const char *outpath)
{
    uint8_t *enc;
    size_t len;
    if (grid_encode(g, T->fmt == PHOTO_JPEG, &enc, &len) != 0 || file_write_all(outpath, enc, len) != 0)
        die("%s", err_msg());
    free(enc);
    grid_free(g);
}

static int run_grid(struct tr *T, int n, const char *in, const char *outpath)
{
    stream_in *si = stream_in_open(in);
    if (!si)
        die("%s", err_msg());
    grid g;
    grid_init(&g, n, 1 + T->ng);
    int rc = 0;
    record r;
    record_init(&r);
    progress *prog = progress_new(stderr);
    double t0 = progress_now();
    while (g.used < n && (rc = stream_in_next(si, &r)) == 1) {
        float *x = NULL;
        int h = 0, w = 0;
        dtype in_dt = DTYPE_F32;
        int got = record_input(T, &r, &x, &h, &w, &in_dt);
        if (got < 0)
            die_record(si, &r);
        if (!got)
            continue;
        char what[32];
        snprintf(what, sizeof what, "record %ld", stream_in_count(si));
        grid_add(T, &g, x, h, w, what);
        show_count(prog, "grid", g.used, n, t0);
        free(x);
    }
    progress_free(prog);
    /* Drain the rest: the producers upstream (aug, utk-split) should end
     * normally, not by SIGPIPE, and a broken stream is still reported. */
    while (rc == 1 && g.used == n && (rc = stream_in_next(si, &r)) == 1)
        ;
    if (rc < 0)
        die("%s", err_msg());
    if (g.used == 0)
        die("no %simages in the input to make a grid of", T->all ? "" : T->dst[0] == 'o' ? "young " : "old ");
    grid_write(T, &g, outpath);
    record_clear(&r);
    stream_in_free(si);
    return 0;
}

/* A face image file as the generator's input (malloc'd [3,size,size]). */
static float *load_face(struct tr *T, const char *path)
{
    uint8_t *bytes;
    size_t n;
    photo p;
    float *x = malloc((size_t)3 * T->size * T->size * sizeof *x);
    if (!x || file_read_all(path, PASTE_FILE_MAX_BYTES, &bytes, &n) != 0)
        die("%s", x ? err_msg() : "out of memory");
    if (photo_decode(&p, bytes, n, FACE_MAX_PIXELS) != 0 ||
        paste_frame_input(x, NULL, &p.im, T->size, T->resize))
        die("%s: %s", strcmp(path, "-") ? path : "stdin", err_msg());
    free(bytes);
    photo_free(&p);
    return x;
}

static int run_grid_files(struct tr *T, char **files, int nfiles, const char *outpath)
{
    grid g;
    grid_init(&g, nfiles, 1 + T->ng);
    for (int i = 0; i < nfiles; i++) {
        float *x = load_face(T, files[i]);
        grid_add(T, &g, x, T->size, T->size, files[i]);
        free(x);
    }
    grid_write(T, &g, outpath);
    return 0;
}

static int run_image(struct tr *T, const char *in, const char *out)
{
    uint8_t *bytes;
    size_t n;
    int rc = 0;
    if (file_read_all(in, PASTE_FILE_MAX_BYTES, &bytes, &n) != 0 ||
        (rc = paste_file_write(&T->J, bytes, n, out, T->fmt)) < 0)
        die("%s", err_msg());
    if (rc == PASTE_FILE_SKIPPED)
        die("%s: %s", strcmp(in, "-") ? in : "stdin", err_msg());
    free(bytes);
    return 0;
}

/* -o FOLDER FILE...: each as FOLDER/NAME_young2old.EXT in its own format
 * (lib/face/paste-file.h); a file that is not a picture is skipped and counted. */
static int run_folder(struct tr *T, char **files, int nfiles, const char *dir)
{
    int skipped = 0;
    for (int i = 0; i < nfiles; i++) {
        char out[2 * PATH_MAX];
        int rc = paste_file_to_dir(&T->J, files[i], dir, T->src[0] == 'y' ? "young2old" : "old2young", out,
                                   sizeof out);
        if (rc < 0)
            die("%s", err_msg());
        if (rc == PASTE_FILE_DONE) {
            fprintf(stderr, "translate: %d/%d: %s -> %s\n", i + 1, nfiles, files[i], out);
        } else {
            fprintf(stderr, "translate: %d/%d: %s: skipped: %s\n", i + 1, nfiles, files[i], err_msg());
            skipped++;
        }
    }
    if (skipped)
        die("%d of %d files skipped: not pictures (PNG or JPEG) it could read", skipped, nfiles);
    return 0;
}

/* --face, --face-crop, --landmarks */
enum { FACE_OFF, FACE_PHOTO, FACE_CROP, FACE_LANDMARKS };
struct face_opts {
    int mode, max, no_face_ok;
    face_finder *ff;
};

/* The generator for face_apply and paste_photo.  AGING_FACE_TEST_GENERATOR=identity is a
 * test hook: an "identity generator" shows what the warps and the blending
 * alone do to a photo (tests/face.bats). */
static int face_gen(void *ctx, const float *x, float *y, int size)
{
    struct tr *T = ctx;
    const char *hook = getenv("AGING_FACE_TEST_GENERATOR");
    if (hook && strcmp(hook, "identity") == 0) {
        memcpy(y, x, (size_t)3 * size * size * sizeof *y);
        return 0;
    }
    return infer_run(T->g[0], x, y, size, size);
}

/* A photo's bytes and decoded pixels, and its faces (largest first, at
 * most F->max); 0 faces is left to the caller. */
struct shot {
    const char *name;
    uint8_t *bytes;
    size_t n;
    photo p;
    face *faces;
    int nf;
};

static void shot_load(struct face_opts *F, struct shot *S, const char *path)
{
    S->name = strcmp(path, "-") ? path : "stdin";
    if (file_read_all(path, PASTE_FILE_MAX_BYTES, &S->bytes, &S->n) != 0)
        die("%s", err_msg());
    if (photo_decode(&S->p, S->bytes, S->n, FACE_MAX_PIXELS) != 0)
        die("%s: %s", S->name, err_msg());
    if ((S->nf = face_find(F->ff, &S->p.im, INT_MAX, &S->faces)) < 0)
        die("%s: %s", S->name, err_msg());
    /* Every face is changed unless --max-faces says fewer; then say so. */
    if (S->nf > F->max) {
        fprintf(stderr, "translate: %s: %d faces found, the %d largest changed (--max-faces %d)\n", S->name,
                S->nf, F->max, F->max);
        S->nf = F->max;
    }
    for (int i = 0; i < S->nf; i++) {
        const face *f = &S->faces[i];
        fprintf(stderr, "translate: %s: face %d of %d: %.0f px wide at (%.0f, %.0f)%s%s\n", S->name, i + 1,
                S->nf, f->scale * FACE_FRAME, f->A[0] * 100 + f->A[1] * 100 + f->A[2],
                f->A[3] * 100 + f->A[4] * 100 + f->A[5], f->angle ? ", found in a rotated copy" : "",
                f->upsample > 1 ? ", found upsampled" : "");
    }
    if (S->nf == 0 && !F->no_face_ok)
        die("no face found in %s", S->name);
}

static void shot_free(struct shot *S)
{
    free(S->bytes);
    photo_free(&S->p);
    free(S->faces);
}

/* The aligned FACE_FRAME crops (RGB) of every face, from the untouched
 * photo. */
static image *shot_crops(struct shot *S)
{
    image *crops = calloc((size_t)S->nf + 1, sizeof *crops);
    if (!crops)
        die("out of memory");
    for (int i = 0; i < S->nf; i++) {
        if (face_warp(&crops[i], &S->p.im, S->faces[i].A, FACE_FRAME, FACE_FRAME) != 0)
            die("%s: %s", S->name, err_msg());
        image_drop_alpha(&crops[i]);
    }
    return crops;
}

static void write_photo(const photo *p, bool jpeg, const char *out)
{
    uint8_t *enc;
    size_t len;
    if (photo_encode(p, jpeg, &enc, &len) != 0 || file_write_all(out, enc, len) != 0)
        die("%s", err_msg());
    free(enc);
}

/* --face and --landmarks: one photo in, the same photo out. */
static int run_face(struct tr *T, struct face_opts *F, const char *in, const char *out)
{
    struct shot S = {0};
    shot_load(F, &S, in);
    bool jpeg = photo_out_jpeg(T->fmt, S.p.jpeg);
    if (S.nf == 0 || (F->mode == FACE_PHOTO && T->J.strength == 0)) {
        if (S.nf == 0)
            fprintf(stderr, "translate: no face found in %s; passed through\n", S.name);
        if (jpeg == S.p.jpeg) {
            if (file_write_all(out, S.bytes, S.n) != 0)
                die("%s", err_msg());
        } else {
            write_photo(&S.p, jpeg, out);
        }
        shot_free(&S);
        return 0;
    }
    if (F->mode == FACE_LANDMARKS) {
        for (int i = 0; i < S.nf; i++)
            face_draw(&S.p.im, &S.faces[i]);
    } else {
        if (face_apply(&S.p.im, S.faces, S.nf, T->size, T->resize, face_gen, T, T->J.strength) != 0)
            die("%s: %s", S.name, err_msg());
    }
    write_photo(&S.p, jpeg, out);
    shot_free(&S);
    return 0;
}

/* --face-crop: for every face of every photo, a row of its aligned crop
 * and the crop's result (FACE_FRAME square each); a photo without a face
 * (with --no-face ok) gets a black row. */
static int run_face_crops(struct tr *T, struct face_opts *F, char **paths, int npaths, const char *out)
{
    image g = {.w = 2 * FACE_FRAME, .h = 0, .c = 3};
    size_t row = (size_t)g.w * FACE_FRAME * 3;
    face aligned = {.A = {1, 0, 0, 0, 1, 0}}; /* a crop is its own frame */
    bool grey = true;
    for (int k = 0; k < npaths; k++) {
        struct shot S = {0};
        shot_load(F, &S, paths[k]);
        grey &= S.p.grey;
        int rows = S.nf ? S.nf : 1, top = g.h;
        uint8_t *px = realloc(g.px, (size_t)(g.h / FACE_FRAME + rows) * row);
        if (!px)
            die("out of memory");
        g.px = px;
        g.h += rows * FACE_FRAME;
        if (!S.nf) {
            fprintf(stderr, "translate: no face found in %s; a black row\n", S.name);
            memset(g.px + (size_t)top * g.w * 3, 0, row);
        }
        image *crops = shot_crops(&S);
        for (int i = 0; i < S.nf; i++) {
            /* the crop, and beside it its result (translated in place) */
            int y = top + i * FACE_FRAME;
            if (image_blit(&g, &crops[i], 0, y) != 0 ||
                face_apply(&crops[i], &aligned, 1, T->size, T->resize, face_gen, T, T->J.strength) != 0 ||
                image_blit(&g, &crops[i], FACE_FRAME, y) != 0)
                die("%s: %s", S.name, err_msg());
            image_free(&crops[i]);
        }
        free(crops);
        shot_free(&S);
    }
    photo res = {.im = g, .grey = grey};
    write_photo(&res, T->fmt == PHOTO_JPEG, out);
    image_free(&g);
    return 0;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_Y2O = 256,
        O_O2Y,
        O_CKPT,
        O_SIZE,
        O_STREAM,
        O_GRID,
        O_ALL,
        O_ONLY,
        O_DTYPE,
        O_IN,
        O_OUT,
        O_DEVICE,
        O_PRECISION,
        O_FACE,
        O_FACE_CROP,
        O_LANDMARKS,
        O_MAX_FACES,
        O_NO_FACE,
        O_RAW,
        O_STRENGTH,
        O_VERSION
    };
    static const struct option opts[] = {{"y2o", 0, 0, O_Y2O},
                                         {"o2y", 0, 0, O_O2Y},
                                         {"ckpt", 1, 0, O_CKPT},
                                         {"size", 1, 0, O_SIZE},
                                         {"stream", 0, 0, O_STREAM},
                                         {"grid", 1, 0, O_GRID},
                                         {"all", 0, 0, O_ALL},
                                         {"only", 0, 0, O_ONLY},
                                         {"dtype", 1, 0, O_DTYPE},
                                         {"in", 1, 0, O_IN},
                                         {"out", 1, 0, O_OUT},
                                         {"device", 1, 0, O_DEVICE},
                                         {"precision", 1, 0, O_PRECISION},
                                         {"face", 0, 0, O_FACE},
                                         {"face-crop", 0, 0, O_FACE_CROP},
                                         {"landmarks", 0, 0, O_LANDMARKS},
                                         {"max-faces", 1, 0, O_MAX_FACES},
                                         {"no-face", 1, 0, O_NO_FACE},
                                         {"raw", 0, 0, O_RAW},
                                         {"strength", 1, 0, O_STRENGTH},
                                         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    struct tr T = {.J.strength = 1, .J.max_pixels = FACE_MAX_PIXELS};
    struct face_opts F = {.max = 1 << 20};
    const char *ckpt = NULL, *in = "-", *out = "-", *device = NULL;
    int stream = 0, grid = 0, y2o = 0, o2y = 0, c;
    enum backend_precision precision = BACKEND_FP32;
    int precision_auto = 0;
    while ((c = getopt_long(argc, argv, "hi:o:", opts, NULL)) != -1) {
        switch (c) {
        case O_Y2O: y2o = 1; break;
        case O_O2Y: o2y = 1; break;
        case O_CKPT: ckpt = optarg; break;
        case O_SIZE: T.size = (int)cli_int("--size", optarg, 8, 4096); break;
        case O_STREAM: stream = 1; break;
        case O_GRID: grid = (int)cli_int("--grid", optarg, 1, 256); break;
        case O_ALL: T.all = 1; break;
        case O_ONLY: T.only = 1; break;
        case O_DTYPE:
            if (dtype_parse(optarg, &T.dt) != 0)
                cli_usage_error("--dtype: expected f32, f16, bf16 or u8, got '%s'", optarg);
            T.has_dtype = 1;
            break;
        case 'i':
        case O_IN: in = optarg; break;
        case 'o':
        case O_OUT: out = optarg; break;
        case O_DEVICE:
            if (!device_known(optarg))
                cli_usage_error("--device: expected cpu, cuda, cuda:N or auto, got '%s'", optarg);
            device = optarg;
            break;
        case O_PRECISION:
            if (device_precision_arg(optarg, &precision, &precision_auto) != 0)
                cli_usage_error("--precision: expected fp32, bf16 or fp16 (or auto), got '%s'", optarg);
            break;
        case O_FACE: F.mode = F.mode ? F.mode : FACE_PHOTO; break;
        case O_FACE_CROP: F.mode = FACE_CROP; break;
        case O_LANDMARKS: F.mode = FACE_LANDMARKS; break;
        case O_MAX_FACES: F.max = (int)cli_int("--max-faces", optarg, 1, 1000); break;
        case O_NO_FACE:
            if (strcmp(optarg, "ok") != 0 && strcmp(optarg, "fail") != 0)
                cli_usage_error("--no-face: expected ok or fail, got '%s'", optarg);
            F.no_face_ok = strcmp(optarg, "ok") == 0;
            break;
        case O_RAW: T.J.raw = 1; break;
        case O_STRENGTH: T.J.strength = (float)cli_double("--strength", optarg, 0, PASTE_MAX_STRENGTH); break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (!y2o && !o2y)
        cli_usage_error("choose --y2o (young to old) or --o2y (old to young)");
    char **files = argv + optind;
    int nfiles = argc - optind;
    struct stat st;
    int folder = strcmp(out, "-") != 0 && stat(out, &st) == 0 && S_ISDIR(st.st_mode);
    if (folder && (!nfiles || stream || grid || F.mode || (y2o && o2y) || strcmp(in, "-") != 0))
        cli_usage_error("-o %s is a folder: give FACE files, one direction, no --grid, --stream or --face",
                        out);
    if (!stream && !folder && (T.fmt = photo_out_format(out)) < 0)
        cli_usage_error("%s", err_msg());
    if (F.mode == FACE_CROP && nfiles >= 1) {
        if (stream || grid || strcmp(in, "-") != 0)
            cli_usage_error("--face-crop with PHOTO files: no --stream, --grid or -i");
    } else if (!folder && (nfiles > 1 || (nfiles == 1 && (grid || (y2o && o2y))))) {
        if (stream || strcmp(in, "-") != 0)
            cli_usage_error("image files as arguments make a grid: no --stream or -i with them");
        if (grid && grid < nfiles)
            nfiles = grid;
        grid = nfiles;
    } else if (!folder && nfiles == 1) {
        if (strcmp(in, "-") != 0)
            cli_usage_error("two inputs: -i %s and %s", in, files[0]);
        in = files[0];
        files = NULL, nfiles = 0;
    }
    if (F.mode && (stream || grid || (y2o && o2y)))
        cli_usage_error("--face, --face-crop and --landmarks take one photo: no --stream, --grid, FACE files "
                        "or both directions");
    if (y2o && o2y && !grid)
        cli_usage_error("--y2o and --o2y together make a grid of both: give --grid N or FACE files");
    if (stream && grid)
        cli_usage_error("--stream and --grid do not go together");
    if (T.J.strength != 1 && (stream || grid || T.J.raw || F.mode == FACE_LANDMARKS))
        cli_usage_error(
            "--strength scales the change in a full-size result: not with --raw, --stream, --grid "
            "or --landmarks");
    if (T.J.raw && F.mode)
        cli_usage_error("--raw is the generator's own image of a face crop: not with --face");
    if (!stream && strcmp(out, "-") == 0 && isatty(1))
        cli_usage_error("refusing to write an image to a terminal: use -o FILE or redirect stdout");
    T.src = y2o ? "young" : "old";
    T.dst = y2o ? "old" : "young";
    T.net = y2o ? "G" : "F";
    T.all |= y2o && o2y; /* both generators: every face is an input */

    if (T.size % 4)
        cli_usage_error("--size must be a multiple of 4, got %d", T.size);
    /* dlib first: without it --face stops before the model is loaded */
    if (F.mode && !(F.ff = face_finder_open()))
        die("--face: %s", err_msg());
    if (F.mode == FACE_LANDMARKS) {
        run_face(&T, &F, in, out);
        face_finder_free(F.ff);
        err_close_stdout();
        return 0;
    }
    char found[PATH_MAX];
    const char *what = NULL;
    if (!ckpt && !(ckpt = models_default(found, sizeof found, &what)))
        die("%s", err_msg());
    backend_t be = device_open_precision(device, precision);
    if (!be)
        die("%s", err_msg());
    if (precision_auto)
        backend_set_precision(be, device_inference_precision(be));
    if (y2o && !(T.g[T.ng++] = infer_open(ckpt, "G.", be)))
        die("%s", err_msg());
    if (o2y && !(T.g[T.ng++] = infer_open(ckpt, "F.", be)))
        die("%s", err_msg());
    int asked = T.size, trained, trained_resize;
    infer_framing(T.g[0], &trained, &trained_resize);
    if (models_framing(T.g[0], asked, &T.size, &T.resize))
        fprintf(stderr, "translate: note: running at --size %d; the model was trained at %d px\n", asked,
                trained);
    if (what)
        fprintf(stderr, "translate: using %s, %s (%d px)\n", what, ckpt, T.size);
    if (T.size % 4)
        die("%s: the model's training size %d is not a multiple of 4: give --size", ckpt, T.size);
    T.J = (paste_job){.size = T.size,
                      .resize = T.resize,
                      .gen = face_gen,
                      .ctx = &T,
                      .strength = T.J.strength,
                      .raw = T.J.raw,
                      .max_pixels = T.J.max_pixels};
    if (folder)
        run_folder(&T, files, nfiles, out);
    else if (F.mode == FACE_CROP)
        run_face_crops(&T, &F, nfiles ? files : (char *[]){(char *)in}, nfiles ? nfiles : 1, out);
    else if (F.mode)
        run_face(&T, &F, in, out);
    else if (stream)
        run_stream(&T, in, out);
    else if (files && nfiles)
        run_grid_files(&T, files, nfiles, out);
    else if (grid)
        run_grid(&T, grid, in, out);
    else
        run_image(&T, in, out);
    for (int j = 0; j < T.ng; j++)
        infer_free(T.g[j]);
    backend_free(be);
    face_finder_free(F.ff);
    err_close_stdout();
    return 0;
}
