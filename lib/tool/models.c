/*
 * models: the default checkpoint, looked up where a user's run or an
 * installation puts it.
 */
#include "models.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/fileio.h"
#include "nn/infer.h"

static int regular_(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Copy path into buf; NULL when it does not fit (never a truncated path). */
static const char *take_(char *buf, size_t n, const char *path)
{
    if (strlen(path) >= n) {
        err_set("path too long: %s", path);
        return NULL;
    }
    return strcpy(buf, path);
}

/* The shipped model's candidate places (cand, *k of them); the first that
 * exists, or NULL. */
static const char *shipped_(char cand[3][PATH_MAX + 64], int *k)
{
    char dir[PATH_MAX];
    *k = 0;
    if (file_exe_dir(dir, sizeof dir) == 0) {
        char *slash = strrchr(dir, '/'); /* bin/ -> the tree or PREFIX above it */
        if (slash)
            *slash = 0;
        snprintf(cand[(*k)++], PATH_MAX + 64, "%s/models/" MODELS_SHIPPED, dir);
        snprintf(cand[(*k)++], PATH_MAX + 64, "%s/share/aging-cyclegan/" MODELS_SHIPPED, dir);
        /* a second build folder of the tree: build-asan/bin/ -> the tree */
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            snprintf(cand[(*k)++], PATH_MAX + 64, "%s/models/" MODELS_SHIPPED, dir);
        }
    }
    for (int i = 0; i < *k; i++)
        if (regular_(cand[i]))
            return cand[i];
    return NULL;
}

/* A toy run (make demo-train: 32 px) in the working directory takes over
 * from the shipped model without a word but the "using" line: say it loudly
 * when it is much smaller, with both sizes. */
static void warn_if_toy_(const char *own)
{
    char cand[3][PATH_MAX + 64];
    int k;
    const char *shipped = shipped_(cand, &k);
    int mine = infer_file_size(own), theirs = shipped ? infer_file_size(shipped) : 0;
    if (mine && theirs && 2 * mine <= theirs)
        warn("warning: %s is a %d px model, much smaller than the shipped %d px one (%s); "
             "give --ckpt %s to use that, or move outputs/ away",
             own, mine, theirs, shipped, shipped);
}

const char *models_default(char *buf, size_t n, const char **what)
{
    static const char own[] = "outputs/checkpoints/best.safetensors";
    if (regular_(own)) {
        *what = "your training run's best checkpoint";
        warn_if_toy_(own);
        return take_(buf, n, own);
    }
    const char *env = getenv("AGING_MODEL");
    if (env && *env) {
        *what = "the model AGING_MODEL names";
        if (!regular_(env)) {
            err_set("AGING_MODEL=%s: no such model file", env);
            return NULL;
        }
        return take_(buf, n, env);
    }
    *what = "the shipped model";
    char cand[3][PATH_MAX + 64];
    int k;
    const char *shipped = shipped_(cand, &k);
    if (shipped)
        return take_(buf, n, shipped);
    if (k == 0)
        err_set("no checkpoint: no %s here, AGING_MODEL is not set, and the tool's own folder is unknown "
                "(give --ckpt FILE)",
                own);
    else
        err_set("no checkpoint: no %s here and no shipped model at %s, %s%s%s (give --ckpt FILE, set "
                "AGING_MODEL, or reinstall: the model ships as models/" MODELS_SHIPPED ")",
                own, cand[0], cand[1], k > 2 ? " or " : "", k > 2 ? cand[2] : "");
    return NULL;
}

int models_framing(const struct infer *g, int asked, int *size, int *resize)
{
    int trained, trained_resize;
    infer_framing(g, &trained, &trained_resize);
    *size = asked ? asked : trained ? trained : 256;
    *resize = *size == trained ? trained_resize : 0;
    return asked && trained && asked != trained;
}
