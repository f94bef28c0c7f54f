/*
 * cyclegan-ckpt: the training state of a cyclegan (the four networks, their
 * Adams, the loss scaler, the RNG, the configuration and the schedule
 * position) saved to and loaded from a training checkpoint, and the
 * checkpoint's metadata read on its own.  See cyclegan.h; the networks and
 * the training step are cyclegan.c.
 */
#include "cyclegan.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cyclegan-impl.h"
#include "base/err.h"
#include "base/num.h"
#include "format/safetensors.h"
#include "image/transform.h"

static const char *const NET_TAG[4] = {"G", "F", "DX", "DY"};

static int meta_num_(ckpt_out *c, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return ckpt_out_meta(c, key, buf);
}

/* cJSON prints numbers with 17 significant digits, so they read back exactly. */
static int meta_json_(ckpt_out *c, const char *key, cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s)
        return err_set("out of memory");
    int rc = ckpt_out_meta(c, key, s);
    cJSON_free(s);
    return rc;
}

static cJSON *config_json_(const struct cyclegan_config *cfg, int n_epochs)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "lr_g", cfg->lr_g);
    cJSON_AddNumberToObject(o, "lr_d", cfg->lr_d);
    cJSON_AddNumberToObject(o, "beta1", cfg->beta1);
    cJSON_AddNumberToObject(o, "beta2", cfg->beta2);
    cJSON_AddNumberToObject(o, "eps", cfg->eps);
    cJSON_AddNumberToObject(o, "weight_decay", cfg->weight_decay);
    cJSON_AddNumberToObject(o, "lambda_adv", cfg->lambda_adv);
    cJSON_AddNumberToObject(o, "lambda_cyc", cfg->lambda_cyc);
    cJSON_AddNumberToObject(o, "lambda_id", cfg->lambda_id);
    cJSON_AddNumberToObject(o, "clip_norm", cfg->clip_norm);
    cJSON_AddNumberToObject(o, "batch", cfg->batch);
    cJSON_AddNumberToObject(o, "size", cfg->size);
    cJSON_AddNumberToObject(o, "resize", cfg->resize > 0 ? cfg->resize : transform_resize_size(cfg->size));
    cJSON_AddNumberToObject(o, "ngf", cfg->gen.ngf);
    cJSON_AddNumberToObject(o, "n_blocks", cfg->gen.n_blocks);
    cJSON_AddNumberToObject(o, "ndf", cfg->disc.ndf);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed); /* exact below 2^53 */
    if (n_epochs > 0)
        cJSON_AddNumberToObject(o, "epochs", n_epochs);
    return o;
}

static cJSON *param_groups_json_(const struct adam *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "lr", a->lr);
    cJSON_AddNumberToObject(o, "initial_lr", a->initial_lr);
    cJSON *b = cJSON_AddArrayToObject(o, "betas");
    if (b) {
        cJSON_AddItemToArray(b, cJSON_CreateNumber(a->beta1));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(a->beta2));
    }
    cJSON_AddNumberToObject(o, "eps", a->eps);
    cJSON_AddNumberToObject(o, "weight_decay", a->weight_decay);
    return o;
}

/* Moments per parameter tensor N of net k, in model.parameters() order. */
static int add_opt_(ckpt_out *c, struct cyclegan *cg, int k)
{
    struct net *net = cg_net_at(cg, k);
    struct adam *a = cg_opt_at(cg, k);
    if (a->step == 0)
        return 0; /* torch: no state before the first step */
    const float *base = net_params(net, NULL);
    char name[128];
    for (int i = 0, N = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        if (t->kind != NET_PARAM)
            continue;
        size_t off = (size_t)((const float *)t->data - base);
        snprintf(name, sizeof name, "opt_%s.state.%d.exp_avg", NET_TAG[k], N);
        if (ckpt_out_add_f32(c, name, t->shape, t->ndim, cg->be, a->exp_avg + off))
            return -1;
        snprintf(name, sizeof name, "opt_%s.state.%d.exp_avg_sq", NET_TAG[k], N);
        if (ckpt_out_add_f32(c, name, t->shape, t->ndim, cg->be, a->exp_avg_sq + off))
            return -1;
        snprintf(name, sizeof name, "opt_%s.state.%d.step", NET_TAG[k], N);
        if (ckpt_out_add_f32_scalar(c, name, (float)a->step))
            return -1;
        N++;
    }
    return 0;
}

