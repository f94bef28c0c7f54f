/*
 * dist: data-parallel training over MPI, as PyTorch DDP does it.
 *
 * `mpirun -np N cyclegan-step ...` starts N ranks.  Each reads the whole
 * training stream (its own `utk-split | aug` pipeline with the same seed, or
 * one file they all can read) and keeps only its share of every batch:
 * with a global batch of B pairs, rank k takes pairs k*B/N .. (k+1)*B/N - 1
 * of each (dist_shard_keep).  So the images, their augmentation and the
 * epoch's order are the same whatever N, and a run can resume with another
 * number of ranks.  After the backward, each net's gradient slab is averaged
 * over the ranks (dist_average: one MPI_Allreduce per net per step, always
 * G, F, DX, DY), every rank clips the same averaged gradient and applies the
 * same Adam update, so the parameters stay equal on every rank; rank 0 alone
 * writes checkpoints, metrics and TensorBoard.
 *
 * BatchNorm keeps per-rank statistics, as DDP without SyncBatchNorm: each
 * forward normalises with the statistics of the rank's own B/N images.  The
 * checkpoint holds rank 0's running statistics, which are also what DDP's
 * broadcast_buffers gives (rank 0's buffers, updated by rank 0's batches).
 *
 *   if (dist_init() != 0) die("%s", err_msg());   // a 1-rank job without mpirun
 *   ... dist_rank(), dist_size() ...
 *   dist_average(be, grad, n);                     // in cyclegan's gradient hook
 *   dist_finish();
 *
 * Built without MPI (no libopenmpi-dev: the Makefile defines HAVE_MPI when
 * pkg-config finds ompi-c), every job has one rank, and dist_init refuses a
 * launch by mpirun with several ranks instead of training N unrelated copies.
 *
 * GPUs: with the CUDA backend the allreduce runs in NCCL on the device
 * (build/libaging-nccl.so from lib/nccl/, loaded on first use), one rank
 * per GPU; without it the gradients are staged through the host over MPI.
 *
 * Faults: MPI's default error handler aborts the whole job, and mpirun ends
 * every rank when one exits without MPI_Finalize (a crash, a kill, die()),
 * naming the rank.  dist_agree makes the ranks agree before each step, so
 * that a rank whose stream ended or drifted is named instead of leaving the
 * others waiting in an allreduce.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Join the job when this process was started by mpirun (OpenMPI's or a
 * PMI launcher's environment), else a 1-rank job with no MPI at all.  -1 +
 * err_set when launched with several ranks by a build without MPI, or when
 * MPI_Init fails. */
int dist_init(void);
/* MPI_Finalize (a no-op without MPI); the last call of a clean exit. */
void dist_finish(void);

int dist_rank(void); /* 0 .. dist_size()-1; 0 without MPI */
int dist_size(void); /* ranks in the job; 1 without MPI */
/* This rank's index among the ranks of its node (the launcher's
 * OMPI_COMM_WORLD_LOCAL_RANK or MPI_LOCALRANKID), 0 when not given: the
 * GPU a rank uses under NCCL, which wants one rank per GPU. */
int dist_local_rank(void);
/* 1 when MPI is initialised (mpirun, even -np 1), else 0. */
int dist_on(void);
/* 1 when this build has MPI (HAVE_MPI). */
int dist_built(void);

/* grad[0..n) (device memory of be) = its mean over the ranks: an in-place
 * MPI_Allreduce(SUM) then a scale by 1/N (exact for N a power of two).
 * The CPU backend's memory is the host's and is reduced in place; other
 * backends' is staged through one host buffer kept between calls.  Every
 * rank must call it with the same n in the same order. */
int dist_average(backend_t be, float *grad, size_t n);

/* v[0..n) = its mean over the ranks (losses for the metrics). */
int dist_mean(double *v, int n);

/* Before each step (have = 1, at epoch `epoch`, its step `step`) and once at
 * the end of a rank's input or on a stop signal (have = 0): every rank
 * learns what the others are doing.  Returns 1 when every rank has the same
 * step to train (go on), 0 when every rank stops here together (all ended,
 * or one was asked to stop: *stop is then set), -1 + err_set naming the
 * first rank that disagrees (its stream ended early, or it is at another
 * step: the ranks' streams differ). */
int dist_agree(int have, int64_t epoch, int64_t step, int *stop);

/* -1 + err_set naming the first rank whose bytes differ from rank 0's
 * (a hash of them is compared), else 0.  what names them in the message. */
int dist_same(backend_t be, const void *dev, size_t bytes, const char *what);

// ----------------------------------------------------------------------------
// The share of each batch a rank trains on

struct dist_shard {
    int rank, size;  /* this rank of size */
    int batch;       /* the global batch B; each rank's is B/size */
    int64_t epoch;   /* the epoch the counts are of */
    int64_t seen[2]; /* young, old images of that epoch so far */
    int64_t pairs;   /* pairs the epoch record announced (-1: not yet) */
};

void dist_shard_init(struct dist_shard *s, int rank, int size, int batch);
/* Whether this rank keeps the next image of `domain` (0 young, 1 old) in
 * epoch `epoch`: its index i (per domain, in stream order) lies in this
 * rank's slice of its global batch, and the batch is a complete one. */
int dist_shard_keep(struct dist_shard *s, int64_t epoch, int domain);
/* The pairs this rank receives of an epoch of `pairs` pairs: its B/N of
 * each complete global batch (the last incomplete one is dropped, as the
 * trainer drops it anyway). */
int64_t dist_shard_pairs(struct dist_shard *s, int64_t epoch, int64_t pairs);
