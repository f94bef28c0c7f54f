/*
 * test_models: whole generator (ngf 8, 2 residual blocks) and discriminator
 * (ndf 8) on 2 images of 32x32 against PyTorch (tests/py/ref_models.py):
 * default initialisation bit for bit, then forward + backward in training and
 * eval mode (weights loaded from the fixture), parameter gradients, input
 * gradient and BN running statistics; and two calls of one generator alive
 * at once, back-propagated in reverse order.
 * Tolerances (fp32): outputs and dx atol 1e-5 + rtol 1e-4 (values O(1)).
 * Parameter gradients atol 2e-4 + rtol 1e-3: each is a sum over a whole batch
 * and has passed through up to ~20 layers, several of them BN backwards that
 * subtract nearly equal means; float rounding differs in every GEMM and sum.
 * Running statistics atol 1e-5 + rtol 1e-4.
 */
#include "check.h"
#include "fixture.h"

#include "backend/backend.h"
#include "base/err.h"
#include "nn/model.h"
#include "base/rng.h"

static struct fixture *fx;
static int fx_skip, fx_tried;
static backend_t be;

static void fixtures_release(void)
{
    fixture_free(fx);
    backend_free(be);
}

static int need_fixture(void)
{
    if (!fx_tried) {
        fx_tried = 1;
        fx = fixture_from_python("ref_models.py", &fx_skip);
        be = backend_cpu_init();
    }
    if (fx_skip)
        return FX_SKIP;
    return fx && be ? 0 : 1;
}

static const struct gen_config GCFG = {8, 2};
static const struct disc_config DCFG = {8};

/* Build G then D from one rng seeded 1234, like the reference script. */
static void build(struct net **G, struct net **D)
{
    rng r;
    rng_seed(&r, 1234);
    *G = gen_new(be, &GCFG, &r);
    *D = disc_new(be, &DCFG, &r);
}

/* Set every tensor of net to the fixture's "init.<tag>.<name>". */
static int load_init(struct net *net, const char *tag)
{
    for (int i = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        char name[160];
        snprintf(name, sizeof name, "init.%s.%s", tag, t->name);
        const struct fx_tensor *ft = fixture_get(fx, name);
        EXPECT(ft && (size_t)ft->n == t->numel, "%s", name);
        if (t->kind == NET_COUNTER)
            *(int64_t *)t->data = (int64_t)ft->data[0];
        else
            memcpy(t->data, ft->data, t->numel * sizeof(float));
    }
    return 0;
}

static int test_init_bit_exact(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct net *G, *D;
    build(&G, &D);
    EXPECT(G && D, "%s", err_msg());
    int bad = 0;
    struct net *nets[2] = {G, D};
    const char *tags[2] = {"G", "D"};
    for (int k = 0; k < 2; k++) {
        int n = net_tensor_count(nets[k]), want = 0;
        for (int i = 0; i < fx->count; i++) {
            char pre[16];
            snprintf(pre, sizeof pre, "init.%s.", tags[k]);
            want += !strncmp(fx->t[i].name, pre, strlen(pre));
        }
        EXPECT(n == want, "%s: %d tensors, torch state_dict has %d", tags[k], n, want);
        for (int i = 0; i < n; i++) {
            const struct net_tensor *t = net_tensor_at(nets[k], i);
            char name[160];
            snprintf(name, sizeof name, "init.%s.%s", tags[k], t->name);
            const struct fx_tensor *ft = fixture_get(fx, name);
            if (!ft || (size_t)ft->n != t->numel) {
                bad = 1;
                continue;
            }
            for (int d = 0; d < t->ndim; d++)
                bad |= t->shape[d] != ft->shape[d];
            if (t->kind == NET_COUNTER) {
                bad |= *(int64_t *)t->data != (int64_t)ft->data[0];
                continue;
            }
            /* exact: same MT19937 stream, same float bounds */
            if (check_tensor(name, t->data, ft->data, ft->n, 0, 0))
                bad = 1;
        }
    }
    net_free(G), net_free(D);
    return bad;
}

/* forward + backward of one net in one mode, compared with "<tag>.<mode>.*" */
static int run_case(struct net *net, const char *tag, const char *mode)
{
    char pre[32];
    snprintf(pre, sizeof pre, "%s.%s", tag, mode);
    net_set_training(net, !strcmp(mode, "train"));
    EXPECT(net_zero_grad(net) == 0, "zero_grad");
    struct net_acts *a = net_acts_new(net, 2, 32, 32);
    EXPECT(a, "%s", err_msg());
    long nx = 2 * 3 * 32 * 32;
    float *dx = calloc(nx, sizeof(float));
    int bad = net_forward(a, fxd(fx, pre, "x")) != 0;
    bad |= net_backward(a, fxd(fx, pre, "g"), dx) != 0;
    char label[160];
    snprintf(label, sizeof label, "%s.out", pre);
    bad |= check_tensor(label, net_acts_output(a, NULL), fxd(fx, pre, "out"), (long)net_acts_output_numel(a),
                        1e-5, 1e-4);
    snprintf(label, sizeof label, "%s.dx", pre);
    bad |= check_tensor(label, dx, fxd(fx, pre, "dx"), nx, 1e-5, 1e-4);
    for (int i = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        char name[160];
        if (t->kind == NET_PARAM) {
            snprintf(name, sizeof name, "%s.grad.%s", pre, t->name);
            const struct fx_tensor *ft = fixture_get(fx, name);
            bad |= !ft || check_tensor(name, t->grad, ft->data, ft->n, 2e-4, 1e-3);
        } else {
            snprintf(name, sizeof name, "%s.buf.%s", pre, t->name);
            const struct fx_tensor *ft = fixture_get(fx, name);
            if (!ft) {
                bad = 1;
            } else if (t->kind == NET_COUNTER) {
                bad |= *(int64_t *)t->data != (int64_t)ft->data[0];
            } else {
                bad |= check_tensor(name, t->data, ft->data, ft->n, 1e-5, 1e-4);
            }
        }
    }
    net_acts_free(a);
    free(dx);
    return bad;
}