/* GradScaler.state_dict() */
static cJSON *scaler_json_(const struct cyclegan_scaler *sc)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "scale", sc->scale);
        cJSON_AddNumberToObject(o, "growth_factor", 2.0);
        cJSON_AddNumberToObject(o, "backoff_factor", 0.5);
        cJSON_AddNumberToObject(o, "growth_interval", SCALER_INTERVAL);
        cJSON_AddNumberToObject(o, "_growth_tracker", sc->growth_tracker);
        cJSON_AddNumberToObject(o, "skipped", (double)sc->skipped);
    }
    return o;
}

int cyclegan_save(struct cyclegan *cg, const char *path, const struct cyclegan_meta *meta)
{
    static const struct cyclegan_meta zero;
    if (!meta)
        meta = &zero;
    ckpt_out *c = ckpt_out_new();
    if (!c)
        return err_set("%s: out of memory", path);
    int rc = ckpt_out_meta(c, "format", CKPT_FORMAT) ||
             ckpt_out_meta(c, "format_version", CKPT_FORMAT_VERSION) || ckpt_out_meta(c, "kind", "train") ||
             meta_num_(c, "epoch", meta->epoch) || meta_num_(c, "step", meta->step) ||
             meta_num_(c, "epoch_step", meta->epoch_step) || meta_num_(c, "sched_epoch", meta->sched_epoch);
    char key[64];
    for (int k = 0; k < 4 && !rc; k++) {
        snprintf(key, sizeof key, "opt_%s.param_groups", NET_TAG[k]);
        rc = meta_json_(c, key, param_groups_json_(cg_opt_at(cg, k)));
    }
    if (!rc && meta->has_rng) {
        uint8_t raw[RNG_STATE_BYTES];
        char hex[2 * RNG_STATE_BYTES + 1];
        rng_save(&meta->rng, raw);
        for (int i = 0; i < RNG_STATE_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        rc = ckpt_out_meta(c, "rng", hex);
    }
    if (!rc)
        rc = meta_json_(c, "config", config_json_(&cg->cfg, meta->n_epochs));
    if (!rc && cg->scaler.on)
        rc = meta_json_(c, "scaler", scaler_json_(&cg->scaler));
    for (int k = 0; k < 4 && !rc; k++) {
        snprintf(key, sizeof key, "%s.", NET_TAG[k]);
        rc = ckpt_out_add_net(c, key, cg_net_at(cg, k));
    }
    for (int k = 0; k < 4 && !rc; k++)
        rc = add_opt_(c, cg, k);
    if (!rc)
        rc = ckpt_out_save(c, path);
    ckpt_out_free(c);
    return rc ? err_wrap("cyclegan_save %s", path) : 0;
}

static double json_num_(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Metadata key as an integer in [min, max]; 0 when absent (older files). */
static int parse_i64_(const st_file *f, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const char *s = st_meta(f, key);
    *out = 0;
    if (s && num_parse_i64(s, min, max, out))
        return err_wrap("metadata '%s'", key);
    return 0;
}

int cyclegan_meta_read(const st_file *f, struct cyclegan_meta *m)
{
    int rc = parse_i64_(f, "epoch", 0, CYCLEGAN_MAX_EPOCHS, &m->epoch) ||
             parse_i64_(f, "step", 0, CYCLEGAN_MAX_STEPS, &m->step) ||
             parse_i64_(f, "epoch_step", 0, CYCLEGAN_MAX_STEPS, &m->epoch_step) ||
             parse_i64_(f, "sched_epoch", 0, CYCLEGAN_MAX_EPOCHS, &m->sched_epoch);
    if (!rc && m->epoch_step > m->step)
        rc = err_set("metadata 'epoch_step' = %lld is more than 'step' = %lld", (long long)m->epoch_step,
                     (long long)m->step);
    return rc ? err_wrap("%s", st_path(f)) : 0;
}

static int load_opt_(const st_file *f, struct cyclegan *cg, int k)
{
    struct net *net = cg_net_at(cg, k);
    struct adam *a = cg_opt_at(cg, k);
    char name[128];
    snprintf(name, sizeof name, "opt_%s.", NET_TAG[k]);
    int have = st_prefix_range(f, name, NULL);
    if (!have)
        return adam_reset(a); /* weights only / never stepped */
    const float *base = net_params(net, NULL);
    long step = -1;
    int N = 0;
    for (int i = 0; i < net_tensor_count(net); i++) {
        const struct net_tensor *t = net_tensor_at(net, i);
        if (t->kind != NET_PARAM)
            continue;
        size_t off = (size_t)((const float *)t->data - base);
        snprintf(name, sizeof name, "opt_%s.state.%d.exp_avg", NET_TAG[k], N);
        if (ckpt_load_f32(f, name, t->shape, t->ndim, cg->be, a->exp_avg + off))
            return -1;
        snprintf(name, sizeof name, "opt_%s.state.%d.exp_avg_sq", NET_TAG[k], N);
        if (ckpt_load_f32(f, name, t->shape, t->ndim, cg->be, a->exp_avg_sq + off))
            return -1;
        snprintf(name, sizeof name, "opt_%s.state.%d.step", NET_TAG[k], N);
        float sv;
        if (st_read_f32(f, name, &sv, NULL, 0))
            return -1;
        if (!(sv >= 1 && sv < 16777216.0f && sv == (float)(long)sv))
            return err_set("%s: '%s' = %g is not a step count", st_path(f), name, (double)sv);
        if (step >= 0 && (long)sv != step)
            return err_set("%s: '%s' = %g differs from parameter 0's step %ld (every parameter "
                           "of a net must have been stepped together)",
                           st_path(f), name, (double)sv, step);
        step = (long)sv;
        N++;
    }
    /* Every tensor above was there; anything more is not this optimiser's. */
    if (have != 3 * N)
        return err_set("%s: %d tensors under 'opt_%s.', but Adam over %d parameters has %d", st_path(f), have,
                       NET_TAG[k], N, 3 * N);
    a->step = step;
    return 0;
}

/* A number of o in [min, max] (finite), or -1 + err_set naming the field. */
static int json_num_in_(const st_file *f, const char *key, const cJSON *o, const char *field, double min,
                        double max, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max)
        return err_set("%s: metadata '%s': \"%s\" is missing or not a number in [%g, %g]", st_path(f), key,
                       field, min, max);
    *out = v->valuedouble;
    return 0;
}

/* An optimiser's hyperparameters, as written by param_groups_json_.  The
 * key may be absent (a weights-only file: the options' values stay); when
 * present every field must be there and in range (cyclegan-step's option
 * ranges), or the resume stops naming it: a run must never go on quietly
 * with other hyperparameters than the ones it saved. */
static int load_param_groups_(const st_file *f, struct adam *a, const char *tag)
{
    char key[64];
    snprintf(key, sizeof key, "opt_%s.param_groups", tag);
    const char *s = st_meta(f, key);
    if (!s)
        return 0;
    cJSON *o = cJSON_Parse(s);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return err_set("%s: metadata '%s' is not a JSON object", st_path(f), key);
    }
    double lr, initial_lr, eps, wd, beta[2];
    int rc = json_num_in_(f, key, o, "lr", 0, 10, &lr) ||
             json_num_in_(f, key, o, "initial_lr", 0, 10, &initial_lr) ||
             json_num_in_(f, key, o, "eps", 0, 1, &eps) ||
             json_num_in_(f, key, o, "weight_decay", 0, 10, &wd);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "betas");
    for (int i = 0; i < 2 && !rc; i++) {
        const cJSON *x = cJSON_IsArray(b) && cJSON_GetArraySize(b) == 2 ? cJSON_GetArrayItem(b, i) : NULL;
        if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < 1))
            rc = err_set("%s: metadata '%s': \"betas\" is missing or not two numbers in [0, 1)", st_path(f),
                         key);
        else
            beta[i] = x->valuedouble;
    }
    if (!rc) {
        a->lr = lr, a->initial_lr = initial_lr, a->eps = eps, a->weight_decay = wd;
        a->beta1 = beta[0], a->beta2 = beta[1];
    }
    cJSON_Delete(o);
    return rc ? -1 : 0;
}

