/*
 * tb-log: add scalars and images to a TensorBoard log folder from a shell
 * script: train.sh logs the validation FID and each epoch's sample grid this
 * way, next to the losses cyclegan-step writes itself.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/cli.h"
#include "base/err.h"
#include "base/fileio.h"
#include "image/image-probe.h"
#include "image/image.h"
#include "format/tfevents.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: tb-log DIR --step N [--scalar TAG=VALUE]... [--image TAG=FILE.png]...\n"
               "Append scalars and PNG images to a new TensorBoard event file in DIR.\n\n"
               "  --step N             the global step they belong to\n"
               "  --scalar TAG=VALUE   a number (e.g. val/fid_val=41.2)\n"
               "  --image TAG=FILE     a PNG file (e.g. val/samples=outputs/images/epoch3.png), checked\n"
               "                       whole (chunks, CRCs, image data, IEND; sides up to 1000000)\n"
               "  --help, --version\n");
    exit(status);
}

/* Split "TAG=REST" in place; the tag must not be empty. */
static char *split_tag(char *arg, const char *opt)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        cli_usage_error("%s: expected TAG=VALUE, got '%s'", opt, arg);
    *eq = 0;
    return eq + 1;
}

struct item {
    const char *tag;
    double value; /* a scalar, */
    uint8_t *png; /* or an image */
    size_t len;
    int w, h;
};

/* The longest side TensorBoard's viewers decode: libpng's default limit
 * (PNG_USER_WIDTH_MAX), past which they fail with "Invalid IHDR data". */
#define TB_MAX_SIDE 1000000

/* Read and check one image now, so that nothing is written unless all are
 * good: a regular file (a FIFO would block for ever), a PNG whose header a
 * viewer accepts, then the whole file decoded and checked (every chunk's
 * CRC, the image data, IEND), since TensorBoard stores it as it is. */
static void load_png(struct item *it, const char *path)
{
    const char *fmt = "";
    if (file_read_regular(path, (size_t)64 << 20, &it->png, &it->len) != 0)
        die("%s", err_msg());
    if (image_probe(it->png, it->len, &it->w, &it->h, &fmt) != 0 || strcmp(fmt, "PNG") != 0)
        die("%s: not a PNG image", path);
    if (it->w > TB_MAX_SIDE || it->h > TB_MAX_SIDE || (long)it->w * it->h > IMAGE_MAX_PIXELS)
        die("%s: a %dx%d PNG: TensorBoard shows sides up to %d and %ld pixels", path, it->w, it->h,
            TB_MAX_SIDE, (long)IMAGE_MAX_PIXELS);
    image im;
    image_need need = {.whole = 1};
    if (image_decode_need(&im, it->png, it->len, &need) != 0)
        die("%s: %s", path, err_msg());
    image_free(&im);
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum { O_STEP = 256, O_SCALAR, O_IMAGE, O_VERSION };
    static const struct option opts[] = {{"step", 1, 0, O_STEP},       {"scalar", 1, 0, O_SCALAR},
                                         {"image", 1, 0, O_IMAGE},     {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    int64_t step = -1;
    int c, n = 0;
    struct item *items = calloc((size_t)argc, sizeof *items);
    if (!items)
        die("out of memory");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_STEP: step = cli_int("--step", optarg, 0, INT64_MAX); break;
        case O_SCALAR: {
            char *v = split_tag(optarg, "--scalar");
            items[n].tag = optarg;
            items[n++].value = cli_double("--scalar", v, -INFINITY, INFINITY);
            break;
        }
        case O_IMAGE: {
            char *v = split_tag(optarg, "--image");
            items[n].tag = optarg;
            load_png(&items[n++], v);
            break;
        }
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("give one log folder");
    if (step < 0)
        cli_usage_error("--step N is required");
    if (!n)
        cli_usage_error("nothing to log: give --scalar or --image");
    tfevents *tb = tfevents_open(argv[optind]);
    if (!tb)
        die("%s", err_msg());
    for (int i = 0; i < n; i++) {
        struct item *it = &items[i];
        int rc = it->png ? tfevents_image(tb, it->tag, step, it->png, it->len, it->w, it->h)
                         : tfevents_scalar(tb, it->tag, step, it->value);
        if (rc != 0)
            die("%s", err_msg());
        free(it->png);
    }
    free(items);
    if (tfevents_close(tb) != 0)
        die("%s", err_msg());
    return 0;
}
