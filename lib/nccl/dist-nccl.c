/*
 * dist-nccl: the gradient allreduce of data-parallel training on GPUs
 * (lib/dist/dist.h), as build/libaging-nccl.so.  lib/dist/dist.c loads it with
 * dlopen when the backend is CUDA, so that neither the tools nor the CUDA
 * backend link NCCL: a machine without it still trains on one GPU, and
 * over MPI on the CPU.  One rank per GPU (NCCL refuses two ranks on one).
 *
 * MPI carries the NCCL unique id from rank 0 to the others (dist.c); this
 * file only makes the communicator and averages device buffers in place.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#define API __attribute__((visibility("default")))

static ncclComm_t comm_;
static cudaStream_t stream_;
static char why_[256];

/* The last failure, for dist.c's err_set. */
API const char *dist_nccl_error(void)
{
    return why_;
}

static int nccl_fail_(ncclResult_t r, const char *what)
{
    snprintf(why_, sizeof why_, "%s: %s", what, ncclGetErrorString(r));
    return -1;
}

static int cuda_fail_(cudaError_t e, const char *what)
{
    snprintf(why_, sizeof why_, "%s: %s", what, cudaGetErrorString(e));
    return -1;
}

API int dist_nccl_id_bytes(void)
{
    return NCCL_UNIQUE_ID_BYTES;
}

/* Rank 0: a new unique id into id (NCCL_UNIQUE_ID_BYTES). */
API int dist_nccl_new_id(void *id)
{
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess)
        return nccl_fail_(r, "ncclGetUniqueId");
    memcpy(id, &u, sizeof u);
    return 0;
}

/* Join the communicator on the current CUDA device (the backend's). */
API int dist_nccl_open(const void *id, int rank, int size)
{
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (e != cudaSuccess)
        return cuda_fail_(e, "cudaStreamCreate");
    ncclResult_t r = ncclCommInitRank(&comm_, size, u, rank);
    return r == ncclSuccess ? 0 : nccl_fail_(r, "ncclCommInitRank");
}

/* buf[0..n) = its mean over the ranks (ncclAvg), in place.  The device is
 * synchronised before (the backend's kernels wrote the gradient on its own
 * stream) and the stream after (the backend reads it next). */
API int dist_nccl_average(float *buf, size_t n)
{
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
        return cuda_fail_(e, "cudaDeviceSynchronize");
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat32, ncclAvg, comm_, stream_);
    if (r != ncclSuccess)
        return nccl_fail_(r, "ncclAllReduce");
    e = cudaStreamSynchronize(stream_);
    return e == cudaSuccess ? 0 : cuda_fail_(e, "cudaStreamSynchronize");
}

API void dist_nccl_close(void)
{
    if (comm_)
        ncclCommDestroy(comm_);
    if (stream_)
        cudaStreamDestroy(stream_);
    comm_ = NULL, stream_ = NULL;
}
