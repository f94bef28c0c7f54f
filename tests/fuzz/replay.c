/*
 * replay: a main for a fuzz harness built without libFuzzer.  Every FILE is
 * run through LLVMFuzzerTestOneInput once; a FOLDER stands for the regular
 * files in it.  Prints one line per argument, "PATH: N inputs", so a test
 * can see that the inputs were found.  A crash is the harness's business:
 * it aborts (or a sanitizer stops it) and the exit status says so.
 *
 *   build/tests/fuzz_image tests/fuzz/corpus/image tests/fuzz/regress/image
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

/* The regular files of dir in name order (so a failure is reproducible), or -1. */
static long run_dir(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (count >= 0 && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            count = run_file(path) ? -1 : count + 1;
        free(ents[i]);
    }
    free(ents);
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        long n = stat(argv[i], &sb) != 0 ? (perror(argv[i]), -1)
                 : S_ISDIR(sb.st_mode)   ? run_dir(argv[i])
                                         : (run_file(argv[i]) ? -1 : 1);
        if (n < 0)
            rc = 1;
        else
            printf("%s: %ld inputs\n", argv[i], n);
    }
    return rc;
}
