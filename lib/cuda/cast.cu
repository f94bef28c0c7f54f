/*
 * cast: float <-> the 16-bit type of the convolutions (bf16 when
 * be->precision is BACKEND_BF16, fp16 when BACKEND_FP16), for conv.cu's
 * mixed-precision path.  Narrowing rounds to nearest even (overflow to inf,
 * as lib/backend/backend.h promises and lib/base/half.c does on the CPU); widening is
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
#include <type_traits>

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
/* A source element as float (cu_to_half's source is float already). */
__device__ inline float to_float(float f)
{
    return f;
}
__device__ inline float to_float(__half h)
{
    return __half2float(h);
}
__device__ inline float to_float(__nv_bfloat16 h)
{
    return __bfloat162float(h);
}

/* Store v into a 16-bit destination (beta unused: cu_to_half overwrites),
 * or into a float one as dst = beta*dst + v (dst not read when beta is 0). */
template <typename H> __device__ inline void put(H *o, float v, float beta)
{
    (void)beta;
    *o = to16<H>(v);
}
__device__ inline void put(float *o, float v, float beta)
{
    *o = beta == 0.0f ? v : beta * *o + v;
}

template <typename S, typename D> __global__ void cast_plain(D *dst, const S *src, long total, float beta)
{
    long step = (long)gridDim.x * blockDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        put(dst + i, to_float(src[i]), beta);
}

/* Element (row, col) of the tile at channel c0, pixel p0 of one image:
 * false when outside the image, else true with *i its index in NCHW [c][hw] (rows
 * are channels) or NHWC [hw][c] (rows are pixels). */
__device__ inline bool tile_at(bool nchw, int c0, long p0, int row, int col, int c, long hw, long *i)
{
    int ch = nchw ? c0 + row : c0 + col;
    long p = nchw ? p0 + col : p0 + row;
    if (ch >= c || p >= hw)
        return false;
    *i = nchw ? (long)ch * hw + p : p * c + ch;
    return true;
}

/* float [n][c][hw] -> 16-bit [n][hw][c], or 16-bit [n][hw][c] -> float
 * [n][c][hw] (dst = beta*dst + src).  Block (TILE, TILE_ROWS); tile
 * (ct, pt) covers channels [ct*TILE, +TILE) and pixels [pt*TILE, +TILE):
 * read along the source's rows, written along the destination's.  The loops
 * are uniform across a block, so __syncthreads is safe in them. */
template <typename S, typename D>
__global__ void cast_transpose(D *dst, const S *src, int n, int c, long hw, int c_tiles, long p_tiles,
                               float beta)
{
    /* the float side is always NCHW: float NCHW -> 16-bit NHWC, or 16-bit NHWC -> float NCHW */
    constexpr bool nchw = std::is_same<S, float>::value;
    __shared__ float tile[TILE][TILE + 1]; /* +1: no bank conflicts on the transposed read */
    int tx = threadIdx.x, ty = threadIdx.y;
    for (int img = blockIdx.z; img < n; img += gridDim.z)
        for (int ct = blockIdx.y; ct < c_tiles; ct += gridDim.y)
            for (long pt = blockIdx.x; pt < p_tiles; pt += gridDim.x) {
                const S *s = src + (long)img * c * hw;
                D *d = dst + (long)img * c * hw;
                int c0 = ct * TILE;
                long p0 = pt * TILE;
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    long i;
                    if (tile_at(nchw, c0, p0, j, tx, c, hw, &i))
                        tile[j][tx] = to_float(s[i]);
                }
                __syncthreads();
                for (int j = ty; j < TILE; j += TILE_ROWS) {
                    long i;
                    if (tile_at(!nchw, c0, p0, j, tx, c, hw, &i))
                        put(d + i, tile[tx][j], beta);
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

/* Launch the cast of [n, c, hw] from src to dst (what: for errors). */
template <typename S, typename D>
static int cast_t(struct backend *be, D *dst, const S *src, int n, int c, long hw, int nhwc, float beta,
                  const char *what)
{
    cudaStream_t st = cuda_ctx_of(be)->stream;
    if (nhwc && c > 1 && hw > 1) {
        int c_tiles;
        long p_tiles;
        dim3 grid;
        tile_grid(n, c, hw, &c_tiles, &p_tiles, &grid);
        cast_transpose<S, D>
            <<<grid, dim3(TILE, TILE_ROWS), 0, st>>>(dst, src, n, c, hw, c_tiles, p_tiles, beta);
    } else {
        /* nothing to transpose when c or hw is 1: NCHW and NHWC coincide */
        long total = (long)n * c * hw;
        cast_plain<S, D><<<cuda_blocks(be, total, 256), 256, 0, st>>>(dst, src, total, beta);
    }
    return cuda_launched(what);
}

int cu_to_half(struct backend *be, void *dst, const float *src, int n, int c, long hw, int nhwc)
{
    if (check_args(dst, src, n, c, hw, "to_half"))
        return -1;
    if ((long)n * c * hw == 0)
        return 0;
    switch (be->precision) {
    case BACKEND_BF16: return cast_t(be, (__nv_bfloat16 *)dst, src, n, c, hw, nhwc, 0.0f, "to_half");
    case BACKEND_FP16: return cast_t(be, (__half *)dst, src, n, c, hw, nhwc, 0.0f, "to_half");
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
    case BACKEND_BF16: return cast_t(be, dst, (const __nv_bfloat16 *)src, n, c, hw, nhwc, beta, "from_half");
    case BACKEND_FP16: return cast_t(be, dst, (const __half *)src, n, c, hw, nhwc, beta, "from_half");
    default: return err_set("cuda: from_half: the backend's precision is not 16-bit");
    }
}
