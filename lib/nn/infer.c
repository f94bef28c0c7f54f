/*
 * infer: a generator in evaluation mode with activations sized for the
 * last image shape (rebuilt only when the shape changes).
 */
#include "infer.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "base/err.h"

struct infer {
    backend_t be;
    struct net *net;
    struct net_acts *acts;
    int h, w;
    int train_size, train_resize; /* from the checkpoint's config; 0: not recorded */
    float *dev_in;                /* device staging for the input, sized 3*h*w */
    char desc[64];
};

/* Training checkpoints and the weights made from them carry the training
 * configuration; older or foreign files may not, which is no error. */
static void read_framing_(const st_file *f, infer *g)
{
    const char *s = st_meta(f, "config");
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    const cJSON *resize = cJSON_GetObjectItemCaseSensitive(o, "resize");
    if (cJSON_IsNumber(size) && size->valuedouble >= 8 && size->valuedouble <= 4096)
        g->train_size = (int)size->valuedouble;
    if (g->train_size && cJSON_IsNumber(resize) && resize->valuedouble >= g->train_size &&
        resize->valuedouble <= 8192)
        g->train_resize = (int)resize->valuedouble;
    cJSON_Delete(o);
}

infer *infer_open(const char *path, const char *prefix, backend_t be)
{
    st_file *f = st_open(path);
    if (!f)
        return NULL;
    struct gen_config cfg;
    infer *g = calloc(1, sizeof *g);
    /* the messages of the checks name the file and the tensor */
    int rc =
        !g ? err_set("%s: out of memory", path) : ckpt_check_st_format(f) || ckpt_gen_config(f, prefix, &cfg);
    if (!rc && !(g->net = gen_new(be, &cfg, NULL)))
        rc = err_wrap("%s", path);
    if (rc || ckpt_load_net(f, prefix, g->net) != 0) {
        st_free(f);
        infer_free(g);
        return NULL;
    }
    read_framing_(f, g);
    st_free(f);
    g->be = be;
    net_set_training(g->net, 0);
    snprintf(g->desc, sizeof g->desc, "ngf=%d blocks=%d", cfg.ngf, cfg.n_blocks);
    return g;
}

void infer_free(infer *g)
{
    if (!g)
        return;
    net_acts_free(g->acts);
    net_free(g->net);
    backend_dealloc(g->be, g->dev_in);
    free(g);
}

void infer_framing(const infer *g, int *size, int *resize)
{
    *size = g->train_size;
    *resize = g->train_resize;
}

int infer_file_size(const char *path)
{
    st_file *f = st_open(path);
    infer g = {0};
    if (f)
        read_framing_(f, &g);
    st_free(f);
    return g.train_size;
}

const char *infer_describe(const infer *g)
{
    return g->desc;
}

int infer_run(infer *g, const float *in, float *out, int h, int w)
{
    if (h < 8 || w < 8 || h % 4 || w % 4)
        return err_set("the generator needs a height and width that are multiples of 4, got %dx%d", h, w);
    if (!g->acts || g->h != h || g->w != w) {
        net_acts_free(g->acts);
        backend_dealloc(g->be, g->dev_in);
        g->dev_in = backend_alloc(g->be, (size_t)3 * h * w * sizeof(float));
        if (!g->dev_in || !(g->acts = net_acts_new(g->net, 1, h, w)))
            return -1;
        g->h = h;
        g->w = w;
    }
    size_t bytes = (size_t)3 * h * w * sizeof(float);
    if (backend_upload(g->be, g->dev_in, in, bytes) != 0 || net_forward(g->acts, g->dev_in) != 0)
        return -1;
    return backend_download(g->be, out, net_acts_output(g->acts, NULL), bytes);
}