static int test_generator(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct net *G, *D;
    build(&G, &D);
    EXPECT(G && D && !load_init(G, "G"), "build");
    /* train then eval, on the same net: the eval forward uses the running
     * statistics the train forward just updated, as in the script */
    int bad = run_case(G, "G", "train") | run_case(G, "G", "eval");
    net_free(G), net_free(D);
    return bad;
}

static int test_discriminator(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct net *G, *D;
    build(&G, &D);
    EXPECT(G && D && !load_init(D, "D"), "build");
    int bad = run_case(D, "D", "train") | run_case(D, "D", "eval");
    net_free(G), net_free(D);
    return bad;
}

/* Two activation sets of one generator: forward x1, forward x2, backward 2,
 * backward 1.  Gradients accumulate; BN statistics see both batches. */
static int test_two_calls(void)
{
    int rc = need_fixture();
    if (rc)
        return rc;
    struct net *G, *D;
    build(&G, &D);
    EXPECT(G && D && !load_init(G, "G"), "build");
    /* the reference ran G train + eval before: replay those forwards' BN updates */
    net_set_training(G, 1);
    struct net_acts *a1 = net_acts_new(G, 2, 32, 32), *a2 = net_acts_new(G, 2, 32, 32);
    EXPECT(a1 && a2, "%s", err_msg());
    int bad = net_forward(a1, fxd(fx, "G.train", "x")) != 0;
    bad |= net_zero_grad(G) != 0;
    bad |= net_forward(a1, fxd(fx, "G.two", "x1")) | net_forward(a2, fxd(fx, "G.two", "x2"));
    bad |= net_backward(a2, fxd(fx, "G.two", "g2"), NULL) | net_backward(a1, fxd(fx, "G.two", "g1"), NULL);
    bad |= check_tensor("G.two.out1", net_acts_output(a1, NULL), fxd(fx, "G.two", "out1"),
                        (long)net_acts_output_numel(a1), 1e-5, 1e-4);
    bad |= check_tensor("G.two.out2", net_acts_output(a2, NULL), fxd(fx, "G.two", "out2"),
                        (long)net_acts_output_numel(a2), 1e-5, 1e-4);
    for (int i = 0; i < net_tensor_count(G); i++) {
        const struct net_tensor *t = net_tensor_at(G, i);
        char name[160];
        snprintf(name, sizeof name, "G.two.%s.%s", t->kind == NET_PARAM ? "grad" : "buf", t->name);
        const struct fx_tensor *ft = fixture_get(fx, name);
        if (!ft) {
            bad = 1;
            continue;
        }
        if (t->kind == NET_PARAM)
            bad |= check_tensor(name, t->grad, ft->data, ft->n, 2e-4, 1e-3);
        else if (t->kind == NET_BUFFER)
            bad |= check_tensor(name, t->data, ft->data, ft->n, 1e-5, 1e-4);
        else
            EXPECT(*(int64_t *)t->data == (int64_t)ft->data[0], "%s: %lld vs %g", name,
                   (long long)*(int64_t *)t->data, ft->data[0]);
    }
    net_acts_free(a1), net_acts_free(a2);
    net_free(G), net_free(D);
    return bad != 0;
}

/* Needs no torch: names, counts, slabs, size errors. */
static int test_layout(void)
{
    backend_t b = backend_cpu_init();
    rng r;
    rng_seed(&r, 0);
    struct net *G = gen_new(b, &(struct gen_config){32, 9}, &r);
    struct net *D = disc_new(b, &(struct disc_config){32}, &r);
    EXPECT(G && D, "%s", err_msg());
    size_t np;
    net_params(G, &np);
    /* reference Generator ngf 32, 9 blocks: 2,855,811 parameters (torch count) */
    EXPECT(np == 2855811, "G has %zu parameters", np);
    const struct net_tensor *t = net_tensor_find(G, "model.19.weight");
    EXPECT(t && t->shape[0] == 128 && t->shape[1] == 64 && t->shape[2] == 3, "model.19.weight");
    EXPECT(net_tensor_find(G, "model.18.conv_block.6.running_var"), "block 8");
    EXPECT(net_tensor_find(G, "model.26.bias"), "model.26");
    t = net_tensor_find(G, "model.2.num_batches_tracked");
    EXPECT(t && t->kind == NET_COUNTER && t->ndim == 0, "nbt");
    EXPECT(net_tensor_find(D, "model.11.weight") && net_tensor_find(D, "model.3.running_mean"), "D names");
    net_params(D, &np);
    EXPECT(np == 694369, "D has %zu parameters", np);
    EXPECT(net_acts_new(D, 1, 16, 16) == NULL, "16x16 accepted by D");
    net_free(G), net_free(D), net_free(NULL), net_acts_free(NULL);
    backend_free(b);
    return 0;
}

FX_MAIN(T(test_layout), T(test_init_bit_exact), T(test_generator), T(test_discriminator), T(test_two_calls))