static int load_rng_(const st_file *f, struct cyclegan_meta *meta)
{
    const char *hex = st_meta(f, "rng");
    meta->has_rng = 0;
    if (!hex)
        return 0;
    if (strlen(hex) != 2 * RNG_STATE_BYTES)
        return err_set("%s: metadata 'rng' has the wrong length", st_path(f));
    uint8_t raw[RNG_STATE_BYTES];
    for (int i = 0; i < RNG_STATE_BYTES; i++) {
        unsigned v;
        char two[3] = {hex[2 * i], hex[2 * i + 1], 0};
        if (sscanf(two, "%2x", &v) != 1)
            return err_set("%s: metadata 'rng' is not hex", st_path(f));
        raw[i] = (uint8_t)v;
    }
    if (rng_load(&meta->rng, raw))
        return err_set("%s: metadata 'rng' is not a generator state", st_path(f));
    meta->has_rng = 1;
    return 0;
}

/* A file written with loss scaling restores its scaler; one without leaves
 * the scaler as the precision set it (an fp32 run resumed in fp16 starts
 * at the initial scale). */
static int load_scaler_(const st_file *f, struct cyclegan_scaler *sc)
{
    const char *s = st_meta(f, "scaler");
    if (!s)
        return 0;
    cJSON *o = cJSON_Parse(s);
    double scale = o ? json_num_(o, "scale", -1) : -1, tracker = o ? json_num_(o, "_growth_tracker", -1) : -1;
    double skipped = o ? json_num_(o, "skipped", 0) : 0;
    cJSON_Delete(o);
    if (!(scale > 0) || !isfinite(scale) || tracker < 0 || tracker >= SCALER_INTERVAL)
        return err_set("%s: metadata 'scaler' is not a loss-scaler state", st_path(f));
    sc->on = 1;
    sc->scale = (float)scale;
    sc->growth_tracker = (int)tracker;
    sc->skipped = (long)skipped;
    return 0;
}

