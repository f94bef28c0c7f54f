/*
 * translate: run generator G (young -> old) or F (old -> young) on a face
 * image, on a stream of records, or on a few records to make a sample grid.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "device.h"
#include "err.h"
#include "fileio.h"
#include "image.h"
#include "infer.h"
#include "models.h"
#include "record-image.h"
#include "stream.h"
#include "transform.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: translate (--y2o | --o2y) [options]\n"
               "Age (--y2o, generator G) or de-age (--o2y, generator F) faces.\n\n"
               "  --ckpt FILE      checkpoint (default: outputs/checkpoints/best.safetensors when it\n"
               "                   exists, else the shipped model, models/" MODELS_SHIPPED ")\n"
               "  -i FILE          input image, PNG or JPEG (default stdin)\n"
               "  -o FILE          output PNG (default stdout)\n"
               "  --size N         image size (default: the model's training size); faces are\n"
               "                   resized to N*306/256 and centre-cropped to N, as in training\n"
               "  --stream         tensor or image records in, tensor records out\n"
               "  --grid N         read records, write one PNG: N inputs over their outputs\n"
               "                   (the rest of the input is read and dropped)\n"
               "  --all            stream/grid: translate every record, not only the source domain\n"
               "  --only           stream: drop the records it does not translate (default: pass them on)\n"
               "  --dtype T        stream output dtype f32|f16|bf16|u8 (default: the input's)\n"
               "  --in EP, --out EP  stream endpoints (default -)\n"
               "  --device D       cpu, cuda, cuda:N or auto (default: $AGING_DEVICE, else auto)\n"
               "  --precision P    fp32, bf16 or fp16 convolutions (default fp32)\n"
               "  --help, --version\n");
    exit(status);
}

struct tr {
    infer *g;
    int size, resize, all, only, has_dtype;
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

static int run_stream(struct tr *T, const char *in, const char *out)
{
    stream_in *si = stream_in_open(in);
    stream_out *so = si ? stream_out_open(out) : NULL;
    if (!so)
        die("%s", err_msg());
    record r;
    record_init(&r);
    int rc;
    while ((rc = stream_in_next(si, &r)) == 1) {
        float *x = NULL;
        int h = 0, w = 0;
        dtype in_dt = DTYPE_F32;
        int got = record_input(T, &r, &x, &h, &w, &in_dt);
        if (got < 0 || (got && infer_run(T->g, x, x, h, w) != 0)) {
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

/* Copy a CHW float tile into the grid image at (x0, y0). */
static void paste(image *grid, const float *chw, int h, int w, int x0, int y0)
{
    image tile = {0};
    if (image_from_chw_f32(&tile, chw, 3, h, w) != 0)
        die("%s", err_msg());
    for (int y = 0; y < h; y++)
        memcpy(grid->px + ((size_t)(y0 + y) * grid->w + x0) * 3, tile.px + (size_t)y * w * 3, (size_t)w * 3);
    image_free(&tile);
}

/* Inputs on the top row, outputs below, 2-pixel black borders (make_grid).
 * The tile size is the first translated record's. */
static int run_grid(struct tr *T, int n, const char *in, const char *outpath)
{
    stream_in *si = stream_in_open(in);
    if (!si)
        die("%s", err_msg());
    const int pad = 2;
    int s = 0, k = 0, rc = 0;
    image grid = {0};
    float *y = NULL;
    record r;
    record_init(&r);
    while (k < n && (rc = stream_in_next(si, &r)) == 1) {
        float *x = NULL;
        int h = 0, w = 0;
        dtype in_dt = DTYPE_F32;
        int got = record_input(T, &r, &x, &h, &w, &in_dt);
        if (got < 0)
            die_record(si, &r);
        if (!got)
            continue;
        if (!s) {
            if (h != w)
                die("record %ld: grid tiles must be square, got %dx%d", stream_in_count(si), w, h);
            s = h;
            grid = (image){.w = n * (s + pad) + pad, .h = 2 * (s + pad) + pad, .c = 3};
            grid.px = calloc((size_t)grid.w * grid.h, 3);
            y = malloc((size_t)3 * s * s * sizeof *y);
        }
        if (h != s || w != s)
            die("record %ld: a %dx%d tensor in a grid of %d px tiles", stream_in_count(si), w, h, s);
        if (infer_run(T->g, x, y, h, w) != 0)
            die_record(si, &r);
        paste(&grid, x, s, s, pad + k * (s + pad), pad);
        paste(&grid, y, s, s, pad + k * (s + pad), 2 * pad + s);
        free(x);
        k++;
    }
    /* Drain the rest: the producers upstream (aug, utk-split) should end
     * normally, not by SIGPIPE, and a broken stream is still reported. */
    while (rc == 1 && k == n && (rc = stream_in_next(si, &r)) == 1)
        ;
    if (rc < 0)
        die("%s", err_msg());
    if (k == 0)
        die("no %simages in the input to make a grid of", T->all ? "" : T->dst[0] == 'o' ? "young " : "old ");
    /* fewer records than asked: a narrower grid */
    image out = {0};
    uint8_t *png;
    size_t len;
    if (image_crop(&out, &grid, 0, 0, k * (s + pad) + pad, grid.h) != 0 ||
        image_encode_png(&out, &png, &len) != 0 || file_write_all(outpath, png, len) != 0)
        die("%s", err_msg());
    free(png);
    image_free(&out);
    image_free(&grid);
    free(y);
    record_clear(&r);
    stream_in_free(si);
    return 0;
}

