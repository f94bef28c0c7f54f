/*
 * cast: float <-> the 16-bit type of the convolutions (bf16 when
 * be->precision is BACKEND_BF16, fp16 when BACKEND_FP16), for conv.cu's
 * mixed-precision path.  Narrowing rounds to nearest even (overflow to inf,
 * as lib/backend.h promises and lib/half.c does on the CPU); widening is
 * exact.
 *
 * With nhwc=1 the same pass transposes float NCHW [n, c, hw] to 16-bit NHWC
 * [n, hw, c] (and back), which is what cuDNN's tensor-core kernels want; a
 * filter [k, c, kh*kw] read the same way becomes KRSC.  The transpose goes
 * through a 32x32 shared-memory tile so both the float side and the 16-bit
 * side are read and written in coalesced rows.  nhwc=0 keeps the layout.
 *
 * from_half: dst = beta*dst + (float)src, beta 0 or 1; with beta 0 dst is
 * never read (it may hold NaN garbage from an earlier use of the buffer).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda-impl.h"

#define TILE      32
#define TILE_ROWS 8 /* threads per tile column: each thread moves TILE/TILE_ROWS elements */

/* CUDA's grid limits for y and z; kernels loop over what does not fit. */
#define GRID_YZ_MAX 65535
#define GRID_X_MAX  (1L << 30)

template <typename H> __device__ inline H to16(float f);
template <> __device__ inline __half to16<__half>(float f)
{
    return __float2half_rn(f);
}
template <> __device__ inline __nv_bfloat16 to16<__nv_bfloat16>(float f)
{
    return __float2bfloat16_rn(f);
}
__device__ inline float from16(__half h)
{
    return __half2float(h);
}
__device__ inline float from16(__nv_bfloat16 h)
{
    return __bfloat162float(h);
}

template <typename H> __global__ void to16_plain(H *dst, const float *src, long total)
{
    long step = (long)gridDim.x * blockDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        dst[i] = to16<H>(src[i]);
}

template <typename H> __global__ void from16_plain(float *dst, const H *src, long total, float beta)
{
    long step = (long)gridDim.x * blockDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        float v = from16(src[i]);
        dst[i] = beta == 0.0f ? v : beta * dst[i] + v;
    }
}

/* src float [n][c][hw] -> dst H [n][hw][c].  Block (TILE, TILE_ROWS); tile
 * (ct, pt) covers channels [ct*TILE, +TILE) and pixels [pt*TILE, +TILE).
 * The loops are uniform across a block, so __syncthreads is safe in them. */
template <typename H>
__global__ void to16_nhwc(H *dst, const float *src, int n, int c, long hw, int c_tiles, long p_tiles)
{
    __shared__ float tile[TILE][TILE + 1]; /* +1: no bank conflicts on the transposed read */
    int tx = threadIdx.x, ty = threadIdx.y;
    for (int img = blockIdx.z; img < n; img += gridDim.z)
        for (int ct = blockIdx.y; ct < c_tiles; ct += gridDim.y)
            for (long pt = blockIdx.x; pt < p_tiles; pt += gridDim.x) {
                const float *s = src + (long)img * c * hw;
                H *d = dst + (long)img * c * hw;
                int c0 = ct * TILE;
                long p0 = pt * TILE;
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    int ch = c0 + j;
                    long p = p0 + tx;
                    if (ch < c && p < hw)
                        tile[j][tx] = s[(long)ch * hw + p];
                }
                __syncthreads();
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    long p = p0 + j;
                    int ch = c0 + tx;
                    if (ch < c && p < hw)
                        d[p * c + ch] = to16<H>(tile[tx][j]);
                }
                __syncthreads();
            }
}

/* src H [n][hw][c] -> dst float [n][c][hw], dst = beta*dst + src. */
template <typename H>
__global__ void from16_nhwc(float *dst, const H *src, int n, int c, long hw, int c_tiles, long p_tiles,
                            float beta)
{
    __shared__ float tile[TILE][TILE + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    for (int img = blockIdx.z; img < n; img += gridDim.z)
        for (int ct = blockIdx.y; ct < c_tiles; ct += gridDim.y)
            for (long pt = blockIdx.x; pt < p_tiles; pt += gridDim.x) {
                const H *s = src + (long)img * c * hw;
                float *d = dst + (long)img * c * hw;
                int c0 = ct * TILE;
                long p0 = pt * TILE;
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    long p = p0 + j;
                    int ch = c0 + tx;
                    if (ch < c && p < hw)
                        tile[j][tx] = from16(s[p * c + ch]);
                }
                __syncthreads();
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    int ch = c0 + j;
                    long p = p0 + tx;
                    if (ch < c && p < hw) {
                        float v = tile[tx][j];
                        float *o = d + (long)ch * hw + p;
                        *o = beta == 0.0f ? v : beta * *o + v;
                    }
                }
                __syncthreads();
            }
}