/* cyclegan_load for the first n_nets of G, F, DX, DY. */
static int load_(struct cyclegan *cg, const char *path, struct cyclegan_meta *meta, int n_nets)
{
    st_file *f = st_open(path);
    if (!f)
        return -1;
    struct cyclegan_meta m = {0};
    int rc = ckpt_check_st_format(f);
    char prefix[8];
    for (int k = 0; k < n_nets && !rc; k++) {
        snprintf(prefix, sizeof prefix, "%s.", NET_TAG[k]);
        rc = ckpt_load_net(f, prefix, cg_net_at(cg, k));
    }
    for (int k = 0; k < n_nets && !rc; k++)
        rc = load_opt_(f, cg, k);
    for (int k = 0; k < n_nets && !rc; k++)
        rc = load_param_groups_(f, cg_opt_at(cg, k), NET_TAG[k]);
    if (!rc) {
        const char *s = st_meta(f, "config");
        cJSON *o = s ? cJSON_Parse(s) : NULL;
        if (o) {
            struct cyclegan_config *c = &cg->cfg;
            c->lambda_adv = json_num_(o, "lambda_adv", c->lambda_adv);
            c->lambda_cyc = json_num_(o, "lambda_cyc", c->lambda_cyc);
            c->lambda_id = json_num_(o, "lambda_id", c->lambda_id);
            c->clip_norm = json_num_(o, "clip_norm", c->clip_norm);
            int64_t ne = 0;
            if (num_whole_i64(json_num_(o, "epochs", 0), 0, CYCLEGAN_MAX_EPOCHS, &ne))
                rc = err_wrap("%s: metadata 'config': \"epochs\"", path);
            m.n_epochs = (int)ne;
            cJSON_Delete(o);
        }
        rc = rc || load_rng_(f, &m) || load_scaler_(f, &cg->scaler) || cyclegan_meta_read(f, &m);
    }
    st_free(f);
    if (rc)
        return -1;
    if (meta)
        *meta = m;
    return 0;
}

