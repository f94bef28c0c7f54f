/*
 * utk-split: scan a UTKFace folder, split it like the reference and emit
 * `image` records (or a TSV list) for the chosen split(s).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/cli.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "stream/stream.h"
#include "image/utk.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: utk-split [options] DIR\n"
               "Split a UTKFace folder (AGE_GENDER_RACE_DATETIME.jpg.chip.jpg) into young/old\n"
               "train/val/test and write `image` records (msgpack) to stdout.\n\n"
               "  --split S        train, val, test or all (default train)\n"
               "  --seed N         shuffle seed, torch.manual_seed semantics (default 42)\n"
               "  --epochs N       emit the train split N times with epoch records, its pairs (young i,\n"
               "                   old i) in a new random order each epoch, the first included\n"
               "  --pairing P      reference (default: the pairs above, as the reference's Unpaired\n"
               "                   dataset and RandomSampler) or independent (epoch 1 in split order,\n"
               "                   then each domain reshuffled on its own: new pairs every epoch)\n"
               "  --start-epoch K  begin at epoch K of N (resuming a run: same order as before)\n"
               "  --stop-epoch L   end after epoch L of N (one epoch at a time: K = L)\n"
               "  --limit N        at most N faces of each domain per split and epoch\n"
               "  --young MIN:MAX  young age range (default 18:28)\n"
               "  --old MIN[:MAX]  old age range (default 40, no upper bound)\n"
               "  --exclude FILE   leave out the names listed in FILE (one per line)\n"
               "  --list           print TSV lines id, age, domain, split instead of records; in an id a\n"
               "                   backslash, tab, newline or other control byte is written \\\\, \\t, \\n,\n"
               "                   \\r or \\ooo (octal)\n"
               "  --strict         file names that do not parse, entries that are not regular files\n"
               "                   (FIFOs, devices, folders) and files over 256 MiB are an error,\n"
               "                   not skipped (each is counted in the summary)\n"
               "  --out ENDPOINT   where records go: -, FILE, tcp://HOST:PORT, ipc://PATH\n"
               "  -q, --quiet      no summary on stderr\n"
               "  --check          check the options and exit (0 when valid), reading nothing\n"
               "  --help, --version\n");
    exit(status);
}

/* "A:B" or "A" into lo/hi (hi = -1 when absent and allowed). */
static void parse_range(const char *opt, const char *s, int *lo, int *hi, int allow_open)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strchr(buf, ':');
    if (colon)
        *colon = 0;
    *lo = (int)cli_int(opt, buf, 0, 200);
    if (colon)
        *hi = (int)cli_int(opt, colon + 1, *lo, 200);
    else if (allow_open)
        *hi = -1;
    else
        cli_usage_error("%s: expected MIN:MAX, got '%s'", opt, s);
}

struct emit {
    const char *dir;
    stream_out *out;
    int list;
    long limit;
    int epoch; /* the epoch being emitted, 0 outside the train epochs */
};

