/*
 * cyclegan-step: the trainer.  Reads young/old tensor records (and epoch
 * records), pairs them into batches and runs the reference's CycleGAN
 * update per batch; saves the whole training state so a later run resumes
 * exactly; writes metrics records.  With --eval it only measures the losses.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "stream/batcher.h"
#include "tool/cli.h"
#include "nn/checkpoint.h"
#include "nn/cyclegan.h"
#include "tool/device.h"
#include "dist/dist.h"
#include "base/err.h"
#include "base/fileout.h"
#include "tool/progress.h"
#include "format/safetensors.h"
#include "stream/stream.h"
#include "format/tfevents.h"

static void usage(FILE *f, int status)
{
    fprintf(
        f,
        "usage: cyclegan-step [options] < tensors\n"
        "Train the aging CycleGAN on young/old tensor records (from aug), or --eval it.\n\n"
        "  --in EP            input stream (default -); --producers N for ZeroMQ fan-in\n"
        "  --queue-mb N       most MiB of images held while they wait for their epoch or their\n"
        "                     partner, e.g. from a fan-in producer ahead of another (4096)\n"
        "  --ckpt FILE        start from this checkpoint (training state or weights)\n"
        "  --ckpt-out FILE    save the training state here (default outputs/checkpoints/last.safetensors)\n"
        "  --resume           start from --ckpt-out when it exists\n"
        "  --save-every N     also save every N steps (default: epoch ends and signals only)\n"
        "  --metrics EP       metrics records (default -); --json writes JSON lines instead\n"
        "  --log-every N      a metrics record every N steps (default 10)\n"
        "  --tensorboard DIR  also write the metrics as TensorBoard event files in DIR\n"
        "  --eval             measure the losses in eval mode over the input; no update; a\n"
        "                     checkpoint of G and F only gives null for the losses that need DX, DY\n"
        "  --state            print epoch=E step=S epoch_step=K of --ckpt and exit\n"
        "  --phase NAME       the phase named in --eval's metrics record (default val)\n"
        "  --max-steps N      stop (and save) after N steps\n"
        "  --batch N          images per domain per step (default 4)\n"
        "  --epochs N         total epochs, for the LR schedule (default: the epoch records')\n"
        "  --lr-g X --lr-d X  learning rates (2e-4, 1e-4)\n"
        "  --beta1 X --beta2 X --eps X --weight-decay X    Adam (0.5, 0.999, 1e-8, 1e-4)\n"
        "  --lambda-adv X --lambda-cyc X --lambda-id X     loss weights (2, 4, 0.5)\n"
        "  --clip-norm X      max gradient norm, 0 = off (1.0)\n"
        "  --ngf N --ndf N --blocks N   model sizes (32, 32, 9)\n"
        "  --seed N           initialisation seed, torch.manual_seed semantics (0)\n"
        "  --resize R         the framing aug used (aug --resize), recorded in checkpoints so\n"
        "                     translate and serve frame faces alike (default size*306/256)\n"
        "  --precision P      fp32, bf16 or fp16 convolutions, or auto: bf16 on a GPU,\n"
        "                     fp32 on the CPU (default fp32; on the CPU bf16 uses its bf16\n"
        "                     units where present, else 16-bit is emulated, slowly)\n"
        "  --loss-scale S     initial dynamic loss scale, 0 = off (default: 65536 with\n"
        "                     fp16, off otherwise)\n"
        "  --device D         cpu, cuda, cuda:N or auto (default: $AGING_DEVICE, else auto)\n"
        "  -q, --quiet        no \"resuming from\" line (train.sh continues its own run each epoch)\n"
        "Under mpirun -np N (data parallel, docs/distributed.md) every rank reads the whole stream\n"
        "(--in, its own pipeline) and trains on its N-th of each --batch; rank 0 writes the outputs.\n"
        "  --help, --version\n");
    exit(status);
}

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig)
{
    stop_signal = sig;
}

enum { N_LOSSES = 11 }; /* the values of a metrics record: loss_keys below */

struct trainer {
    struct cyclegan_config cfg;
    backend_t be;
    struct cyclegan *cg;
    const char *ckpt, *ckpt_out;
    int eval, json, log_every, save_every, epochs_opt, quiet;
    int gen_only;      /* --eval of a checkpoint without DX and DY */
    double loss_scale; /* --loss-scale, < 0 when not given */
    long max_steps;
    size_t queue_mb; /* --queue-mb: images held for later epochs and partners */
    const char *phase;
    const char *metrics_name; /* for messages: the path, or "stdout" */
    stream_out *metrics;
    FILE *jsonf;
    tfevents *tb;              /* --tensorboard: the same scalars as event files */
    struct cyclegan_meta meta; /* epoch = completed epochs, epoch_step = steps into the next */
    float *dx, *dy;            /* device batch buffers */
    /* running sums for the epoch / eval averages */
    double sum[N_LOSSES];
    long nsum, images;
    double t_log;
    long images_log;
    /* the progress line: steps per epoch (from the epoch record's pair
     * count; 0 = unknown), epochs, steps trained by this process and since when */
    progress *prog;
    long epoch_len, eval_total;
    int n_epochs;
    long trained;
    double t_first;
    int rank, nranks;        /* dist: this rank of nranks (0 of 1 without mpirun) */
    struct dist_shard shard; /* which images of each batch are this rank's */
    int agreed_end, checked; /* the ranks agreed to stop; they checked their nets agree */
};