static int check_args(const void *dst, const void *src, int n, int c, long hw, const char *what)
{
    if (!dst || !src)
        return err_set("cuda: %s: NULL buffer", what);
    if (n < 0 || c < 0 || hw < 0)
        return err_set("cuda: %s: bad size [%d,%d,%ld]", what, n, c, hw);
    return 0;
}

static long min_long(long a, long b)
{
    return a < b ? a : b;
}

/* The transposing kernels' launch shape (tile loops cover the rest). */
static void tile_grid(int n, int c, long hw, int *c_tiles, long *p_tiles, dim3 *grid)
{
    *c_tiles = (c + TILE - 1) / TILE;
    *p_tiles = (hw + TILE - 1) / TILE;
    grid->x = (unsigned)min_long(*p_tiles, GRID_X_MAX);
    grid->y = (unsigned)min_long(*c_tiles, GRID_YZ_MAX);
    grid->z = (unsigned)min_long(n, GRID_YZ_MAX);
}

template <typename H>
static int to_half_t(struct backend *be, H *dst, const float *src, int n, int c, long hw, int nhwc)
{
    cudaStream_t st = cuda_ctx_of(be)->stream;
    if (nhwc && c > 1 && hw > 1) {
        int c_tiles;
        long p_tiles;
        dim3 grid;
        tile_grid(n, c, hw, &c_tiles, &p_tiles, &grid);
        to16_nhwc<H><<<grid, dim3(TILE, TILE_ROWS), 0, st>>>(dst, src, n, c, hw, c_tiles, p_tiles);
    } else {
        /* nothing to transpose when c or hw is 1: NCHW and NHWC coincide */
        long total = (long)n * c * hw;
        to16_plain<H><<<cuda_blocks(be, total, 256), 256, 0, st>>>(dst, src, total);
    }
    return cuda_launched("to_half");
}

template <typename H>
static int from_half_t(struct backend *be, float *dst, const H *src, int n, int c, long hw, int nhwc,
                       float beta)
{
    cudaStream_t st = cuda_ctx_of(be)->stream;
    if (nhwc && c > 1 && hw > 1) {
        int c_tiles;
        long p_tiles;
        dim3 grid;
        tile_grid(n, c, hw, &c_tiles, &p_tiles, &grid);
        from16_nhwc<H><<<grid, dim3(TILE, TILE_ROWS), 0, st>>>(dst, src, n, c, hw, c_tiles, p_tiles, beta);
    } else {
        long total = (long)n * c * hw;
        from16_plain<H><<<cuda_blocks(be, total, 256), 256, 0, st>>>(dst, src, total, beta);
    }
    return cuda_launched("from_half");
}

int cu_to_half(struct backend *be, void *dst, const float *src, int n, int c, long hw, int nhwc)
{
    if (check_args(dst, src, n, c, hw, "to_half"))
        return -1;
    if ((long)n * c * hw == 0)
        return 0;
    switch (be->precision) {
    case BACKEND_BF16: return to_half_t(be, (__nv_bfloat16 *)dst, src, n, c, hw, nhwc);
    case BACKEND_FP16: return to_half_t(be, (__half *)dst, src, n, c, hw, nhwc);
    default: return err_set("cuda: to_half: the backend's precision is not 16-bit");
    }
}

int cu_from_half(struct backend *be, float *dst, const void *src, int n, int c, long hw, int nhwc, float beta)
{
    if (check_args(dst, src, n, c, hw, "from_half"))
        return -1;
    if (beta != 0.0f && beta != 1.0f)
        return err_set("cuda: from_half: beta must be 0 or 1");
    if ((long)n * c * hw == 0)
        return 0;
    switch (be->precision) {
    case BACKEND_BF16: return from_half_t(be, dst, (const __nv_bfloat16 *)src, n, c, hw, nhwc, beta);
    case BACKEND_FP16: return from_half_t(be, dst, (const __half *)src, n, c, hw, nhwc, beta);
    default: return err_set("cuda: from_half: the backend's precision is not 16-bit");
    }
}
