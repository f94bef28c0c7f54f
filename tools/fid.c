/*
 * fid: Fréchet Inception Distance (and KID) between a reference set and a
 * generated set, from a record stream through the FID Inception network or
 * from saved statistics.  docs/fid.md is the manual.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tool/cli.h"
#include "tool/device.h"
#include "base/err.h"
#include "tool/progress.h"
#include "stream/record-image.h"
#include "fid/fid-stats.h"
#include "image/image.h"
#include "fid/inception.h"
#include "stream/stream.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: fid [options] [--ref FILE] [--save-stats FILE] < records\n"
               "       fid --ref FILE --gen FILE [--kid] [--json]\n"
               "FID (and KID) of the image/tensor records of a stream, or of saved statistics,\n"
               "against reference statistics.\n\n"
               "  --weights FILE     FID Inception weights as safetensors (default $AGING_FID_WEIGHTS)\n"
               "  --ref FILE         reference statistics: ours (safetensors) or pytorch-fid .npz\n"
               "  --gen FILE         generated-side statistics instead of reading a stream\n"
               "  --save-stats FILE  save the generated side's statistics (.npz: pytorch-fid's)\n"
               "  --kid              also KID (keeps the features; saved statistics include them)\n"
               "  --kid-subsets N    KID subsets (default 100)\n"
               "  --kid-subset-size N  rows per subset (default 1000, lowered to the smaller set)\n"
               "  --convention C     input handling: pytorch-fid (default) or torchmetrics\n"
               "  --domain D         only records of domain D (default: every image/tensor record)\n"
               "  --batch N          images per network pass (default 8)\n"
               "  --in EP            input stream (default -)\n"
               "  --device D         cpu, cuda, cuda:N or auto (default: $AGING_DEVICE, else auto)\n"
               "  --json             one JSON object on stdout instead of text\n"
               "  --max-pixels N     refuse images of more pixels, from their header (default 16777216,\n"
               "                     16 Mpx; at most 67108864); a JPEG at least twice Inception's 299 x 299\n"
               "                     is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling)\n"
               "  --help, --version\n");
    exit(status);
}

static void die_no_weights(void)
{
    die("no FID Inception weights: pass --weights FILE (or set AGING_FID_WEIGHTS).\n"
        "  The standard file is pytorch-fid's %s\n"
        "  (about 95 MB); convert it once with\n"
        "    ckpt import pt_inception-2015-12-05-6726825d.pth inception.safetensors",
        INCEPTION_WEIGHTS_URL);
}

struct opts {
    const char *weights, *ref, *gen, *save, *domain, *in, *device;
    int kid, subsets, subset_size, batch, json;
    enum fid_convention conv;
    image_need need; /* the pixel limit; JPEGs decode at no more than Inception's 299 x 299 */
};

/* Queue one record into the batch: 1 queued, 0 skipped, -1 error. */
static int queue_record(struct inception *net, const record *r, int slot, const struct opts *o)
{
    const char *kind = record_kind(r), *dom = record_get_str(r, "domain");
    int is_img = !strcmp(kind, "image"), is_tensor = !strcmp(kind, "tensor");
    if ((!is_img && !is_tensor) || (o->domain && (!dom || strcmp(dom, o->domain) != 0)))
        return 0;
    if (is_img) {
        image im = {0};
        int rc = record_decode_image_need(r, &im, &o->need) ||
                 inception_set_image_u8(net, slot, im.px, im.c, im.h, im.w, 1, o->conv);
        image_free(&im);
        return rc ? -1 : 1;
    }
    tensor_view v;
    if (record_tensor_view(r, &v) != 0)
        return -1;
    if (v.dt == DTYPE_U8)
        return inception_set_image_u8(net, slot, v.data, (int)v.c, (int)v.h, (int)v.w, 0, o->conv) ? -1 : 1;
    float *x = malloc((size_t)v.c * v.h * v.w * sizeof *x);
    if (!x)
        return err_set("out of memory");
    tensor_view_to_f32(&v, x);
    int rc = inception_set_image_f32(net, slot, x, (int)v.c, (int)v.h, (int)v.w, o->conv);
    free(x);
    return rc ? -1 : 1;
}

