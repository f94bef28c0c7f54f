/*
 * utk: the UTKFace folder scan and the reference's deterministic split.
 *
 * File names are AGE_GENDER_RACE_DATETIME.jpg.chip.jpg; only the age (the
 * first '_' field) matters here.  utk_scan lists the folder in byte order
 * (Python's sorted()), keeps young [young_min, young_max] and old
 * [old_min, old_max] faces, and utk_split shuffles each group with
 * torch.randperm under torch.manual_seed(seed) (young first, then old, from
 * one generator), cuts train/val/test at floor(0.8 n) and floor(0.9 n), and
 * trims young and old of each split to the same length.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { UTK_YOUNG, UTK_OLD };
enum { UTK_TRAIN, UTK_VAL, UTK_TEST, UTK_NSPLITS };

typedef struct utk_face {
    char *name;
    int age;
    int domain; /* UTK_YOUNG or UTK_OLD */
} utk_face;

/* The largest file utk-split reads (a face chip is ~10 KB, a photo a few MB). */
#define UTK_MAX_FILE_BYTES ((size_t)1 << 28)

typedef struct utk_opts {
    int young_min, young_max, old_min, old_max; /* old_max < 0: no upper bound */
    size_t max_bytes; /* larger files are skipped (counted in too_large), from their size */
    uint64_t seed;
    char **exclude; /* names to leave out (sorted), n_exclude of them */
    size_t n_exclude;
} utk_opts;

/* Counts of what the scan passed over, for the summary. */
typedef struct utk_skips {
    size_t not_image, bad_name, other_age, excluded;
    size_t not_regular;      /* FIFOs, devices, folders: never opened */
    size_t too_large;        /* regular files over max_bytes: never opened */
    char *first_bad;         /* first unparseable name (owned), for messages */
    char *first_not_regular; /* the first of those (owned) */
    char *first_too_large;   /* the first of those (owned) */
} utk_skips;

typedef struct utk_set {
    utk_face *faces; /* all kept faces, in scan order */
    size_t n;
    /* split[s][d]: indices into faces, in shuffled order, trimmed */
    size_t *split[UTK_NSPLITS][2];
    size_t split_n[UTK_NSPLITS];
    utk_skips skips;
} utk_set;

void utk_opts_default(utk_opts *o);
/* Scan dir and split it.  -1 with err_msg() when the folder cannot be read;
 * an empty result is not an error here (the tool decides). */
int utk_load(utk_set *set, const char *dir, const utk_opts *o);
void utk_set_free(utk_set *set);

/* The age of a UTKFace file name, or -1 if the name does not parse. */
int utk_parse_age(const char *name);
/* Read an exclude list (one name per line; a path keeps its last component;
 * a tab ends the name).  Returns a sorted owned array in *names. */
int utk_read_exclude(const char *path, char ***names, size_t *n);
void utk_free_names(char **names, size_t n);

const char *utk_split_name(int s);
const char *utk_domain_name(int d);
