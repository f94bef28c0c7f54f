/*
 * dist: data-parallel training over MPI (see dist.h).  Everything MPI is
 * behind HAVE_MPI, so a build without libopenmpi-dev still has every
 * function: a 1-rank job whose collectives are no-ops.
 */
#include "dist.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fileio.h"
#include "backend/layers.h"

#ifdef HAVE_MPI
#include <mpi.h>
#endif

static int rank_, size_ = 1, on_;
static float *stage_; /* host copy of a device gradient slab (non-CPU backends) */
static size_t stage_n_;

/* The rank count the launcher gave this process, 0 when not launched by
 * one.  OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's and Slurm's
 * PMI set PMI_SIZE. */
static int launched_size_(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s)
        s = getenv("PMI_SIZE");
    return s ? atoi(s) : 0;
}

int dist_local_rank(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!s)
        s = getenv("MPI_LOCALRANKID");
    return s ? atoi(s) : 0;
}

int dist_built(void)
{
#ifdef HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_rank(void)
{
    return rank_;
}

int dist_size(void)
{
    return size_;
}

int dist_on(void)
{
    return on_;
}

#ifdef HAVE_MPI
/* An MPI call's failure as an err_set message (with MPI_ERRORS_ARE_FATAL,
 * the default, most never return: the job is aborted). */
static int mpi_err_(int rc, const char *call)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    return err_set("%s failed: %s", call, s);
}
#define MPI_TRY(call)                                                                                        \
    do {                                                                                                     \
        int rc_ = (call);                                                                                    \
        if (rc_ != MPI_SUCCESS)                                                                              \
            return mpi_err_(rc_, #call);                                                                     \
    } while (0)
#endif

int dist_init(void)
{
    int launched = launched_size_();
#ifdef HAVE_MPI
    if (!launched)
        return 0; /* plain run: no MPI_Init, so nothing changes for it */
    int provided;
    /* FUNNELED: OpenMP threads compute, only the main thread calls MPI */
    MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    on_ = 1;
    return 0;
#else
    if (launched > 1)
        return err_set("started by mpirun as one of %d ranks, but this build has no MPI (install "
                       "libopenmpi-dev and rebuild): refusing to train %d unrelated copies",
                       launched, launched);
    return 0;
#endif
}

// ----------------------------------------------------------------------------
// Collectives

// ----------------------------------------------------------------------------
// NCCL, for the CUDA backend: build/libaging-nccl.so (lib/nccl/dist-nccl.c),
// loaded on first use so that nothing else links NCCL.

#ifdef HAVE_MPI
static struct {
    int tried, ok;
    const char *(*error)(void);
    int (*id_bytes)(void);
    int (*new_id)(void *id);
    int (*open)(const void *id, int rank, int size);
    int (*average)(float *buf, size_t n);
    void (*close)(void);
} nccl_;

static void *nccl_load_(char *why, size_t n)
{
    const char *env = getenv("AGING_NCCL_LIB");
    if (env && *env)
        return dlopen(env, RTLD_NOW | RTLD_LOCAL);
    char exe[PATH_MAX];
    if (file_exe_dir(exe, sizeof exe) != 0)
        return NULL;
    static const char *const rel[] = {"../build/libaging-nccl.so", "../lib/aging/libaging-nccl.so"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", exe, rel[i]);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
        snprintf(why, n, "%s", dlerror());
    }
    return NULL;
}

/* 1 when NCCL carries this job's gradients, 0 when it cannot (then they go
 * through the host over MPI; said once), -1 on a failure to set it up. */
static int nccl_ready_(void)
{
    if (nccl_.tried)
        return nccl_.ok;
    nccl_.tried = 1;
    char why[512] = "built without NCCL (make NCCL=1 needs nccl.h)";
    void *h = nccl_load_(why, sizeof why);
    if (h) {
        *(void **)&nccl_.error = dlsym(h, "dist_nccl_error");
        *(void **)&nccl_.id_bytes = dlsym(h, "dist_nccl_id_bytes");
        *(void **)&nccl_.new_id = dlsym(h, "dist_nccl_new_id");
        *(void **)&nccl_.open = dlsym(h, "dist_nccl_open");
        *(void **)&nccl_.average = dlsym(h, "dist_nccl_average");
        *(void **)&nccl_.close = dlsym(h, "dist_nccl_close");
    }
    if (!h || !nccl_.error || !nccl_.id_bytes || !nccl_.new_id || !nccl_.open || !nccl_.average ||
        !nccl_.close) {
        /* every rank loads the same build, so every rank takes this path */
        if (rank_ == 0)
            warn("no NCCL (%s): the gradients go through the host over MPI", why);
        return 0;
    }
    unsigned char id[512];
    int nb = nccl_.id_bytes();
    if (nb <= 0 || nb > (int)sizeof id)
        return err_set("NCCL: a unique id of %d bytes", nb);
    if (rank_ == 0 && nccl_.new_id(id) != 0)
        return err_set("NCCL: %s", nccl_.error());
    MPI_TRY(MPI_Bcast(id, nb, MPI_BYTE, 0, MPI_COMM_WORLD));
    if (nccl_.open(id, rank_, size_) != 0)
        return err_set("NCCL on rank %d: %s (one rank per GPU: --device cuda picks the rank's local GPU)",
                       rank_, nccl_.error());
    return nccl_.ok = 1;
}
#endif

void dist_finish(void)
{
#ifdef HAVE_MPI
    if (nccl_.ok)
        nccl_.close();
    nccl_.ok = 0;
    if (on_)
        MPI_Finalize();
#endif
    on_ = 0;
    free(stage_);
    stage_ = NULL, stage_n_ = 0;
}

int dist_average(backend_t be, float *grad, size_t n)
{
#ifdef HAVE_MPI
    if (!on_)
        return 0;
    if (strcmp(backend_name(be), "cuda") == 0 && getenv("AGING_DIST_NO_NCCL") == NULL) {
        int ok = nccl_ready_();
        if (ok < 0)
            return -1;
        if (ok)
            return nccl_.average(grad, n) == 0 ? 0 : err_set("NCCL allreduce: %s", nccl_.error());
    }
    if (n > (size_t)INT32_MAX)
        return err_set("dist_average: %zu floats is over MPI's int count", n);
    int host = strcmp(backend_name(be), "cpu") == 0;
    float *buf = grad;
    if (!host) {
        if (n > stage_n_) { /* grows once per net size, then never again */
            float *p = realloc(stage_, n * sizeof *p);
            if (!p)
                return err_set("dist_average: out of memory for %zu floats", n);
            stage_ = p, stage_n_ = n;
        }
        buf = stage_;
        if (backend_download(be, buf, grad, n * sizeof *buf) != 0)
            return -1;
    }
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    if (!host && backend_upload(be, grad, buf, n * sizeof *buf) != 0)
        return -1;
    /* a mean, as DDP's; 1 rank leaves the gradient untouched, bit for bit */
    if (size_ > 1 && tensor_scale(be, grad, 1.0f / (float)size_, (long)n) != 0)
        return -1;
    return 0;
#else
    (void)be, (void)grad, (void)n;
    return 0;
#endif
}

int dist_mean(double *v, int n)
{
#ifdef HAVE_MPI
    if (!on_ || size_ == 1)
        return 0;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    for (int i = 0; i < n; i++)
        v[i] /= size_;
#else
    (void)v, (void)n;
#endif
    return 0;
}

int dist_agree(int have, int64_t epoch, int64_t step, int *stop)
{
#ifdef HAVE_MPI
    if (!on_ || size_ == 1)
        return have ? (*stop ? 0 : 1) : 0;
    /* every rank's view, gathered: a few bytes per rank, once per step */
    int64_t mine[4] = {have, *stop, epoch, step};
    int64_t *all = malloc((size_t)size_ * sizeof mine);
    if (!all)
        return err_set("dist_agree: out of memory");
    int rc = MPI_Allgather(mine, 4, MPI_INT64_T, all, 4, MPI_INT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_err_(rc, "MPI_Allgather");
    }
    int haves = 0, stops = 0, first_end = -1, first_have = -1;
    for (int r = 0; r < size_; r++) {
        const int64_t *a = all + 4 * r;
        haves += a[0] != 0;
        stops += a[1] != 0;
        if (!a[0] && first_end < 0)
            first_end = r;
        if (a[0] && first_have < 0)
            first_have = r;
    }
    rc = 0;
    if (haves == size_) { /* all have a batch: it must be the same step */
        for (int r = 1; r < size_ && rc == 0; r++)
            if (all[4 * r + 2] != all[2] || all[4 * r + 3] != all[3])
                rc = err_set("rank %d is at epoch %lld step %lld, rank 0 at epoch %lld step %lld: the "
                             "ranks' streams differ",
                             r, (long long)all[4 * r + 2], (long long)all[4 * r + 3], (long long)all[2],
                             (long long)all[3]);
        if (rc == 0)
            rc = stops ? 0 : 1;
    } else if (haves > 0 && !stops) { /* one ran out of images while another has a batch */
        const int64_t *h = all + 4 * first_have;
        rc = err_set("rank %d's input ended while rank %d has epoch %lld step %lld to train: the ranks' "
                     "streams differ",
                     first_end, first_have, (long long)h[2], (long long)h[3]);
    }
    if (stops)
        *stop = 1;
    free(all);
    return rc;
#else
    (void)epoch, (void)step;
    return have ? (*stop ? 0 : 1) : 0;
#endif
}

/* FNV-1a, 64 bits: enough to tell two copies of the same bytes apart from
 * two different ones. */
static uint64_t hash_(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

int dist_same(backend_t be, const void *dev, size_t bytes, const char *what)
{
#ifdef HAVE_MPI
    if (!on_ || size_ == 1)
        return 0;
    unsigned char *host = malloc(bytes ? bytes : 1);
    if (!host)
        return err_set("dist_same: out of memory");
    if (backend_download(be, host, dev, bytes) != 0) {
        free(host);
        return -1;
    }
    uint64_t h = hash_(host, bytes), h0 = h;
    free(host);
    MPI_TRY(MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
    /* the lowest rank that differs from rank 0, known to all */
    int bad = h != h0 ? rank_ : size_;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (bad < size_)
        return err_set("rank %d's %s differ from rank 0's (every rank must start from the same checkpoint)",
                       bad, what);
#else
    (void)be, (void)dev, (void)bytes, (void)what, (void)hash_;
#endif
    return 0;
}

// ----------------------------------------------------------------------------
// Shards

void dist_shard_init(struct dist_shard *s, int rank, int size, int batch)
{
    *s = (struct dist_shard){.rank = rank, .size = size, .batch = batch, .pairs = -1};
}

/* A new epoch restarts the counts (the stream of one rank is ordered:
 * epochs never interleave in it). */
static void shard_epoch_(struct dist_shard *s, int64_t epoch)
{
    if (epoch != s->epoch) {
        s->epoch = epoch;
        s->seen[0] = s->seen[1] = 0;
        s->pairs = -1;
    }
}

int64_t dist_shard_pairs(struct dist_shard *s, int64_t epoch, int64_t pairs)
{
    shard_epoch_(s, epoch);
    s->pairs = pairs;
    if (pairs < 0)
        return pairs;
    return pairs / s->batch * (s->batch / s->size);
}

int dist_shard_keep(struct dist_shard *s, int64_t epoch, int domain)
{
    shard_epoch_(s, epoch);
    int64_t i = s->seen[domain]++;
    if (s->pairs >= 0 && i >= s->pairs / s->batch * s->batch)
        return 0; /* the incomplete last batch: no rank trains on it */
    int local = s->batch / s->size;
    return (i % s->batch) / local == s->rank;
}