static int run_image(struct tr *T, const char *inpath, const char *outpath)
{
    uint8_t *bytes, *png;
    size_t n, len;
    image im = {0};
    if (file_read_all(inpath, (size_t)64 << 20, &bytes, &n) != 0)
        die("%s", err_msg());
    if (image_decode(&im, bytes, n) != 0 || transform_eval(&im, T->size, T->resize) != 0)
        die("%s: %s", strcmp(inpath, "-") ? inpath : "stdin", err_msg());
    free(bytes);
    size_t px = (size_t)3 * im.h * im.w;
    float *x = malloc(px * sizeof *x);
    image_to_chw_f32(x, &im);
    if (infer_run(T->g, x, x, im.h, im.w) != 0)
        die("%s", err_msg());
    image out = {0};
    if (image_from_chw_f32(&out, x, 3, im.h, im.w) != 0 || image_encode_png(&out, &png, &len) != 0 ||
        file_write_all(outpath, png, len) != 0)
        die("%s", err_msg());
    free(png);
    free(x);
    image_free(&out);
    image_free(&im);
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
                                         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    struct tr T = {0};
    const char *ckpt = NULL, *in = "-", *out = "-", *dir = NULL,
               *device = NULL;
    int stream = 0, grid = 0, c;
    enum backend_precision precision = BACKEND_FP32;
    while ((c = getopt_long(argc, argv, "hi:o:", opts, NULL)) != -1) {
        switch (c) {
        case O_Y2O:
        case O_O2Y:
            if (dir && strcmp(dir, c == O_Y2O ? "y2o" : "o2y") != 0)
                cli_usage_error("choose one of --y2o and --o2y");
            dir = c == O_Y2O ? "y2o" : "o2y";
            break;
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
            if (backend_precision_parse(optarg, &precision) != 0)
                cli_usage_error("--precision: expected fp32, bf16 or fp16, got '%s'", optarg);
            break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (!dir)
        cli_usage_error("choose --y2o (young to old) or --o2y (old to young)");
    if (optind != argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (stream && grid)
        cli_usage_error("--stream and --grid do not go together");
    if (!stream && strcmp(out, "-") == 0 && isatty(1))
        cli_usage_error("refusing to write a PNG to a terminal: use -o FILE or redirect stdout");
    bool y2o = strcmp(dir, "y2o") == 0;
    T.src = y2o ? "young" : "old";
    T.dst = y2o ? "old" : "young";
    T.net = y2o ? "G" : "F";

    if (T.size % 4)
        cli_usage_error("--size must be a multiple of 4, got %d", T.size);
    char found[PATH_MAX];
    const char *what = NULL;
    if (!ckpt && !(ckpt = models_default(found, sizeof found, &what)))
        die("%s", err_msg());
    backend_t be = device_open_precision(device, precision);
    if (!be || !(T.g = infer_open(ckpt, y2o ? "G." : "F.", be)))
        die("%s", err_msg());
    int asked = T.size, trained, trained_resize;
    infer_framing(T.g, &trained, &trained_resize);
    if (models_framing(T.g, asked, &T.size, &T.resize))
        fprintf(stderr, "translate: note: running at --size %d; the model was trained at %d px\n", asked,
                trained);
    if (what)
        fprintf(stderr, "translate: using %s, %s (%d px)\n", what, ckpt, T.size);
    if (T.size % 4)
        die("%s: the model's training size %d is not a multiple of 4: give --size", ckpt, T.size);
    if (stream)
        run_stream(&T, in, out);
    else if (grid)
        run_grid(&T, grid, in, out);
    else
        run_image(&T, in, out);
    infer_free(T.g);
    backend_free(be);
    err_close_stdout();
    return 0;
}
