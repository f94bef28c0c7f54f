/*
 * aug: decode `image` records and apply the reference's torchvision
 * transforms, writing `tensor` records.  Random draws follow torchvision's
 * order (flip, crop row, crop column, angle) on a torch-compatible
 * generator, so `aug --train --seed S` equals the reference Compose run
 * after torch.manual_seed(S) on the same images in the same order.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/cli.h"
#include "base/err.h"
#include "image/image.h"
#include "stream/record-image.h"
#include "base/rng.h"
#include "stream/stream.h"
#include "image/transform.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: aug (--train | --eval) [options]\n"
               "Decode image records and augment them into tensor records (CHW, [-1,1]).\n\n"
               "  --train          random flip, resize, random crop, random rotation [0,80] deg\n"
               "  --eval           resize, centre crop\n"
               "  --size N         output size (default 256)\n"
               "  --resize R       side before cropping (default size*306/256, rounded: the\n"
               "                   reference's 256+50 framing in proportion; 153 at 128)\n"
               "  --keep-aspect    resize the shorter side to R, keeping the aspect ratio (default:\n"
               "                   squash to R x R as the reference's Resize((R, R)) does)\n"
               "  --seed N         seed of the random draws (default 0); each epoch record\n"
               "                   reseeds with N + epoch - 1, so a resumed run repeats its draws\n"
               "  --dtype T        f32, f16, bf16 or u8 (default f32; u8 keeps raw pixels)\n"
               "  --in ENDPOINT    input: -, FILE, tcp://*:PORT, ipc://PATH (default -)\n"
               "  --out ENDPOINT   output: -, FILE, tcp://HOST:PORT, ipc://PATH (default -)\n"
               "  --producers N    ZeroMQ: how many producers feed --in / share --out's consumer\n"
               "  --shard K/N      augment only images K, K+N, K+2N, ... (0-based), dropping the\n"
               "                   others: N workers fed the same stream share the work\n"
               "  --max-pixels N   refuse images of more pixels, from their header (default 16777216,\n"
               "                   16 Mpx; at most 67108864); a JPEG at least twice the resize side\n"
               "                   is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling)\n"
               "  --check          check the options and exit (0 when valid), reading nothing\n"
               "  --help, --version\n");
    exit(status);
}

struct aug {
    int train, size, resize;
    dtype dt;
    rng g;
    image_need need; /* the pixel limit; JPEGs decode at no more than the resize needs */
};

/* The input of a record as an RGB image: decoded bytes or a u8 tensor. */
static int record_image(const struct aug *A, const record *r, image *im)
{
    if (strcmp(record_kind(r), "image") == 0)
        return record_decode_image_need(r, im, &A->need);
    tensor_view v;
    if (record_tensor_view(r, &v) != 0)
        return -1;
    if (v.w * v.h > A->need.max_pixels)
        return err_set("a %lldx%lld tensor exceeds --max-pixels %ld", (long long)v.w, (long long)v.h,
                       A->need.max_pixels);
    if (v.dt != DTYPE_U8 || (v.c != 3 && v.c != 1))
        return err_set(
            "aug takes image records or u8 tensors of 1 or 3 channels, got a %s tensor of %lld channels",
            dtype_name(v.dt), (long long)v.c);
    im->w = (int)v.w;
    im->h = (int)v.h;
    im->c = 3;
    im->px = malloc((size_t)(v.w * v.h * 3));
    if (!im->px)
        return err_set("out of memory");
    for (int64_t y = 0; y < v.h; y++)
        for (int64_t x = 0; x < v.w; x++)
            for (int c = 0; c < 3; c++)
                im->px[(y * v.w + x) * 3 + c] = v.data[((v.c == 1 ? 0 : c) * v.h + y) * v.w + x];
    return 0;
}