int cyclegan_load(struct cyclegan *cg, const char *path, struct cyclegan_meta *meta)
{
    return load_(cg, path, meta, 4);
}

int cyclegan_load_generators(struct cyclegan *cg, const char *path, struct cyclegan_meta *meta)
{
    return load_(cg, path, meta, 2);
}

int cyclegan_has_discriminators(const char *path)
{
    st_file *f = st_open(path);
    if (!f)
        return -1;
    int n = st_prefix_range(f, "DX.", NULL) + st_prefix_range(f, "DY.", NULL);
    st_free(f);
    return n > 0;
}

int cyclegan_config_load(const char *path, struct cyclegan_config *cfg)
{
    cyclegan_config_default(cfg);
    st_file *f = st_open(path);
    if (!f)
        return -1;
    /* All four nets are checked against the file before anything is built
     * from it: F must be G's size and DY DX's. */
    struct gen_config gf;
    struct disc_config dy;
    int rc = ckpt_check_st_format(f) || ckpt_gen_config(f, "G.", &cfg->gen) || ckpt_gen_config(f, "F.", &gf);
    /* a weights file for translation has G and F only: the default
     * discriminators are built, and cyclegan_load then names what is missing */
    dy = cfg->disc;
    if (!rc && (st_prefix_range(f, "DX.", NULL) || st_prefix_range(f, "DY.", NULL)))
        rc = ckpt_disc_config(f, "DX.", &cfg->disc) || ckpt_disc_config(f, "DY.", &dy);
    if (!rc && (gf.ngf != cfg->gen.ngf || gf.n_blocks != cfg->gen.n_blocks))
        rc = err_set("%s: F (ngf %d, %d blocks) is not the size of G (ngf %d, %d blocks)", path, gf.ngf,
                     gf.n_blocks, cfg->gen.ngf, cfg->gen.n_blocks);
    if (!rc && dy.ndf != cfg->disc.ndf)
        rc = err_set("%s: DY (ndf %d) is not the size of DX (ndf %d)", path, dy.ndf, cfg->disc.ndf);
    const char *s = rc ? NULL : st_meta(f, "config");
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (o) {
        cfg->lr_g = json_num_(o, "lr_g", cfg->lr_g);
        cfg->lr_d = json_num_(o, "lr_d", cfg->lr_d);
        cfg->beta1 = json_num_(o, "beta1", cfg->beta1);
        cfg->beta2 = json_num_(o, "beta2", cfg->beta2);
        cfg->eps = json_num_(o, "eps", cfg->eps);
        cfg->weight_decay = json_num_(o, "weight_decay", cfg->weight_decay);
        cfg->lambda_adv = json_num_(o, "lambda_adv", cfg->lambda_adv);
        cfg->lambda_cyc = json_num_(o, "lambda_cyc", cfg->lambda_cyc);
        cfg->lambda_id = json_num_(o, "lambda_id", cfg->lambda_id);
        cfg->clip_norm = json_num_(o, "clip_norm", cfg->clip_norm);
        cfg->batch = (int)json_num_(o, "batch", cfg->batch);
        cfg->size = (int)json_num_(o, "size", cfg->size);
        cfg->resize = (int)json_num_(o, "resize", 0);
        cfg->seed = (uint64_t)json_num_(o, "seed", (double)cfg->seed);
        cJSON_Delete(o);
    }
    st_free(f);
    return rc ? -1 : 0;
}