static double now(void)
{
    return progress_now();
}

/* Whether a checkpoint file exists at path (a failed save leaves it as it
 * was: lib/base/fileout.h). */
static bool have_checkpoint(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Save the training state; -1 with a message that says whether an earlier
 * checkpoint is left to resume from. */
static int save_state(struct trainer *T)
{
    if (!T->cg || T->eval || T->rank)
        return 0; /* every rank holds the same nets: rank 0 writes them */
    bool had = have_checkpoint(T->ckpt_out);
    if (cyclegan_save(T->cg, T->ckpt_out, &T->meta) == 0)
        return 0;
    char why[1024];
    snprintf(why, sizeof why, "%s", err_msg());
    return err_set("saving %s: %s (%s)", T->ckpt_out, why,
                   had ? "the previous checkpoint is intact" : "there was no previous checkpoint");
}

static void save(struct trainer *T)
{
    if (save_state(T) != 0)
        die("%s", err_msg());
}

/* A metrics output failed: a full disk, or its reader went away (EPIPE:
 * SIGPIPE is ignored so that this can run).  The run stops, but the
 * training done so far is saved first. */
static void die_output(struct trainer *T)
{
    char what[1024];
    snprintf(what, sizeof what, "%s", err_msg());
    if (!T->cg || T->eval)
        die("%s", what);
    if (save_state(T) != 0)
        die("%s; %s", what, err_msg());
    die("%s; saved %s at step %lld (--resume continues)", what, T->ckpt_out, (long long)T->meta.step);
}

static void emit(struct trainer *T, record *r)
{
    int rc;
    if (T->rank)
        return; /* rank 0 writes the metrics (of all ranks: dist_mean) */
    if (T->json) {
        /* flushed and checked record by record, so that a failure is
         * reported at the record it lost, not one record later */
        rc = record_write_json(r, T->jsonf);
        if (rc != 0 || fflush(T->jsonf) != 0 || ferror(T->jsonf))
            rc = err_set("writing %s failed:", T->metrics_name);
    } else {
        rc = stream_out_put(T->metrics, r);
    }
    if (rc != 0) {
        const char *phase = record_get_str(r, "phase");
        err_wrap("metrics record '%s' of step %lld", phase ? phase : "?", (long long)T->meta.step);
        die_output(T);
    }
}

/* The reference logs its adversarial, cycle and identity terms weighted by
 * their lambdas, so that loss_gen_total is their sum; the unweighted means
 * follow under their own names. */
static const char *const loss_keys[N_LOSSES] = {"loss_DX",   "loss_DY", "loss_f_adv",     "loss_g_adv",
                                                "loss_cyc",  "loss_id", "loss_gen_total", "mse_f_adv",
                                                "mse_g_adv", "l1_cyc",  "l1_id"};

static void losses_array(const struct trainer *T, const struct cyclegan_losses *l, double v[N_LOSSES])
{
    const struct cyclegan_config *c = &T->cg->cfg;
    v[0] = l->dx, v[1] = l->dy, v[6] = l->gen;
    v[7] = l->f_adv, v[8] = l->g_adv, v[9] = l->cyc, v[10] = l->id;
    v[2] = c->lambda_adv * l->f_adv, v[3] = c->lambda_adv * l->g_adv;
    v[4] = c->lambda_cyc * l->cyc, v[5] = c->lambda_id * l->id;
}

static void metrics_record(struct trainer *T, const char *phase, const double v[N_LOSSES], double throughput)
{
    record r;
    record_init(&r);
    record_set_str(&r, "kind", "metrics");
    record_set_str(&r, "phase", phase);
    record_set_int(&r, "epoch", T->meta.epoch + (T->eval ? 0 : 1));
    record_set_int(&r, "step", T->meta.step);
    for (int i = 0; i < N_LOSSES; i++)
        record_set_float(&r, loss_keys[i], v[i]);
    if (T->cg) {
        record_set_float(&r, "lr", T->cg->opt_G->lr);
        if (!T->gen_only) /* no discriminators, no discriminator learning rate */
            record_set_float(&r, "lr_d", T->cg->opt_DX->lr);
    }
    if (throughput > 0)
        record_set_float(&r, "throughput", throughput);
    if (T->cg && T->cg->scaler.on) {
        record_set_float(&r, "loss_scale", T->cg->scaler.scale);
        record_set_int(&r, "skipped_updates", T->cg->scaler.skipped);
    }
    if (T->eval) { /* T->images counts pairs: a young and an old image each */
        record_set_int(&r, "pairs", T->images);
        record_set_int(&r, "images", 2 * T->images);
    }
    emit(T, &r);
    if (T->tb) {
        char tag[64];
        int rc = 0;
        for (int i = 0; i < N_LOSSES; i++) {
            snprintf(tag, sizeof tag, "%s/%s", phase, loss_keys[i]);
            rc |= tfevents_scalar(T->tb, tag, T->meta.step, v[i]);
        }
        if (T->cg && !T->eval) { /* both learning rates: generators', discriminators' */
            snprintf(tag, sizeof tag, "%s/lr", phase);
            rc |= tfevents_scalar(T->tb, tag, T->meta.step, T->cg->opt_G->lr);
            snprintf(tag, sizeof tag, "%s/lr_d", phase);
            rc |= tfevents_scalar(T->tb, tag, T->meta.step, T->cg->opt_DX->lr);
        }
        if (throughput > 0) {
            snprintf(tag, sizeof tag, "%s/throughput", phase);
            rc |= tfevents_scalar(T->tb, tag, T->meta.step, throughput);
        }
        if (rc) {
            err_wrap("--tensorboard");
            die_output(T);
        }
    }
    record_clear(&r);
}

/* Build the model at the first batch, from the checkpoint or fresh. */
static void build(struct trainer *T, int size)
{
    struct cyclegan_config cfg = T->cfg;
    if (T->ckpt && access(T->ckpt, F_OK) == 0) {
        struct cyclegan_config file;
        if (cyclegan_config_load(T->ckpt, &file) != 0)
            die("%s", err_msg());
        cfg.gen = file.gen;
        cfg.disc = file.disc;
    } else if (T->ckpt && !T->eval && T->ckpt == T->ckpt_out) {
        T->ckpt = NULL; /* --resume without a checkpoint yet: a fresh start */
    } else if (T->ckpt) {
        die("%s: no such checkpoint", T->ckpt);
    }
    cfg.size = size;
    if (!(T->cg = cyclegan_new(T->be, &cfg)))
        die("%s", err_msg());
    if (T->loss_scale >= 0)
        cyclegan_set_loss_scale(T->cg, (float)T->loss_scale);
    if (dist_on())
        T->cg->grad_hook = dist_average;
    T->cg->cfg.batch *=
        T->nranks; /* the checkpoint records the global batch (train.sh --init_from reads it) */
    if (T->ckpt && T->eval) {
        int hd = cyclegan_has_discriminators(T->ckpt);
        if (hd < 0)
            die("%s", err_msg());
        T->gen_only = !hd;
        if (T->gen_only)
            fprintf(stderr,
                    "cyclegan-step: %s has no discriminators (G and F only): the discriminator "
                    "and adversarial losses are absent (null)\n",
                    T->ckpt);
    }
    if (T->ckpt && (T->gen_only ? cyclegan_load_generators : cyclegan_load)(T->cg, T->ckpt, &T->meta) != 0)
        die("%s", err_msg());
    if (T->ckpt) {
        /* options given on the command line win over the file's */
        struct cyclegan_config *c = &T->cg->cfg;
        c->lambda_adv = T->cfg.lambda_adv, c->lambda_cyc = T->cfg.lambda_cyc, c->lambda_id = T->cfg.lambda_id;
        c->clip_norm = T->cfg.clip_norm;
    }
    size_t bytes = (size_t)cfg.batch * 3 * size * size * sizeof(float);
    T->dx = backend_alloc(T->be, bytes);
    T->dy = backend_alloc(T->be, bytes);
    if (!T->dx || !T->dy)
        die("%s", err_msg());
    if (T->ckpt && !T->eval && !T->quiet)
        fprintf(stderr, "cyclegan-step: resuming from %s at epoch %lld, step %lld\n", T->ckpt,
                (long long)T->meta.epoch + 1, (long long)T->meta.step);
}

/* The live line of a training step: where, how fast, the losses, the ETA
 * of the epoch and of the run (from this process's own pace). */
static void show_step(struct trainer *T, int epoch, long epoch_step, int batch, const double v[N_LOSSES])
{
    if (!T->prog)
        return;
    double t = now();
    if (T->trained++ == 0)
        T->t_first = t;
    double rate = T->trained > 1 ? (T->trained - 1) / (t - T->t_first) : 0; /* steps/s after the first */
    char where[64], eta[64] = "";
    if (T->epoch_len > 0) {
        char e1[16], e2[16];
        long left = T->epoch_len - epoch_step, run_left = left + T->epoch_len * (T->n_epochs - epoch);
        snprintf(where, sizeof where, "step %ld/%ld", epoch_step, T->epoch_len);
        if (rate > 0)
            snprintf(eta, sizeof eta, "  ETA epoch %s, run %s", progress_eta(e1, sizeof e1, left / rate),
                     progress_eta(e2, sizeof e2, run_left / rate));
    } else {
        snprintf(where, sizeof where, "step %ld", epoch_step);
    }
    progress_line(T->prog, "cyclegan-step: epoch %d/%d %s  %.1f img/s  gen %.3f DX %.3f DY %.3f%s", epoch,
                  T->n_epochs, where, rate * 2 * batch, v[6], v[0], v[1], eta);
}

/* Data parallel: agree with the other ranks before a step (have = 1) or
 * at the end of this rank's input (have = 0).  1 when the step is to be
 * trained; 0 when the ranks stop together (a stop signal on any of them
 * stops them all at the same step); a disagreement ends the job. */
static int dist_agree_step(struct trainer *T, int have, int64_t epoch, int64_t step)
{
    if (T->agreed_end)
        return 0;
    int stop = stop_signal != 0;
    int rc = dist_agree(have, epoch, step, &stop);
    if (rc < 0)
        die("%s", err_msg());
    if (rc == 0) {
        T->agreed_end = 1;
        if (stop && !stop_signal)
            stop_signal = -1; /* another rank's signal: save and end as it does */
        return 0;
    }
    if (!T->checked) { /* once: every rank starts from the same nets (DDP broadcasts them) */
        static const char *const names[4] = {"G parameters", "F parameters", "DX parameters",
                                             "DY parameters"};
        struct net *nets[4] = {T->cg->G, T->cg->F, T->cg->DX, T->cg->DY};
        for (int i = 0; i < 4; i++) {
            size_t n;
            float *p = net_params(nets[i], &n);
            if (dist_same(T->be, p, n * sizeof *p, names[i]) != 0)
                die("%s", err_msg());
        }
        T->checked = 1;
    }
    return 1;
}

/* 0 young, 1 old, -1 neither (the batcher ignores it). */
static int record_domain(const record *r)
{
    const char *d = record_get_str(r, "domain");
    return d && strcmp(d, "young") == 0 ? 0 : d && strcmp(d, "old") == 0 ? 1 : -1;
}

/* Train (or evaluate) on the batch in b.  Batches of epochs already done
 * in the checkpoint are skipped, so a resumed stream can start anywhere. */
static void run_batch(struct trainer *T, batcher *b, int epoch, long *epoch_steps)
{
    if (!T->cg)
        build(T, b->size);
    size_t bytes = (size_t)b->batch * 3 * b->size * b->size * sizeof(float);
    struct cyclegan_losses l = {0};
    double v[N_LOSSES];
    if (T->eval) {
        if (backend_upload(T->be, T->dx, b->x, bytes) || backend_upload(T->be, T->dy, b->y, bytes) ||
            (T->gen_only ? cyclegan_eval_generators : cyclegan_eval)(T->cg, T->dx, T->dy, b->batch, &l) != 0)
            die("%s", err_msg());
        losses_array(T, &l, v);
        for (int i = 0; i < N_LOSSES; i++)
            T->sum[i] += v[i]; /* the reference averages the per-batch means */
        T->nsum++;
        T->images += b->batch;
        if (T->prog) {
            char eta[32] = "?";
            double rate = T->images / (now() - T->t_first);
            if (T->eval_total > T->images)
                progress_eta(eta, sizeof eta, (double)(T->eval_total - T->images) / rate);
            if (T->eval_total)
                progress_line(T->prog, "cyclegan-step: evaluating %s: %ld/%ld pairs, %.1f pairs/s, ETA %s",
                              T->phase, T->images, T->eval_total, rate, eta);
            else
                progress_line(T->prog, "cyclegan-step: evaluating %s: %ld pairs, %.1f pairs/s", T->phase,
                              T->images, rate);
        }
        return;
    }
    (*epoch_steps)++;
    if (epoch <= T->meta.epoch || (epoch == T->meta.epoch + 1 && *epoch_steps <= T->meta.epoch_step))
        return; /* already trained before the resume */
    if (!dist_agree_step(T, 1, epoch, *epoch_steps))
        return;
    if (backend_upload(T->be, T->dx, b->x, bytes) || backend_upload(T->be, T->dy, b->y, bytes) ||
        cyclegan_train_step(T->cg, T->dx, T->dy, b->batch, &l) != 0)
        die("step %lld: %s", (long long)T->meta.step + 1, err_msg());
    T->meta.step++;
    T->meta.epoch_step = *epoch_steps;
    losses_array(T, &l, v);
    dist_mean(v, N_LOSSES); /* the global batch's losses, the same on every rank */
    for (int i = 0; i < N_LOSSES; i++) {
        if (!isfinite(v[i]))
            die("step %lld: %s is %g; stopping (%s)", (long long)T->meta.step, loss_keys[i], v[i],
                have_checkpoint(T->ckpt_out) ? "the last checkpoint is intact"
                                             : "no checkpoint was saved yet");
        T->sum[i] += v[i];
    }
    T->nsum++;
    T->images_log += 2 * b->batch * T->nranks;
    show_step(T, epoch, *epoch_steps, b->batch * T->nranks, v);
    /* the run's first step too, so that the curves of a short run start at 1 */
    if (T->log_every && (T->meta.step % T->log_every == 0 || T->meta.step == 1)) {
        double t = now();
        metrics_record(T, "step", v, T->images_log / (t - T->t_log));
        T->t_log = t;
        T->images_log = 0;
    }
    if (T->save_every && T->meta.step % T->save_every == 0)
        save(T);
}

/* An epoch ended: schedule, average metrics, checkpoint. */
static void end_epoch(struct trainer *T, int epoch, int n_epochs)
{
    if (T->eval || epoch <= T->meta.epoch)
        return;
    if (T->nsum) { /* the epoch's mean losses, at the lr it trained with */
        double v[N_LOSSES];
        for (int i = 0; i < N_LOSSES; i++)
            v[i] = T->sum[i] / T->nsum;
        T->meta.epoch = epoch - 1;
        metrics_record(T, "train", v, 0);
    }
    T->meta.epoch = epoch;
    T->meta.epoch_step = 0;
    T->meta.sched_epoch = epoch;
    T->meta.n_epochs = n_epochs;
    if (T->cg)
        cyclegan_set_epoch(T->cg, epoch, n_epochs);
    memset(T->sum, 0, sizeof T->sum);
    T->nsum = 0;
    save(T);
    progress_end(T->prog);
}

/* Where the batches of a run stand: the epoch being trained (0: none
 * yet), the last one finished, the last epoch record seen. */
struct epochs {
    batcher b;
    int64_t cur, done, marked;
    int n_epochs;
    int in_split; /* after a `split` record: val or test images, no epoch */
    long steps;   /* steps formed in the current epoch */
};

static void start_epoch(struct trainer *T, struct epochs *E)
{
    int64_t pairs = batcher_pairs(&E->b, E->cur);
    T->n_epochs = E->n_epochs;
    T->epoch_len = pairs > 0 ? pairs / E->b.batch : 0;
    E->steps = 0;
    if (T->cg && E->cur > T->meta.epoch)
        cyclegan_set_epoch(T->cg, (int)E->cur - 1, E->n_epochs);
}

/* Run the batches the current epoch holds. */
static void drain(struct trainer *T, struct epochs *E)
{
    while (!stop_signal && batcher_ready(&E->b, E->cur)) {
        int fresh = !T->cg;
        run_batch(T, &E->b, (int)E->cur, &E->steps);
        if (fresh && T->cg && E->cur > T->meta.epoch)
            cyclegan_set_epoch(T->cg, (int)E->cur - 1, E->n_epochs);
        batcher_pop(&E->b, E->cur);
        if (T->max_steps && T->meta.step >= T->max_steps)
            stop_signal = -1;
    }
}

/* The current epoch is over: every image its epoch record announced must
 * have come (a shortfall is lost records, never skipped in silence); the
 * last incomplete batch is dropped in training and kept in evaluation. */
static void finish_epoch(struct trainer *T, struct epochs *E)
{
    int64_t pairs = batcher_pairs(&E->b, E->cur), y = batcher_received(&E->b, E->cur, 0),
            o = batcher_received(&E->b, E->cur, 1);
    if (pairs >= 0 && (y < pairs || o < pairs))
        die("epoch %lld: its epoch record announced %lld pairs, the stream held %lld young and %lld old "
            "images (records were lost)",
            (long long)E->cur, (long long)pairs, (long long)y, (long long)o);
    size_t ny = batcher_queued(&E->b, E->cur, 0), no = batcher_queued(&E->b, E->cur, 1),
           k = ny < no ? ny : no;
    if (T->eval && k > 0 && !stop_signal) {
        int batch = E->b.batch;
        E->b.batch = (int)k;
        if (batcher_ready(&E->b, E->cur))
            run_batch(T, &E->b, (int)E->cur, &E->steps);
        E->b.batch = batch;
    }
    end_epoch(T, (int)E->cur, E->n_epochs);
    batcher_close(&E->b, E->cur);
    E->done = E->cur;
    E->cur = 0;
}

/* Train what is ready, moving to the next epoch as each one completes
 * (at the end of the stream, `all`: every epoch still open, in order). */
static void advance(struct trainer *T, struct epochs *E, int all)
{
    while (!stop_signal) {
        if (!E->cur) {
            if (!(E->cur = batcher_next(&E->b, E->done)))
                return;
            start_epoch(T, E);
        }
        drain(T, E);
        if (stop_signal || (!all && !batcher_complete(&E->b, E->cur)))
            return;
        finish_epoch(T, E);
    }
}

/* The epoch a record belongs to: its own `epoch` (utk-split tags the
 * records of each epoch, so fan-in producers may interleave and drift
 * apart), else the last epoch record's (an ordered stream), else 1. */
static int64_t record_epoch(const struct epochs *E, const record *r, long n, int producers)
{
    int64_t e;
    if (record_get_int(r, "epoch", &e) == 0) {
        if (e < 1)
            die("record %ld: 'epoch' %lld is not a positive epoch", n, (long long)e);
        return e;
    }
    if (E->marked && producers > 1)
        die("record %ld: a tensor without its 'epoch' in a fan-in of %d producers, whose records of "
            "different epochs interleave (utk-split --epochs tags each record)",
            n, producers);
    return E->marked ? E->marked : 1;
}

/* Queue record n (a tensor, else ignored) in epoch e's batches. */
static void queue(struct epochs *E, const record *r, int64_t e, long n)
{
    if (batcher_add(&E->b, r, e) < 0) {
        const char *id = record_get_str(r, "id");
        die("record %ld%s%s: %s", n, id ? " " : "", id ? id : "", err_msg());
    }
}

static void train(struct trainer *T, stream_in *si, int batch, int producers)
{
    struct epochs E = {.n_epochs = T->epochs_opt};
    batcher_init(&E.b, batch, T->queue_mb << 20);
    record r;
    record_init(&r);
    int rc = 0;
    T->t_log = T->t_first = now();
    T->n_epochs = E.n_epochs;
    while (!stop_signal && (rc = stream_in_next(si, &r)) == 1) {
        long n = stream_in_count(si);
        const char *kind = record_kind(&r);
        if (strcmp(kind, "split") == 0) { /* utk-split: how many pairs follow */
            T->eval_total += record_pairs_ahead(&r);
            E.in_split = 1;
            continue;
        }
        int64_t e;
        if (T->eval) { /* one pool: every pair counts once, whatever its epoch or split */
            if (strcmp(kind, "epoch") == 0)
                T->eval_total += record_pairs_ahead(&r);
            else
                queue(&E, &r, 1, n);
            advance(T, &E, 0);
            continue;
        }
        if (strcmp(kind, "epoch") == 0) {
            int64_t ne, pairs;
            if (record_get_int(&r, "epoch", &e) != 0 || e < 1)
                die("record %ld: epoch record without a positive 'epoch'", n);
            if (!T->epochs_opt && record_get_int(&r, "epochs", &ne) == 0 && ne > 0 && ne <= INT32_MAX)
                E.n_epochs = (int)ne;
            if (record_get_int(&r, "pairs", &pairs) != 0 || pairs < 0)
                pairs = -1;
            if (pairs < 0 && producers > 1)
                die("record %ld: epoch record without 'pairs' in a fan-in of %d producers: the end of "
                    "epoch %lld cannot be told",
                    n, producers, (long long)e);
            if (e <= E.done)
                continue; /* the same epoch announced by a producer that had no image of it */
            if (E.cur && e < E.cur)
                die("record %ld: epoch %lld begins after epoch %lld (the producers must emit the "
                    "same epochs)",
                    n, (long long)e, (long long)E.cur);
            if (T->nranks > 1) {
                if (pairs < 0)
                    die("record %ld: epoch record without 'pairs': %d ranks cannot share its batches", n,
                        T->nranks);
                pairs = dist_shard_pairs(&T->shard, e, pairs);
            }
            if (batcher_announce(&E.b, e, pairs) != 0)
                die("record %ld: %s", n, err_msg());
            /* an ordered stream without pair counts: the next epoch record ends the epoch */
            if (E.cur && e > E.cur && batcher_pairs(&E.b, E.cur) < 0)
                finish_epoch(T, &E);
            if (e > E.marked)
                E.marked = e;
            E.in_split = 0;
            advance(T, &E, 0);
            continue;
        }
        if (strcmp(kind, "tensor") != 0)
            continue;
        if (E.in_split && record_get_int(&r, "epoch", &e) != 0)
            die("record %ld: a tensor after a `split` record: only train images train (utk-split --split "
                "train)",
                n);
        e = record_epoch(&E, &r, n, producers);
        int d = record_domain(&r);
        if (T->nranks > 1 && d >= 0 && !dist_shard_keep(&T->shard, e, d))
            continue; /* another rank's share of the batch */
        if (e <= E.done || (E.cur && e < E.cur))
            die("record %ld: an image of epoch %lld after that epoch %s", n, (long long)e,
                e <= E.done ? "ended (more images than its epoch record announced?)" : "was passed");
        queue(&E, &r, e, n);
        advance(T, &E, 0);
    }
    if (!stop_signal && rc < 0)
        die("%s", err_msg());
    if (!stop_signal)
        advance(T, &E, 1);
    dist_agree_step(T, 0, E.cur, E.steps); /* the others learn that this rank's input ended */
    if (stop_signal) {
        save(T);
        if (stop_signal > 0 && !T->rank) /* rank 0 saved; mpirun signals every rank */
            fprintf(stderr,
                    "cyclegan-step: stopped by signal %d at epoch %lld, step %lld; saved %s "
                    "(--resume continues)\n",
                    (int)stop_signal, (long long)(E.cur ? E.cur : E.done), (long long)T->meta.step,
                    T->ckpt_out);
    } else if (!T->cg && !T->eval) {
        die("no training batch: the input held %ld young and %ld old images (a batch needs %d of each)",
            E.b.images[0], E.b.images[1], batch);
    }
    if (T->eval) {
        if (!T->images)
            die("no complete pair of young and old images to evaluate");
        double v[N_LOSSES];
        for (int i = 0; i < N_LOSSES; i++)
            v[i] = T->sum[i] / T->nsum;
        progress_end(T->prog);
        metrics_record(T, T->phase, v, 0);
    }
    record_clear(&r);
    batcher_free(&E.b);
}

/* The progress a checkpoint records, for scripts deciding where to resume. */
static int print_state(const char *path)
{
    if (!path)
        cli_usage_error("--state needs --ckpt");
    st_file *f = st_open(path);
    struct cyclegan_meta m = {0};
    if (!f || ckpt_check_st_format(f) || cyclegan_meta_read(f, &m))
        die("%s", err_msg());
    printf("epoch=%lld step=%lld epoch_step=%lld\n", (long long)m.epoch, (long long)m.step,
           (long long)m.epoch_step);
    st_free(f);
    err_close_stdout();
    return 0;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_IN = 256,
        O_PRODUCERS,
        O_QUEUE_MB,
        O_CKPT,
        O_CKPT_OUT,
        O_RESUME,
        O_SAVE_EVERY,
        O_METRICS,
        O_JSON,
        O_TB,
        O_LOG_EVERY,
        O_EVAL,
        O_STATE,
        O_PHASE,
        O_MAX_STEPS,
        O_BATCH,
        O_EPOCHS,
        O_LR_G,
        O_LR_D,
        O_BETA1,
        O_BETA2,
        O_EPS,
        O_WD,
        O_LADV,
        O_LCYC,
        O_LID,
        O_CLIP,
        O_NGF,
        O_NDF,
        O_BLOCKS,
        O_SEED,
        O_RESIZE,
        O_PRECISION,
        O_LOSS_SCALE,
        O_DEVICE,
        O_VERSION
    };
    static const struct option opts[] = {{"in", 1, 0, O_IN},
                                         {"producers", 1, 0, O_PRODUCERS},
                                         {"queue-mb", 1, 0, O_QUEUE_MB},
                                         {"ckpt", 1, 0, O_CKPT},
                                         {"ckpt-out", 1, 0, O_CKPT_OUT},
                                         {"resume", 0, 0, O_RESUME},
                                         {"save-every", 1, 0, O_SAVE_EVERY},
                                         {"metrics", 1, 0, O_METRICS},
                                         {"json", 0, 0, O_JSON},
                                         {"tensorboard", 1, 0, O_TB},
                                         {"log-every", 1, 0, O_LOG_EVERY},
                                         {"eval", 0, 0, O_EVAL},
                                         {"state", 0, 0, O_STATE},
                                         {"phase", 1, 0, O_PHASE},
                                         {"max-steps", 1, 0, O_MAX_STEPS},
                                         {"batch", 1, 0, O_BATCH},
                                         {"epochs", 1, 0, O_EPOCHS},
                                         {"lr-g", 1, 0, O_LR_G},
                                         {"lr-d", 1, 0, O_LR_D},
                                         {"beta1", 1, 0, O_BETA1},
                                         {"beta2", 1, 0, O_BETA2},
                                         {"eps", 1, 0, O_EPS},
                                         {"weight-decay", 1, 0, O_WD},
                                         {"lambda-adv", 1, 0, O_LADV},
                                         {"lambda-cyc", 1, 0, O_LCYC},
                                         {"lambda-id", 1, 0, O_LID},
                                         {"clip-norm", 1, 0, O_CLIP},
                                         {"ngf", 1, 0, O_NGF},
                                         {"ndf", 1, 0, O_NDF},
                                         {"blocks", 1, 0, O_BLOCKS},
                                         {"seed", 1, 0, O_SEED},
                                         {"resize", 1, 0, O_RESIZE},
                                         {"precision", 1, 0, O_PRECISION},
                                         {"loss-scale", 1, 0, O_LOSS_SCALE},
                                         {"device", 1, 0, O_DEVICE},
                                         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION},
                                         {"quiet", 0, 0, 'q'},
                                         {0, 0, 0, 0}};
    struct trainer T = {.ckpt_out = "outputs/checkpoints/last.safetensors",
                        .log_every = 10,
                        .phase = "val",
                        .queue_mb = 4096,
                        .loss_scale = -1};
    enum backend_precision precision = BACKEND_FP32;
    int precision_auto = 0;
    cyclegan_config_default(&T.cfg);
    T.cfg.batch = 4;
    const char *in = "-", *metrics = "-", *tbdir = NULL, *device = NULL;
    int producers = 1, resume = 0, state = 0, c;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case O_IN: in = optarg; break;
        case O_PRODUCERS: producers = (int)cli_int("--producers", optarg, 1, 1024); break;
        case O_QUEUE_MB: T.queue_mb = (size_t)cli_int("--queue-mb", optarg, 1, (int64_t)1 << 30); break;
        case O_CKPT: T.ckpt = optarg; break;
        case O_CKPT_OUT: T.ckpt_out = optarg; break;
        case O_RESUME: resume = 1; break;
        case O_SAVE_EVERY: T.save_every = (int)cli_int("--save-every", optarg, 0, 1 << 30); break;
        case O_METRICS: metrics = optarg; break;
        case O_JSON: T.json = 1; break;
        case O_TB: tbdir = optarg; break;
        case O_LOG_EVERY: T.log_every = (int)cli_int("--log-every", optarg, 0, 1 << 30); break;
        case O_EVAL: T.eval = 1; break;
        case O_STATE: state = 1; break;
        case O_PHASE: T.phase = optarg; break;
        case O_MAX_STEPS: T.max_steps = cli_int("--max-steps", optarg, 1, INT64_MAX); break;
        case O_BATCH: T.cfg.batch = (int)cli_int("--batch", optarg, 1, 4096); break;
        case O_EPOCHS: T.epochs_opt = (int)cli_int("--epochs", optarg, 1, 1000000); break;
        case O_LR_G: T.cfg.lr_g = cli_double("--lr-g", optarg, 0, 10); break;
        case O_LR_D: T.cfg.lr_d = cli_double("--lr-d", optarg, 0, 10); break;
        case O_BETA1: T.cfg.beta1 = cli_double("--beta1", optarg, 0, 0.999999); break;
        case O_BETA2: T.cfg.beta2 = cli_double("--beta2", optarg, 0, 0.999999999); break;
        case O_EPS: T.cfg.eps = cli_double("--eps", optarg, 0, 1); break;
        case O_WD: T.cfg.weight_decay = cli_double("--weight-decay", optarg, 0, 10); break;
        case O_LADV: T.cfg.lambda_adv = cli_double("--lambda-adv", optarg, 0, 1e6); break;
        case O_LCYC: T.cfg.lambda_cyc = cli_double("--lambda-cyc", optarg, 0, 1e6); break;
        case O_LID: T.cfg.lambda_id = cli_double("--lambda-id", optarg, 0, 1e6); break;
        case O_CLIP: T.cfg.clip_norm = cli_double("--clip-norm", optarg, 0, 1e12); break;
        case O_NGF: T.cfg.gen.ngf = (int)cli_int("--ngf", optarg, 1, 1024); break;
        case O_NDF: T.cfg.disc.ndf = (int)cli_int("--ndf", optarg, 1, 1024); break;
        case O_BLOCKS: T.cfg.gen.n_blocks = (int)cli_int("--blocks", optarg, 1, 64); break;
        case O_SEED: T.cfg.seed = (uint64_t)cli_int("--seed", optarg, 0, INT64_MAX); break;
        case O_RESIZE: T.cfg.resize = (int)cli_int("--resize", optarg, 8, 8192); break;
        case O_PRECISION:
            precision_auto = strcmp(optarg, "auto") == 0;
            if (!precision_auto && backend_precision_parse(optarg, &precision) != 0)
                cli_usage_error("--precision: expected fp32, bf16, fp16 or auto, got '%s'", optarg);
            break;
        case O_LOSS_SCALE: T.loss_scale = cli_double("--loss-scale", optarg, 0, 1e30); break;
        case O_DEVICE:
            if (!device_known(optarg))
                cli_usage_error("--device: expected cpu, cuda, cuda:N or auto, got '%s'", optarg);
            device = optarg;
            break;
        case 'q': T.quiet = 1; break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (optind != argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (T.eval && !T.ckpt)
        cli_usage_error("--eval needs --ckpt");
    if (resume && !T.ckpt)
        T.ckpt = T.ckpt_out;
    if (state)
        return print_state(T.ckpt);
    if (dist_init() != 0)
        die("%s", err_msg());
    T.rank = dist_rank(), T.nranks = dist_size();
    if (T.nranks > 1) {
        if (T.eval)
            cli_usage_error("--eval runs in one process, not over %d ranks", T.nranks);
        if (producers > 1)
            cli_usage_error("--producers %d: a fan-in reorders the records, so %d ranks could not share "
                            "batches; give each rank its own ordered stream",
                            producers, T.nranks);
        if (T.cfg.batch % T.nranks)
            cli_usage_error("--batch %d does not split evenly over %d ranks", T.cfg.batch, T.nranks);
        T.cfg.batch /= T.nranks; /* --batch stays the global batch, whatever N */
        dist_shard_init(&T.shard, T.rank, T.nranks, T.cfg.batch * T.nranks);
        if (T.rank)
            T.quiet = 1, tbdir = NULL;
        static char name[64]; /* each rank's messages say which rank it is */
        snprintf(name, sizeof name, "cyclegan-step (rank %d of %d)", T.rank, T.nranks);
        err_init(name);
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed metrics reader is an error to handle: die_output */
    if (!T.eval && !T.rank)
        fileout_clean_stale(T.ckpt_out); /* a killed run's temporary file: reclaim it now */
    char local_gpu[32];                  /* one rank per GPU: --device cuda is the rank's local GPU */
    if (T.nranks > 1 && device && strcmp(device, "cuda") == 0) {
        snprintf(local_gpu, sizeof local_gpu, "cuda:%d", dist_local_rank());
        device = local_gpu;
    }
    if (!(T.be = device_open_precision(device, precision)))
        die("%s", err_msg());
    if (precision_auto && strcmp(backend_name(T.be), "cpu") != 0)
        backend_set_precision(T.be, BACKEND_BF16);
    stream_in *si = stream_in_open(in);
    if (!si)
        die("%s", err_msg());
    stream_in_expect(si, producers);
    T.metrics_name = strcmp(metrics, "-") == 0 ? "stdout" : metrics;
    if (T.rank) {
        /* rank 0 alone writes the metrics */
    } else if (T.json) {
        T.jsonf = strcmp(metrics, "-") == 0 ? stdout : fopen(metrics, "a");
        if (!T.jsonf)
            die("%s:", metrics);
    } else if (!(T.metrics = stream_out_open(metrics))) {
        die("%s", err_msg());
    }
    if (tbdir && !(T.tb = tfevents_open(tbdir)))
        die("%s", err_msg());
    T.prog = T.rank ? NULL : progress_new(stderr);
    train(&T, si, T.cfg.batch, producers);
    progress_free(T.prog);
    if (tfevents_close(T.tb) != 0)
        die("%s", err_msg());
    stream_in_free(si);
    if (T.metrics && stream_out_close(T.metrics, true, 1) != 0)
        die("%s", err_msg());
    if (T.jsonf && T.jsonf != stdout && fclose(T.jsonf) != 0)
        die("%s:", metrics);
    backend_dealloc(T.be, T.dx);
    backend_dealloc(T.be, T.dy);
    cyclegan_free(T.cg);
    backend_free(T.be);
    dist_finish();
    err_close_stdout();
    return stop_signal > 0 ? 128 + stop_signal : 0;
}