/* Turn r (an image record) into the tensor record of its augmented pixels. */
static int augment(struct aug *A, record *r)
{
    image im = {0};
    if (A->train && A->dt != DTYPE_U8) {
        /* rotation and tensor conversion fused; f32 data handed over as is */
        int64_t n = (int64_t)3 * A->size * A->size;
        float *chw = malloc((size_t)n * sizeof *chw);
        if (!chw)
            return err_set("out of memory");
        if (record_image(A, r, &im) != 0 ||
            transform_train_chw_f32(chw, &im, A->size, A->resize, &A->g) != 0) {
            free(chw);
            image_free(&im);
            return -1;
        }
        if (A->dt == DTYPE_F32) {
            int64_t shape[3] = {3, A->size, A->size};
            record_set_str(r, "kind", "tensor");
            record_set_str(r, "dtype", dtype_name(DTYPE_F32));
            record_set_ints(r, "shape", shape, 3);
            record_set_bin_owned(r, "data", (uint8_t *)chw, (size_t)n * sizeof *chw);
        } else {
            record_set_tensor_f32(r, chw, 3, A->size, A->size, A->dt);
            free(chw);
        }
        record_remove(r, "bytes");
        record_remove(r, "encoding");
        image_free(&im);
        return 0;
    }
    if (record_image(A, r, &im) != 0 || (A->train ? transform_train(&im, A->size, A->resize, &A->g)
                                                  : transform_eval(&im, A->size, A->resize)) != 0) {
        image_free(&im);
        return -1;
    }
    int64_t n = (int64_t)im.w * im.h * 3;
    if (A->dt == DTYPE_U8) {
        uint8_t *chw = malloc((size_t)n);
        for (int64_t i = 0; i < (int64_t)im.w * im.h; i++)
            for (int c = 0; c < 3; c++)
                chw[c * (int64_t)im.w * im.h + i] = im.px[i * 3 + c];
        int64_t shape[3] = {3, im.h, im.w};
        record_set_str(r, "kind", "tensor");
        record_set_str(r, "dtype", "u8");
        record_set_ints(r, "shape", shape, 3);
        record_set_bin_owned(r, "data", chw, (size_t)n);
    } else {
        float *chw = malloc((size_t)n * sizeof *chw);
        image_to_chw_f32(chw, &im);
        record_set_tensor_f32(r, chw, 3, im.h, im.w, A->dt);
        free(chw);
    }
    record_remove(r, "bytes");
    record_remove(r, "encoding");
    image_free(&im);
    return 0;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_TRAIN = 256,
        O_EVAL,
        O_SIZE,
        O_RESIZE,
        O_KEEP_ASPECT,
        O_SEED,
        O_DTYPE,
        O_IN,
        O_OUT,
        O_PRODUCERS,
        O_SHARD,
        O_CHECK,
        O_MAX_PIXELS,
        O_VERSION
    };
    static const struct option opts[] = {{"train", 0, 0, O_TRAIN},
                                         {"eval", 0, 0, O_EVAL},
                                         {"size", 1, 0, O_SIZE},
                                         {"seed", 1, 0, O_SEED},
                                         {"dtype", 1, 0, O_DTYPE},
                                         {"in", 1, 0, O_IN},
                                         {"out", 1, 0, O_OUT},
                                         {"producers", 1, 0, O_PRODUCERS},
                                         {"shard", 1, 0, O_SHARD},
                                         {"resize", 1, 0, O_RESIZE},
                                         {"keep-aspect", 0, 0, O_KEEP_ASPECT},
                                         {"check", 0, 0, O_CHECK},
                                         {"max-pixels", 1, 0, O_MAX_PIXELS},
                                         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    struct aug A = {.train = -1, .size = 256, .dt = DTYPE_F32, .need.max_pixels = IMAGE_DATASET_MAX_PIXELS};
    uint64_t seed = 0;
    const char *in = "-", *out = "-";
    int producers = 1, check = 0, c;
    long shard = 0, nshards = 1, nimages = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_TRAIN: A.train = 1; break;
        case O_EVAL: A.train = 0; break;
        case O_SIZE: A.size = (int)cli_int("--size", optarg, 8, 4096); break;
        case O_RESIZE: A.resize = (int)cli_int("--resize", optarg, 8, 8192); break;
        case O_KEEP_ASPECT: transform_keep_aspect(1); break;
        case O_CHECK: check = 1; break;
        case O_MAX_PIXELS: A.need.max_pixels = cli_int("--max-pixels", optarg, 1, IMAGE_MAX_PIXELS); break;
        case O_SEED: seed = (uint64_t)cli_int("--seed", optarg, 0, INT64_MAX); break;
        case O_DTYPE:
            if (dtype_parse(optarg, &A.dt) != 0)
                cli_usage_error("--dtype: expected f32, f16, bf16 or u8, got '%s'", optarg);
            break;
        case O_IN: in = optarg; break;
        case O_OUT: out = optarg; break;
        case O_PRODUCERS: producers = (int)cli_int("--producers", optarg, 1, 1024); break;
        case O_SHARD: {
            char k[32], *slash = strchr(optarg, '/');
            if (!slash || slash - optarg >= (long)sizeof k)
                cli_usage_error("--shard: expected K/N, got '%s'", optarg);
            snprintf(k, sizeof k, "%.*s", (int)(slash - optarg), optarg);
            nshards = cli_int("--shard", slash + 1, 1, 1024);
            shard = cli_int("--shard", k, 0, nshards - 1);
            break;
        }
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (A.train < 0)
        cli_usage_error("choose --train or --eval");
    if (optind != argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (A.resize && A.resize < A.size)
        cli_usage_error("--resize %d is smaller than --size %d: nothing to crop", A.resize, A.size);
    /* train.sh validates a run's options with the tools' own rules before
     * it replaces an old run: --check stops once they are accepted. */
    if (check)
        return 0;
    /* Every image is resized to R x R (or its shorter side to R) first. */
    A.need.min_w = A.need.min_h = A.resize ? A.resize : transform_resize_size(A.size);
    rng_seed(&A.g, seed);
    /* Each image allocates a few buffers of ~1 MB; keep them in the heap
     * instead of an mmap/munmap (and page faults) per image. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);

    stream_in *si = stream_in_open(in);
    if (!si)
        die("%s", err_msg());
    stream_in_expect(si, producers);
    stream_out *so = stream_out_open(out);
    if (!so)
        die("%s", err_msg());
    record r;
    record_init(&r);
    int rc, ok = 1;
    while ((rc = stream_in_next(si, &r)) == 1) {
        const char *kind = record_kind(&r);
        int64_t epoch;
        if (strcmp(kind, "epoch") == 0 && record_get_int(&r, "epoch", &epoch) == 0 && epoch >= 1)
            rng_seed(&A.g, seed + (uint64_t)epoch - 1);
        bool pixels = strcmp(kind, "image") == 0 || strcmp(kind, "tensor") == 0;
        if (pixels && nimages++ % nshards != shard)
            continue; /* another worker's */
        if (pixels && augment(&A, &r) != 0) {
            const char *id = record_get_str(&r, "id");
            warn("record %ld%s%s: %s", stream_in_count(si), id ? " " : "", id ? id : "", err_msg());
            ok = 0;
            break;
        }
        if (stream_out_put(so, &r) != 0) {
            warn("%s", err_msg());
            ok = 0;
            break;
        }
    }
    if (rc < 0) {
        warn("%s", err_msg());
        ok = 0;
    }
    record_clear(&r);
    stream_in_free(si);
    if (stream_out_close(so, ok, producers) != 0) {
        warn("%s", err_msg());
        ok = 0;
    }
    if (ok)
        err_close_stdout();
    return ok ? 0 : 1;
}