/* Statistics of the stream's images. */
static void stream_stats(const struct opts *o, struct fid_stats *out)
{
    if (!o->weights)
        die_no_weights();
    backend_t be = device_open(o->device);
    struct inception *net = be ? inception_load(be, o->weights, o->batch) : NULL;
    struct fid_acc *acc = net ? fid_acc_new(INCEPTION_DIM, o->kid) : NULL;
    stream_in *si = acc ? stream_in_open(o->in) : NULL;
    float *feats = malloc((size_t)o->batch * INCEPTION_DIM * sizeof *feats);
    if (!si || !feats)
        die("%s", err_msg());
    record r;
    record_init(&r);
    int rc, k = 0;
    long total = 0, done = 0;
    progress *prog = progress_new(stderr);
    double t0 = progress_now();
    while ((rc = stream_in_next(si, &r)) == 1) {
        int64_t pairs = record_pairs_ahead(&r);
        total += o->domain ? pairs : 2 * pairs;
        int got = queue_record(net, &r, k, o);
        if (got < 0) {
            const char *id = record_get_str(&r, "id");
            die("record %ld%s%s: %s", stream_in_count(si), id ? " " : "", id ? id : "", err_msg());
        }
        k += got;
        if (k == o->batch) {
            if (inception_forward(net, k, feats) || fid_acc_add(acc, feats, k))
                die("%s", err_msg());
            done += k;
            k = 0;
            double rate = done / (progress_now() - t0);
            char eta[16];
            if (total >= done)
                progress_line(prog, "fid: Inception features: %ld/%ld images, %.1f/s, ETA %s", done, total,
                              rate, progress_eta(eta, sizeof eta, (total - done) / rate));
            else
                progress_line(prog, "fid: Inception features: %ld images, %.1f/s", done, rate);
        }
    }
    progress_free(prog);
    if (rc < 0)
        die("%s", err_msg());
    if (k && (inception_forward(net, k, feats) || fid_acc_add(acc, feats, k)))
        die("%s", err_msg());
    if (fid_acc_count(acc) == 0)
        die("no %s%simages in the input", o->domain ? o->domain : "", o->domain ? " " : "");
    if (fid_acc_finish(acc, out))
        die("%s", err_msg());
    snprintf(out->convention, sizeof out->convention, "%s", fid_convention_name(o->conv));
    record_clear(&r);
    stream_in_free(si);
    free(feats);
    fid_acc_free(acc);
    inception_free(net);
    backend_free(be);
}

