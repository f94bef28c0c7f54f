/*
 * utk: scanning a UTKFace folder and splitting it like the reference.
 */
#include "utk.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/rng.h"

void utk_opts_default(utk_opts *o)
{
    memset(o, 0, sizeof *o);
    o->young_min = 18;
    o->young_max = 28;
    o->old_min = 40;
    o->old_max = -1;
    o->seed = 42;
    o->max_bytes = UTK_MAX_FILE_BYTES;
}

const char *utk_split_name(int s)
{
    static const char *const names[] = {"train", "val", "test"};
    return names[s];
}

const char *utk_domain_name(int d)
{
    return d == UTK_YOUNG ? "young" : "old";
}

int utk_parse_age(const char *name)
{
    int age = 0, digits = 0;
    for (const char *p = name; *p != '_'; p++) {
        if (!isdigit((unsigned char)*p) || ++digits > 3)
            return -1;
        age = age * 10 + (*p - '0');
    }
    return digits ? age : -1;
}

static bool is_image_name_(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int cmp_str_(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool excluded_(const utk_opts *o, const char *name)
{
    return o->n_exclude && bsearch(&name, o->exclude, o->n_exclude, sizeof(char *), cmp_str_);
}

/* Append a copy of name to a growing array; false when out of memory. */
static bool push_name_(char ***names, size_t *k, size_t *cap, const char *name)
{
    if (*k == *cap) {
        size_t ncap = *cap ? 2 * *cap : 256;
        char **more = realloc(*names, ncap * sizeof *more);
        if (!more)
            return false;
        *names = more;
        *cap = ncap;
    }
    return ((*names)[(*k)++] = strdup(name)) != NULL;
}

/* What the entry e of the open folder d is: 1 a regular file (through a
 * symbolic link) of at most max_bytes, 0 another kind of entry, -1 a
 * regular file too large.  Only the first are read: opening a FIFO waits
 * for ever, and a huge file would cost its size to be refused. */
static int entry_kind_(DIR *d, const struct dirent *e, size_t max_bytes)
{
    if (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
        return 0;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return max_bytes && (uintmax_t)st.st_size > max_bytes ? -1 : 1;
}

/* Count a skipped entry, keeping the first name for messages. */
static bool skip_(size_t *count, char **first, const char *name)
{
    return (*count)++ > 0 || (*first = strdup(name)) != NULL;
}

/* All regular file names of dir, sorted bytewise; the other entries
 * (FIFOs, devices, folders, dangling links, files over max_bytes) are
 * counted in skips. */
static int list_dir_(const char *dir, size_t max_bytes, char ***out, size_t *n, utk_skips *skips)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set("%s:", dir);
    size_t cap = 0, k = 0;
    char **names = NULL;
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        switch (entry_kind_(d, e, max_bytes)) {
        case 1: ok = push_name_(&names, &k, &cap, e->d_name); break;
        case 0: ok = skip_(&skips->not_regular, &skips->first_not_regular, e->d_name); break;
        default: ok = skip_(&skips->too_large, &skips->first_too_large, e->d_name);
        }
    }
    closedir(d);
    if (!ok) {
        utk_free_names(names, k);
        return err_set("out of memory");
    }
    if (k)
        qsort(names, k, sizeof *names, cmp_str_);
    *out = names;
    *n = k;
    return 0;
}

/* Shuffle idx[0..n) by torch.randperm(n) drawn from g. */
static void shuffle_(rng *g, size_t *idx, size_t n)
{
    int64_t *perm = malloc((n ? n : 1) * sizeof *perm);
    size_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    rng_randperm(g, perm, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        tmp[i] = idx[perm[i]];
    memcpy(idx, tmp, n * sizeof *idx);
    free(perm);
    free(tmp);
}

int utk_load(utk_set *set, const char *dir, const utk_opts *o)
{
    memset(set, 0, sizeof *set);
    char **names = NULL;
    size_t n = 0;
    if (list_dir_(dir, o->max_bytes, &names, &n, &set->skips) != 0)
        return -1;
    set->faces = calloc(n ? n : 1, sizeof *set->faces);
    size_t *group[2] = {malloc((n ? n : 1) * sizeof(size_t)), malloc((n ? n : 1) * sizeof(size_t))};
    size_t gn[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        int age = utk_parse_age(nm);
        int dom = -1;
        if (!is_image_name_(nm))
            set->skips.not_image++;
        else if (age < 0) {
            set->skips.bad_name++;
            if (!set->skips.first_bad)
                set->skips.first_bad = strdup(nm);
        } else if (excluded_(o, nm))
            set->skips.excluded++;
        else if (age >= o->young_min && age <= o->young_max)
            dom = UTK_YOUNG;
        else if (age >= o->old_min && (o->old_max < 0 || age <= o->old_max))
            dom = UTK_OLD;
        else
            set->skips.other_age++;
        if (dom < 0) {
            free(names[i]);
            continue;
        }
        set->faces[set->n] = (utk_face){names[i], age, dom};
        group[dom][gn[dom]++] = set->n++;
    }
    free(names);

    rng g;
    rng_seed(&g, o->seed);
    for (int d = 0; d < 2; d++)
        shuffle_(&g, group[d], gn[d]);
    for (int s = 0; s < UTK_NSPLITS; s++) {
        size_t lo[2], hi[2];
        for (int d = 0; d < 2; d++) {
            size_t cut1 = gn[d] * 8 / 10, cut2 = gn[d] * 9 / 10;
            lo[d] = s == UTK_TRAIN ? 0 : s == UTK_VAL ? cut1 : cut2;
            hi[d] = s == UTK_TRAIN ? cut1 : s == UTK_VAL ? cut2 : gn[d];
        }
        size_t m = hi[0] - lo[0] < hi[1] - lo[1] ? hi[0] - lo[0] : hi[1] - lo[1];
        set->split_n[s] = m;
        for (int d = 0; d < 2; d++) {
            set->split[s][d] = malloc((m ? m : 1) * sizeof(size_t));
            memcpy(set->split[s][d], group[d] + lo[d], m * sizeof(size_t));
        }
    }
    free(group[0]);
    free(group[1]);
    return 0;
}

void utk_set_free(utk_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->faces[i].name);
    free(set->faces);
    for (int s = 0; s < UTK_NSPLITS; s++)
        for (int d = 0; d < 2; d++)
            free(set->split[s][d]);
    free(set->skips.first_bad);
    free(set->skips.first_not_regular);
    free(set->skips.first_too_large);
    memset(set, 0, sizeof *set);
}

int utk_read_exclude(const char *path, char ***out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set("%s:", path);
    size_t cap = 0, k = 0;
    char **names = NULL;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        line[strcspn(line, "\t\r\n")] = 0;
        const char *base = strrchr(line, '/');
        base = base ? base + 1 : line;
        if (!*base || *base == '#')
            continue;
        if (!push_name_(&names, &k, &cap, base))
            break;
    }
    free(line);
    bool bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        utk_free_names(names, k);
        return err_set("%s: read error", path);
    }
    if (k)
        qsort(names, k, sizeof *names, cmp_str_);
    *out = names;
    *n = k;
    return 0;
}

void utk_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
