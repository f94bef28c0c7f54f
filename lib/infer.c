/*
 * infer: a generator in evaluation mode with activations sized for the
 * last image shape (rebuilt only when the shape changes).
 */
#include "infer.h"

#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "err.h"

struct infer {
    backend_t be;
    struct net *net;
    struct net_acts *acts;
    int h, w;
    float *dev_in; /* device staging for the input, sized 3*h*w */
    char desc[64];
};

infer *infer_open(const char *path, const char *prefix, backend_t be)
{
    st_file *f = st_open(path);
    if (!f)
        return NULL;
    struct gen_config cfg;
    infer *g = calloc(1, sizeof *g);
    if (!g || ckpt_gen_config(f, prefix, &cfg) != 0 || !(g->net = gen_new(be, &cfg, NULL)) ||
        ckpt_load_net(f, prefix, g->net) != 0) {
        err_wrap("%s", path);
        st_free(f);
        infer_free(g);
        return NULL;
    }
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