static void emit_face(struct emit *e, const utk_face *f, int split)
{
    if (e->list) {
        cli_put_escaped(stdout,
                        f->name); /* one TSV field: a name can neither split a line nor add a column */
        printf("\t%d\t%s\t%s\n", f->age, utk_domain_name(f->domain), utk_split_name(split));
        return;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", e->dir, f->name);
    uint8_t *bytes;
    size_t n;
    if (file_read_regular(path, UTK_MAX_FILE_BYTES, &bytes, &n) != 0)
        die("%s", err_msg());
    record r;
    record_init(&r);
    record_set_str(&r, "kind", "image");
    record_set_text(&r, "id", f->name); /* a name that is not UTF-8 goes as bin */
    record_set_int(&r, "age", f->age);
    record_set_str(&r, "domain", utk_domain_name(f->domain));
    record_set_str(&r, "split", utk_split_name(split));
    record_set_str(&r, "encoding", n >= 4 && bytes[0] == 0x89 && bytes[1] == 'P' ? "png" : "jpeg");
    record_set_bin_owned(&r, "bytes", bytes, n);
    /* Each record names its epoch: ZeroMQ fan-in interleaves the streams
     * of several workers, and the trainer batches an epoch from its own. */
    if (e->epoch)
        record_set_int(&r, "epoch", e->epoch);
    if (stream_out_put(e->out, &r) != 0)
        die("%s", err_msg());
    record_clear(&r);
}

/* Pairs of a split that are emitted (--limit applied). */
static size_t split_pairs(const struct emit *e, const utk_set *set, int split)
{
    size_t m = set->split_n[split];
    return e->limit >= 0 && (size_t)e->limit < m ? (size_t)e->limit : m;
}

/* Young and old alternate: y0 o0 y1 o1 ... */
static void emit_split(struct emit *e, const utk_set *set, int split, const size_t *young, const size_t *old)
{
    size_t m = split_pairs(e, set, split);
    for (size_t i = 0; i < m; i++) {
        emit_face(e, &set->faces[young[i]], split);
        emit_face(e, &set->faces[old[i]], split);
    }
}

/* An `epoch` record before each epoch of the train split, a `split` record
 * before any other split: both say how many pairs follow, for consumers'
 * progress lines (other tools pass them on or ignore them). */
static void emit_marker(struct emit *e, int epoch, int epochs, int split, size_t pairs)
{
    if (e->list)
        return;
    record r;
    record_init(&r);
    if (epoch) {
        record_set_str(&r, "kind", "epoch");
        record_set_int(&r, "epoch", epoch);
        record_set_int(&r, "epochs", epochs);
    } else {
        record_set_str(&r, "kind", "split");
        record_set_str(&r, "split", utk_split_name(split));
    }
    record_set_int(&r, "pairs", (int64_t)pairs);
    if (stream_out_put(e->out, &r) != 0)
        die("%s", err_msg());
    record_clear(&r);
}

enum { PAIR_NONE, PAIR_REFERENCE, PAIR_INDEPENDENT };

/* The order of epoch k comes from torch.randperm under manual_seed(seed + k - 1):
 *  PAIR_REFERENCE: one permutation of the pair indices (of the first
 *    split_pairs, so --limit caps the set as the reference's train_size),
 *    young i stays with old i;
 *  PAIR_INDEPENDENT: epoch 1 in split order, later ones a permutation per
 *    domain, one after the other from the same generator;
 *  PAIR_NONE (no --epochs): the split's own order. */
static void emit_train(struct emit *e, const utk_set *set, uint64_t seed, int first, int last, int epochs,
                       int pairing)
{
    size_t m = set->split_n[UTK_TRAIN];
    size_t *order[2] = {malloc((m + 1) * sizeof(size_t)), malloc((m + 1) * sizeof(size_t))};
    int64_t *perm = malloc((m + 1) * sizeof *perm);
    for (int ep = first; ep <= last; ep++) {
        rng g;
        rng_seed(&g, seed + (uint64_t)ep - 1);
        if (pairing == PAIR_REFERENCE) {
            size_t k = split_pairs(e, set, UTK_TRAIN);
            rng_randperm(&g, perm, (int64_t)k);
            for (int d = 0; d < 2; d++)
                for (size_t i = 0; i < k; i++)
                    order[d][i] = set->split[UTK_TRAIN][d][perm[i]];
        }
        for (int d = 0; d < 2 && pairing != PAIR_REFERENCE; d++) {
            if (ep == 1 || pairing == PAIR_NONE) {
                memcpy(order[d], set->split[UTK_TRAIN][d], m * sizeof(size_t));
                continue;
            }
            rng_randperm(&g, perm, (int64_t)m);
            for (size_t i = 0; i < m; i++)
                order[d][i] = set->split[UTK_TRAIN][d][perm[i]];
        }
        emit_marker(e, ep, epochs, UTK_TRAIN, split_pairs(e, set, UTK_TRAIN));
        e->epoch = ep;
        emit_split(e, set, UTK_TRAIN, order[0], order[1]);
        e->epoch = 0;
    }
    free(order[0]);
    free(order[1]);
    free(perm);
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_SPLIT = 256,
        O_SEED,
        O_EPOCHS,
        O_START,
        O_STOP,
        O_LIMIT,
        O_YOUNG,
        O_OLD,
        O_EXCLUDE,
        O_LIST,
        O_STRICT,
        O_OUT,
        O_PAIRING,
        O_CHECK,
        O_VERSION
    };
    static const struct option opts[] = {{"split", 1, 0, O_SPLIT},     {"seed", 1, 0, O_SEED},
                                         {"epochs", 1, 0, O_EPOCHS},   {"start-epoch", 1, 0, O_START},
                                         {"stop-epoch", 1, 0, O_STOP}, {"limit", 1, 0, O_LIMIT},
                                         {"young", 1, 0, O_YOUNG},     {"old", 1, 0, O_OLD},
                                         {"exclude", 1, 0, O_EXCLUDE}, {"list", 0, 0, O_LIST},
                                         {"strict", 0, 0, O_STRICT},   {"out", 1, 0, O_OUT},
                                         {"pairing", 1, 0, O_PAIRING}, {"check", 0, 0, O_CHECK},
                                         {"quiet", 0, 0, 'q'},         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    utk_opts o;
    utk_opts_default(&o);
    const char *split = "train", *exclude = NULL, *out = "-";
    int epochs = 0, start = 1, stop = 0, strict = 0, quiet = 0, check = 0, pairing = PAIR_REFERENCE;
    struct emit e = {.limit = -1};
    int c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case O_SPLIT: split = optarg; break;
        case O_SEED: o.seed = (uint64_t)cli_int("--seed", optarg, 0, INT64_MAX); break;
        case O_EPOCHS: epochs = (int)cli_int("--epochs", optarg, 1, 100000); break;
        case O_START: start = (int)cli_int("--start-epoch", optarg, 1, 100000); break;
        case O_STOP: stop = (int)cli_int("--stop-epoch", optarg, 1, 100000); break;
        case O_LIMIT: e.limit = cli_int("--limit", optarg, 0, INT64_MAX); break;
        case O_YOUNG: parse_range("--young", optarg, &o.young_min, &o.young_max, 0); break;
        case O_OLD: parse_range("--old", optarg, &o.old_min, &o.old_max, 1); break;
        case O_EXCLUDE: exclude = optarg; break;
        case O_LIST: e.list = 1; break;
        case O_STRICT: strict = 1; break;
        case O_CHECK: check = 1; break;
        case O_OUT: out = optarg; break;
        case 'q': quiet = 1; break;
        case O_PAIRING:
            if (strcmp(optarg, "reference") != 0 && strcmp(optarg, "independent") != 0)
                cli_usage_error("--pairing: expected reference or independent, got '%s'", optarg);
            pairing = strcmp(optarg, "reference") == 0 ? PAIR_REFERENCE : PAIR_INDEPENDENT;
            break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (optind + 1 != argc)
        cli_usage_error(optind == argc ? "missing the UTKFace folder" : "only one folder may be given");
    int want = strcmp(split, "train") == 0  ? UTK_TRAIN
               : strcmp(split, "val") == 0  ? UTK_VAL
               : strcmp(split, "test") == 0 ? UTK_TEST
               : strcmp(split, "all") == 0  ? -1
                                            : -2;
    if (want == -2)
        cli_usage_error("--split: expected train, val, test or all, got '%s'", split);
    if (epochs && want != UTK_TRAIN && want != -1)
        cli_usage_error("--epochs applies to the train split only");
    int epochs_given = epochs > 0;
    if (!epochs)
        epochs = 1;
    if (!stop)
        stop = epochs;
    if (start > epochs || stop > epochs || start > stop)
        cli_usage_error("epochs %d..%d are not within 1..%d", start, stop, epochs);
    if (o.old_min <= o.young_max)
        cli_usage_error("the young and old age ranges overlap");
    if (check) /* the options are valid: nothing is read (train.sh's dry run) */
        return 0;
    e.dir = argv[optind];

    if (exclude && utk_read_exclude(exclude, &o.exclude, &o.n_exclude) != 0)
        die("%s", err_msg());
    utk_set set;
    if (utk_load(&set, e.dir, &o) != 0)
        die("%s", err_msg());
    if (strict && set.skips.not_regular)
        die("%s: not a regular file: %s", e.dir, set.skips.first_not_regular);
    if (strict && set.skips.too_large)
        die("%s: larger than %zu bytes: %s", e.dir, UTK_MAX_FILE_BYTES, set.skips.first_too_large);
    if (strict && set.skips.bad_name)
        die("%s: file name does not parse as AGE_GENDER_RACE_DATETIME: %s", e.dir, set.skips.first_bad);
    size_t ny = 0, no = 0;
    for (size_t i = 0; i < set.n; i++)
        set.faces[i].domain == UTK_YOUNG ? ny++ : no++;
    if (!ny || !no)
        die("%s: no %s faces found (expected UTKFace files named AGE_GENDER_RACE_DATETIME.jpg.chip.jpg; "
            "see data/README.md for where to get them)",
            e.dir,
            !ny && !no ? "young or old"
            : !ny      ? "young"
                       : "old");

    if (!e.list && !(e.out = stream_out_open(out)))
        die("%s", err_msg());
    for (int s = 0; s < UTK_NSPLITS; s++) {
        if (want != -1 && want != s)
            continue;
        if (s == UTK_TRAIN) {
            emit_train(&e, &set, o.seed, start, stop, epochs, epochs_given ? pairing : PAIR_NONE);
        } else {
            emit_marker(&e, 0, 0, s, split_pairs(&e, &set, s));
            emit_split(&e, &set, s, set.split[s][UTK_YOUNG], set.split[s][UTK_OLD]);
        }
    }
    if (e.out && stream_out_close(e.out, true, 1) != 0)
        die("%s", err_msg());
    if (!quiet) {
        fprintf(stderr,
                "utk-split: %zu files kept (%zu young, %zu old); skipped: %zu not images, %zu bad names, "
                "%zu other ages, %zu excluded, %zu not regular files, %zu over %zu MiB\n",
                set.n, ny, no, set.skips.not_image, set.skips.bad_name, set.skips.other_age,
                set.skips.excluded, set.skips.not_regular, set.skips.too_large, UTK_MAX_FILE_BYTES >> 20);
        for (int s = 0; s < UTK_NSPLITS; s++) {
            size_t m = split_pairs(&e, &set, s); /* what --limit lets through */
            if (want != -1 && want != s)
                fprintf(stderr, "utk-split: %-5s %zu young + %zu old (not emitted)\n", utk_split_name(s),
                        set.split_n[s], set.split_n[s]);
            else if (m < set.split_n[s])
                fprintf(stderr, "utk-split: %-5s %zu young + %zu old emitted (--limit %ld of %zu each)%s\n",
                        utk_split_name(s), m, m, e.limit, set.split_n[s],
                        s == UTK_TRAIN && epochs ? " per epoch" : "");
            else
                fprintf(stderr, "utk-split: %-5s %zu young + %zu old\n", utk_split_name(s), m, m);
        }
    }
    utk_set_free(&set);
    utk_free_names(o.exclude, o.n_exclude);
    err_close_stdout();
    return 0;
}