static void report(const struct opts *o, const struct fid_stats *ref, const struct fid_stats *gen)
{
    double fid = 0, kmean = 0, kstd = 0;
    int m = o->subset_size;
    if (ref && fid_distance(ref, gen, &fid))
        die("%s", err_msg());
    if (ref && o->kid) {
        if (m > ref->n || m > gen->n) {
            m = (int)(ref->n < gen->n ? ref->n : gen->n);
            warn("KID subset size lowered from %d to %d, the smaller set's size", o->subset_size, m);
        }
        if (fid_kid(ref, gen, o->subsets, m, 2020, &kmean, &kstd))
            die("%s", err_msg());
    }
    const char *conv = gen->convention[0] ? gen->convention : "unknown";
    if (o->json) {
        printf("{");
        if (ref)
            printf("\"fid\": %.17g, ", fid);
        if (ref && o->kid)
            printf("\"kid_mean\": %.17g, \"kid_std\": %.17g, \"kid_subsets\": %d, "
                   "\"kid_subset_size\": %d, ",
                   kmean, kstd, o->subsets, m);
        if (ref)
            printf("\"n_ref\": %lld, ", (long long)ref->n);
        printf("\"n_gen\": %lld, \"dims\": %d, \"convention\": \"%s\"", (long long)gen->n, gen->d, conv);
        if (o->weights && !o->gen)
            printf(", \"weights\": \"%s\"", o->weights);
        printf("}\n");
        return;
    }
    if (ref)
        printf("FID: %.6f\n", fid);
    if (ref && o->kid)
        printf("KID: %.6g ± %.6g (%d subsets of %d)\n", kmean, kstd, o->subsets, m);
    if (!ref)
        printf("%lld images, statistics saved to %s\n", (long long)gen->n, o->save);
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_WEIGHTS = 256,
        O_REF,
        O_GEN,
        O_SAVE,
        O_KID,
        O_SUBSETS,
        O_SUBSIZE,
        O_CONV,
        O_DOMAIN,
        O_BATCH,
        O_IN,
        O_DEVICE,
        O_JSON,
        O_MAX_PIXELS,
        O_VERSION
    };
    static const struct option lopts[] = {{"weights", 1, 0, O_WEIGHTS},
                                          {"ref", 1, 0, O_REF},
                                          {"gen", 1, 0, O_GEN},
                                          {"save-stats", 1, 0, O_SAVE},
                                          {"kid", 0, 0, O_KID},
                                          {"kid-subsets", 1, 0, O_SUBSETS},
                                          {"kid-subset-size", 1, 0, O_SUBSIZE},
                                          {"convention", 1, 0, O_CONV},
                                          {"domain", 1, 0, O_DOMAIN},
                                          {"batch", 1, 0, O_BATCH},
                                          {"in", 1, 0, O_IN},
                                          {"device", 1, 0, O_DEVICE},
                                          {"json", 0, 0, O_JSON},
                                          {"max-pixels", 1, 0, O_MAX_PIXELS},
                                          {"help", 0, 0, 'h'},
                                          {"version", 0, 0, O_VERSION},
                                          {0, 0, 0, 0}};
    struct opts o = {.weights = getenv("AGING_FID_WEIGHTS"),
                     .in = "-",
                     .device = NULL,
                     .subsets = 100,
                     .subset_size = 1000,
                     .batch = 8,
                     .conv = FID_CONV_PYTORCH_FID,
                     .need = {.max_pixels = IMAGE_DATASET_MAX_PIXELS, .min_w = 299, .min_h = 299}};
    if (o.weights && !*o.weights)
        o.weights = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case O_WEIGHTS: o.weights = optarg; break;
        case O_REF: o.ref = optarg; break;
        case O_GEN: o.gen = optarg; break;
        case O_SAVE: o.save = optarg; break;
        case O_KID: o.kid = 1; break;
        case O_SUBSETS: o.subsets = (int)cli_int("--kid-subsets", optarg, 1, 100000); break;
        case O_SUBSIZE: o.subset_size = (int)cli_int("--kid-subset-size", optarg, 2, 1 << 24); break;
        case O_CONV:
            if (fid_convention_parse(optarg, &o.conv) != 0)
                cli_usage_error("--convention: expected pytorch-fid or torchmetrics, got '%s'", optarg);
            break;
        case O_DOMAIN: o.domain = optarg; break;
        case O_MAX_PIXELS: o.need.max_pixels = cli_int("--max-pixels", optarg, 1, IMAGE_MAX_PIXELS); break;
        case O_BATCH: o.batch = (int)cli_int("--batch", optarg, 1, 1024); break;
        case O_IN: o.in = optarg; break;
        case O_DEVICE:
            if (!device_known(optarg))
                cli_usage_error("--device: expected cpu, cuda, cuda:N or auto, got '%s'", optarg);
            o.device = optarg;
            break;
        case O_JSON: o.json = 1; break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (optind != argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.ref && !o.save)
        cli_usage_error("nothing to do: give --ref FILE and/or --save-stats FILE");

    struct fid_stats ref = {0}, gen = {0};
    if (o.ref && fid_stats_load(o.ref, &ref))
        die("%s", err_msg());
    if (o.gen) {
        if (fid_stats_load(o.gen, &gen))
            die("%s", err_msg());
    } else {
        stream_stats(&o, &gen);
    }
    if (o.ref && ref.d != gen.d)
        die("%s has %d dimensions but %s has %d", o.ref, ref.d, o.gen ? o.gen : "the input", gen.d);
    if (o.ref && ref.convention[0] && gen.convention[0] && strcmp(ref.convention, gen.convention) != 0)
        warn("%s was computed with the %s input convention, the generated side with %s", o.ref,
             ref.convention, gen.convention);
    if (o.save) {
        char n[32];
        snprintf(n, sizeof n, "%lld", (long long)gen.n);
        const char *meta[] = {"convention", gen.convention[0] ? gen.convention : "unknown",
                              "network",    "FID Inception pool3 (TF 2015-12-05)",
                              "weights",    o.weights && !o.gen ? o.weights : "unknown",
                              NULL};
        if (fid_stats_save(o.save, &gen, meta))
            die("%s", err_msg());
    }
    report(&o, o.ref ? &ref : NULL, &gen);
    fid_stats_free(&ref);
    fid_stats_free(&gen);
    err_close_stdout();
    return 0;
}
