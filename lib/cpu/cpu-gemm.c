/*
 * cpu-gemm: packed SGEMM with im2col fused into the packing of B.  See
 * cpu-gemm.h.
 *
 * Layout: A is packed once per call into panels of MR rows ([k][MR] per
 * panel, rows past m zero); each thread walks its strips of NR columns of
 * C, packs KC rows of the strip of B at a time ([KC][NR], columns past n
 * zero) and runs the micro-kernel over every A panel against it, so the B
 * strip stays in L1 while the A panels stream from L2.  The first KC block
 * writes C (plus the bias), the later ones accumulate into it.
 */
#include "cpu-gemm.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef KC
#define KC 256
#endif
#define MR_MAX 8
#define NR_MAX 32

enum { ISA_NONE, ISA_AVX2, ISA_AVX512 };

static int gemm_isa(void)
{
    static int isa = -1;
    if (isa < 0) {
        const char *e = getenv("AGING_CPU_GEMM");
        int v = ISA_NONE;
        __builtin_cpu_init();
        if (e && !strcmp(e, "blas"))
            v = ISA_NONE;
        else if (__builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "avx2")))
            v = ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            v = ISA_AVX2;
        isa = v;
    }
    return isa;
}

int cpu_gemm_available(void)
{
    return gemm_isa() != ISA_NONE;
}

size_t cpu_gemm_ws_floats(int m, int k, int nthreads)
{
    return (size_t)(m + MR_MAX) * k + (size_t)nthreads * KC * NR_MAX + 64;
}

// ----------------------------------------------------------------------------
// micro-kernels: c [mr, nv] (= or +=) ap [kc][MR] x bp [kc][NR]

/* a strip's columns as runs within one output row */
struct run {
    int j, len, oy, ox;
};

static void pack_b_image(float *bp, const struct gemm_b *b, int k0, int kc, const struct run *runs, int nruns,
                         int nv, int nr);

struct gemm_b;
static void pack_bt_image_512(float *bp, const struct gemm_b *b, int j0, int nv, int kc,
                              const struct run *runs, int nruns);

/* acc: add into c (else write, plus bias when given); relu: then max(., 0) */
typedef void kernel_fn(int mr, int kc, const float *ap, const float *bp, float *c, long ldc, int nv, int acc,
                       const float *bias, int relu);

/* clang (make fuzz builds the library with it) has no GCC target pragma;
 * its attribute region gives the kernels the same instruction sets. */
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif

static inline __attribute__((always_inline)) void k512_body(const int mr, int kc, const float *ap,
                                                            const float *bp, float *c, long ldc, int nv,
                                                            int acc, const float *bias, int relu)
{
    __m512 c0[8], c1[8];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
    for (int kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(ap[i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
        ap += 8;
        bp += 32;
    }
    __mmask16 m0 = nv >= 16 ? 0xFFFF : (__mmask16)((1u << nv) - 1);
    __mmask16 m1 = nv >= 32 ? 0xFFFF : nv > 16 ? (__mmask16)((1u << (nv - 16)) - 1) : 0;
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        if (acc) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, cr));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, cr + 16));
        } else if (bias) {
            __m512 bv = _mm512_set1_ps(bias[i]);
            c0[i] = _mm512_add_ps(c0[i], bv);
            c1[i] = _mm512_add_ps(c1[i], bv);
        }
        if (relu) {
            /* maxps returns its second operand for NaN and for +-0: NaN and -0 become +0 */
            c0[i] = _mm512_max_ps(c0[i], _mm512_setzero_ps());
            c1[i] = _mm512_max_ps(c1[i], _mm512_setzero_ps());
        }
        _mm512_mask_storeu_ps(cr, m0, c0[i]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[i]);
    }
}

static void kernel_avx512(int mr, int kc, const float *ap, const float *bp, float *c, long ldc, int nv,
                          int acc, const float *bias, int relu)
{
    switch (mr) {
    case 8: k512_body(8, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 7: k512_body(7, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 6: k512_body(6, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 5: k512_body(5, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 4: k512_body(4, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 3: k512_body(3, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 2: k512_body(2, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    default: k512_body(1, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    }
}

/* pack_b_image for NR = 32 and stride 1 with masked 16-lane loads: a run's
 * in-bounds lanes [j+lo, j+hi) come from consecutive source floats */
static void pack_b_image_512(float *bp, const struct gemm_b *b, int k0, int kc, const struct run *runs,
                             int nruns, int nv)
{
    if (b->s != 1) {
        pack_b_image(bp, b, k0, kc, runs, nruns, nv, 32);
        return;
    }
    int kh = b->k, kw = b->kw ? b->kw : b->k, ph = b->p, pw = b->kw ? b->pw : b->p, kk2 = kh * kw;
    int ch = k0 / kk2, ki = k0 / kw % kh, kj = k0 % kw;
    long hw = (long)b->h * b->w;
    const __m512 z = _mm512_setzero_ps();
    for (int r = 0; r < kc; r++, bp += 32) {
        const float *plane = b->img + ch * hw;
        int full = 0;
        if (nruns == 1 && nv == 32) {
            const struct run *u = &runs[0];
            int iy = u->oy - ph + ki, ix0 = u->ox - pw + kj;
            if (iy >= 0 && iy < b->h && ix0 >= 0 && ix0 + 32 <= b->w) {
                const float *src = plane + (long)iy * b->w + ix0;
                _mm512_storeu_ps(bp, _mm512_loadu_ps(src));
                _mm512_storeu_ps(bp + 16, _mm512_loadu_ps(src + 16));
                full = 1;
            }
        }
        if (!full) {
            _mm512_storeu_ps(bp, z);
            _mm512_storeu_ps(bp + 16, z);
            for (int q = 0; q < nruns; q++) {
                const struct run *u = &runs[q];
                int iy = u->oy - ph + ki;
                if (iy < 0 || iy >= b->h)
                    continue;
                int ix0 = u->ox - pw + kj;
                int lo = ix0 < 0 ? -ix0 : 0, hi = b->w - ix0 < u->len ? b->w - ix0 : u->len;
                if (hi <= lo)
                    continue;
                const float *src = plane + (long)iy * b->w + ix0 + lo;
                uint32_t m = (uint32_t)((((uint64_t)1 << (hi - lo)) - 1) << (u->j + lo));
                __mmask16 m0 = (__mmask16)(m & 0xFFFF), m1 = (__mmask16)(m >> 16);
                if (m0)
                    _mm512_mask_storeu_ps(bp, m0, _mm512_maskz_expandloadu_ps(m0, src));
                if (m1)
                    _mm512_mask_storeu_ps(bp + 16, m1,
                                          _mm512_maskz_expandloadu_ps(m1, src + __builtin_popcount(m0)));
            }
        }
        if (++kj == kw) {
            kj = 0;
            if (++ki == kh)
                ki = 0, ch++;
        }
    }
}

/* 16x16 transpose in registers: r[i] lane j -> r[j] lane i */
static inline __attribute__((always_inline)) void tr16x16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}

/* pack_bt_image for NR = 32, stride 1: per run and half strip, 16 image rows
 * of 16 pixels loaded (masked at the borders), transposed in registers,
 * stored as 16 rows of the packed strip */
static void pack_bt_image_512(float *bp, const struct gemm_b *b, int j0, int nv, int kc,
                              const struct run *runs, int nruns)
{
    int kk2 = b->k * b->k;
    long hw = (long)b->h * b->w;
    const float *rowp[16];
    int lo[16], hi[16];
    for (int half = 0; half < 2; half++) {
        int t0 = 16 * half;
        if (t0 >= nv) {
            for (int r = 0; r < kc; r++)
                _mm512_storeu_ps(bp + (long)r * 32 + t0, _mm512_setzero_ps());
            continue;
        }
        for (int q = 0; q < nruns; q++) {
            const struct run *u = &runs[q];
            int len = u->len;
            for (int t = 0; t < 16; t++) {
                int j = j0 + t0 + t;
                lo[t] = hi[t] = 0;
                rowp[t] = b->img;
                if (t0 + t >= nv)
                    continue;
                int ch = j / kk2, ki = j / b->k % b->k, kj = j % b->k;
                int iy = u->oy - b->p + ki;
                if (iy < 0 || iy >= b->h)
                    continue;
                int ix0 = u->ox - b->p + kj;
                int l = ix0 < 0 ? -ix0 : 0, h = b->w - ix0 < len ? b->w - ix0 : len;
                if (h <= l)
                    continue;
                lo[t] = l, hi[t] = h;
                rowp[t] = b->img + ch * hw + (long)iy * b->w + ix0;
            }
            for (int x0 = 0; x0 < len; x0 += 16) {
                __m512 v[16];
#pragma GCC unroll 16
                for (int t = 0; t < 16; t++) {
                    int a = lo[t] - x0, e = hi[t] - x0;
                    if (a < 0)
                        a = 0;
                    if (e > 16)
                        e = 16;
                    if (e <= a)
                        v[t] = _mm512_setzero_ps();
                    else if (a == 0 && e == 16)
                        v[t] = _mm512_loadu_ps(rowp[t] + x0);
                    else
                        v[t] = _mm512_maskz_expandloadu_ps((__mmask16)(((1u << e) - 1) & ~((1u << a) - 1)),
                                                           rowp[t] + x0 + a);
                }
                tr16x16(v);
                int rows = len - x0 < 16 ? len - x0 : 16;
                float *d = bp + (long)(u->j + x0) * 32 + t0;
                for (int x = 0; x < rows; x++)
                    _mm512_storeu_ps(d + (long)x * 32, v[x]);
            }
        }
    }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

static inline __attribute__((always_inline)) void k256_body(const int mr, int kc, const float *ap,
                                                            const float *bp, float *c, long ldc, int nv,
                                                            int acc, const float *bias, int relu)
{
    __m256 c0[6], c1[6];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
        c0[i] = c1[i] = _mm256_setzero_ps();
    for (int kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
        ap += 6;
        bp += 16;
    }
    const __m256i idx0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i idx1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    __m256i nvv = _mm256_set1_epi32(nv);
    __m256i m0 = _mm256_cmpgt_epi32(nvv, idx0), m1 = _mm256_cmpgt_epi32(nvv, idx1);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        if (acc) {
            c0[i] = _mm256_add_ps(c0[i], _mm256_maskload_ps(cr, m0));
            c1[i] = _mm256_add_ps(c1[i], _mm256_maskload_ps(cr + 8, m1));
        } else if (bias) {
            __m256 bv = _mm256_set1_ps(bias[i]);
            c0[i] = _mm256_add_ps(c0[i], bv);
            c1[i] = _mm256_add_ps(c1[i], bv);
        }
        if (relu) {
            c0[i] = _mm256_max_ps(c0[i], _mm256_setzero_ps());
            c1[i] = _mm256_max_ps(c1[i], _mm256_setzero_ps());
        }
        _mm256_maskstore_ps(cr, m0, c0[i]);
        _mm256_maskstore_ps(cr + 8, m1, c1[i]);
    }
}

static void kernel_avx2(int mr, int kc, const float *ap, const float *bp, float *c, long ldc, int nv, int acc,
                        const float *bias, int relu)
{
    switch (mr) {
    case 6: k256_body(6, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 5: k256_body(5, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 4: k256_body(4, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 3: k256_body(3, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    case 2: k256_body(2, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    default: k256_body(1, kc, ap, bp, c, ldc, nv, acc, bias, relu); break;
    }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// ----------------------------------------------------------------------------
// packing

static void pack_a(float *ap, const float *a, long lda, int a_trans, int m, int k, int mr, int panel)
{
    int i0 = panel * mr;
    float *dst = ap + (long)panel * k * mr;
    for (int kk = 0; kk < k; kk++, dst += mr)
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            int row = i0 + i;
            dst[i] = row >= m ? 0.0f : a_trans ? a[(long)kk * lda + row] : a[(long)row * lda + kk];
        }
}

/* pixels n0..n0+nv of the output grid (wo wide) as runs within one output row;
 * run.j is the offset of the run in the block */
static int strip_runs(struct run *r, int n0, int nv, int wo)
{
    int nr = 0;
    for (int j = 0; j < nv;) {
        int n = n0 + j, oy = n / wo, ox = n - oy * wo;
        int len = wo - ox < nv - j ? wo - ox : nv - j;
        r[nr++] = (struct run){j, len, oy, ox};
        j += len;
    }
    return nr;
}

static void pack_b_image(float *bp, const struct gemm_b *b, int k0, int kc, const struct run *runs, int nruns,
                         int nv, int nr)
{
    int kh = b->k, kw = b->kw ? b->kw : b->k, ph = b->p, pw = b->kw ? b->pw : b->p, kk2 = kh * kw;
    int ch = k0 / kk2, ki = k0 / kw % kh, kj = k0 % kw;
    long hw = (long)b->h * b->w;
    for (int r = 0; r < kc; r++, bp += nr) {
        const float *plane = b->img + ch * hw;
        for (int q = 0; q < nruns; q++) {
            const struct run *u = &runs[q];
            float *d = bp + u->j;
            int iy = u->oy * b->s - ph + ki;
            if (iy < 0 || iy >= b->h) {
                memset(d, 0, sizeof(float) * u->len);
                continue;
            }
            const float *srow = plane + (long)iy * b->w;
            if (b->s == 1) {
                int ix0 = u->ox - pw + kj;
                int lo = ix0 < 0 ? -ix0 : 0, hi = b->w - ix0 < u->len ? b->w - ix0 : u->len;
                if (hi < lo)
                    hi = lo;
                for (int t = 0; t < lo; t++)
                    d[t] = 0;
                memcpy(d + lo, srow + ix0 + lo, sizeof(float) * (hi - lo));
                for (int t = hi; t < u->len; t++)
                    d[t] = 0;
            } else {
                int ix = u->ox * b->s - pw + kj;
                for (int t = 0; t < u->len; t++, ix += b->s)
                    d[t] = (ix >= 0 && ix < b->w) ? srow[ix] : 0.0f;
            }
        }
        for (int t = nv; t < nr; t++)
            bp[t] = 0;
        if (++kj == kw) {
            kj = 0;
            if (++ki == kh)
                ki = 0, ch++;
        }
    }
}

static void pack_b_mat(float *bp, const struct gemm_b *b, int k0, int kc, int n0, int nv, int nr)
{
    for (int r = 0; r < kc; r++, bp += nr) {
        memcpy(bp, b->mat + (long)(k0 + r) * b->ldb + n0, sizeof(float) * nv);
        for (int t = nv; t < nr; t++)
            bp[t] = 0;
    }
}

// ----------------------------------------------------------------------------

/* The calling thread's share of the strips of C (inside a parallel region). */
static void gemm_strips(float *c, long ldc, int m, int n, int k, const float *ap, const struct gemm_b *b,
                        const float *bias, int relu, float *bbase)
{
    int isa = gemm_isa();
    kernel_fn *kern = isa == ISA_AVX512 ? kernel_avx512 : kernel_avx2;
    int mr = isa == ISA_AVX512 ? 8 : 6, nr = isa == ISA_AVX512 ? 32 : 16;
    int panels = (m + mr - 1) / mr, strips = (n + nr - 1) / nr;
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int per = (strips + T - 1) / T;
    int s_lo = t * per, s_hi = s_lo + per < strips ? s_lo + per : strips;
    float *bp = bbase + (size_t)t * KC * NR_MAX;
    struct run runs[NR_MAX];
    for (int st = s_lo; st < s_hi; st++) {
        int n0 = st * nr, nv = n - n0 < nr ? n - n0 : nr, nruns = 0;
        if (!b->mat)
            nruns = strip_runs(runs, n0, nv, b->wo);
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = k - k0 < KC ? k - k0 : KC;
            if (b->mat)
                pack_b_mat(bp, b, k0, kc, n0, nv, nr);
            else if (isa == ISA_AVX512)
                pack_b_image_512(bp, b, k0, kc, runs, nruns, nv);
            else
                pack_b_image(bp, b, k0, kc, runs, nruns, nv, nr);
            for (int p = 0; p < panels; p++) {
                int rows = m - p * mr < mr ? m - p * mr : mr;
                kern(rows, kc, ap + (long)p * k * mr + (long)k0 * mr, bp, c + (long)p * mr * ldc + n0, ldc,
                     nv, k0 > 0, bias ? bias + p * mr : NULL, relu && k0 + kc >= k);
            }
        }
    }
}

static size_t packed_a_floats(int m, int k)
{
    int mr = gemm_isa() == ISA_AVX512 ? 8 : 6;
    return ((size_t)(m + mr - 1) / mr * mr * k + 15) / 16 * 16;
}

static int gemm_threads(int n)
{
    int nr = gemm_isa() == ISA_AVX512 ? 32 : 16, strips = (n + nr - 1) / nr;
    return strips < omp_get_max_threads() ? strips : omp_get_max_threads();
}

void cpu_gemm(float *c, long ldc, int m, int n, int k, const float *a, long lda, int a_trans,
              const struct gemm_b *b, const float *bias, float *ws)
{
    int mr = gemm_isa() == ISA_AVX512 ? 8 : 6, panels = (m + mr - 1) / mr;
    float *bbase = ws + packed_a_floats(m, k);
    /* nt is read by the num_threads clause, which the analyzer does not see */
    // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
    const int nt = gemm_threads(n);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int p = 0; p < panels; p++)
            pack_a(ws, a, lda, a_trans, m, k, mr, p);
        gemm_strips(c, ldc, m, n, k, ws, b, bias, 0, bbase);
    }
}

size_t cpu_gemm_packed_a_floats(int m, int k)
{
    return packed_a_floats(m, k);
}

void cpu_gemm_pack_a(float *ap, const float *a, long lda, int a_trans, int m, int k)
{
    int mr = gemm_isa() == ISA_AVX512 ? 8 : 6, panels = (m + mr - 1) / mr;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++)
        pack_a(ap, a, lda, a_trans, m, k, mr, p);
}

void cpu_gemm_packed(float *c, long ldc, int m, int n, int k, const float *ap, const struct gemm_b *b,
                     const float *bias, int relu, float *ws)
{
    // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
    const int nt = gemm_threads(n);
#pragma omp parallel num_threads(nt)
    gemm_strips(c, ldc, m, n, k, ap, b, bias, relu, ws);
}

// ----------------------------------------------------------------------------
// weight gradient: c [m,n] += a [m,k] @ col^T, col = im2col(b) [n,k]
//
// Each thread takes a contiguous range of pixels and walks it KC at a time:
// it packs the KC columns of a into panels ([kc][MR] each), then for every
// strip of NR columns of c packs col^T ([kc][NR], a transposing gather from
// the image) and runs the micro-kernel over every panel, accumulating into
// its own C (thread 0: c itself; the others: a partial in ws added to c in
// thread order at the end).

size_t cpu_gemm_wgrad_ws_floats(int m, int n, int nthreads)
{
    size_t per_t = ((size_t)(m + MR_MAX) * KC + (size_t)KC * NR_MAX + 15) / 16 * 16;
    size_t cpart = ((size_t)m * n + 15) / 16 * 16;
    return (size_t)nthreads * per_t + (size_t)(nthreads > 1 ? nthreads - 1 : 0) * cpart + 64;
}

/* panel p of a's columns k0..k0+kc: dst [kc][mr], rows past m zero */
static void pack_a_cols(float *dst, const float *a, long lda, int m, int mr, int p, int k0, int kc)
{
    int i0 = p * mr;
    for (int i = 0; i < mr; i++) {
        int row = i0 + i;
        if (row >= m) {
            for (int r = 0; r < kc; r++)
                dst[r * mr + i] = 0;
            continue;
        }
        const float *src = a + (long)row * lda + k0;
        for (int r = 0; r < kc; r++)
            dst[r * mr + i] = src[r];
    }
}

/* bp [kc][nr]: bp[r][t] = col[j0 + t][pixel r of the runs], columns past nv zero */
static void pack_bt_image(float *bp, const struct gemm_b *b, int j0, int nv, int nr, int kc,
                          const struct run *runs, int nruns)
{
    int kk2 = b->k * b->k, s = b->s;
    long hw = (long)b->h * b->w;
    for (int t = 0; t < nv; t++) {
        int j = j0 + t, ch = j / kk2, ki = j / b->k % b->k, kj = j % b->k;
        const float *plane = b->img + ch * hw;
        for (int q = 0; q < nruns; q++) {
            const struct run *u = &runs[q];
            float *d = bp + (long)u->j * nr + t;
            int iy = u->oy * s - b->p + ki, len = u->len;
            if (iy < 0 || iy >= b->h) {
                for (int x = 0; x < len; x++)
                    d[(long)x * nr] = 0;
                continue;
            }
            const float *srow = plane + (long)iy * b->w;
            int ix0 = u->ox * s - b->p + kj;
            /* in bounds: 0 <= ix0 + x*s < w */
            int lo = ix0 < 0 ? (-ix0 + s - 1) / s : 0;
            int hi = ix0 >= b->w ? 0 : (b->w - ix0 + s - 1) / s;
            if (hi > len)
                hi = len;
            if (lo > hi)
                lo = hi;
            int x = 0;
            for (; x < lo; x++)
                d[(long)x * nr] = 0;
            if (s == 1)
                for (; x < hi; x++)
                    d[(long)x * nr] = srow[ix0 + x];
            else
                for (; x < hi; x++)
                    d[(long)x * nr] = srow[ix0 + x * s];
            for (; x < len; x++)
                d[(long)x * nr] = 0;
        }
    }
    if (nv < nr)
        for (int r = 0; r < kc; r++)
            for (int t = nv; t < nr; t++)
                bp[(long)r * nr + t] = 0;
}

void cpu_gemm_wgrad(float *c, long ldc, int m, int n, int k, const float *a, long lda, const struct gemm_b *b,
                    float *ws)
{
    int isa = gemm_isa();
    kernel_fn *kern = isa == ISA_AVX512 ? kernel_avx512 : kernel_avx2;
    int mr = isa == ISA_AVX512 ? 8 : 6, nr = isa == ISA_AVX512 ? 32 : 16;
    int panels = (m + mr - 1) / mr, strips = (n + nr - 1) / nr;
    size_t per_t = ((size_t)(m + MR_MAX) * KC + (size_t)KC * NR_MAX + 15) / 16 * 16;
    size_t cpart = ((size_t)m * n + 15) / 16 * 16;
    int nt = omp_get_max_threads();
    if (nt > 1 && k < 64 * nt)
        nt = k / 64 > 1 ? k / 64 : 1; /* a few pixels: fewer threads */
    float *parts = ws + (size_t)nt * per_t;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int per = (k + T - 1) / T;
        int lo = t * per, hi = lo + per < k ? lo + per : k;
        float *ap = ws + (size_t)t * per_t, *bp = ap + (size_t)(m + MR_MAX) * KC;
        float *cc = t ? parts + (size_t)(t - 1) * cpart : c;
        long ldcc = t ? n : ldc;
        struct run runs[KC];
        if (t && lo >= hi)
            memset(cc, 0, sizeof(float) * m * n);
        for (int k0 = lo; k0 < hi; k0 += KC) {
            int kc = hi - k0 < KC ? hi - k0 : KC;
            int acc = t == 0 || k0 > lo;
            for (int p = 0; p < panels; p++)
                pack_a_cols(ap + (size_t)p * kc * mr, a, lda, m, mr, p, k0, kc);
            int nruns = strip_runs(runs, k0, kc, b->wo);
            for (int st = 0; st < strips; st++) {
                int n0 = st * nr, nv = n - n0 < nr ? n - n0 : nr;
                if (isa == ISA_AVX512 && b->s == 1)
                    pack_bt_image_512(bp, b, n0, nv, kc, runs, nruns);
                else
                    pack_bt_image(bp, b, n0, nv, nr, kc, runs, nruns);
                for (int p = 0; p < panels; p++) {
                    int rows = m - p * mr < mr ? m - p * mr : mr;
                    kern(rows, kc, ap + (size_t)p * kc * mr, bp, cc + (long)p * mr * ldcc + n0, ldcc, nv, acc,
                         NULL, 0);
                }
            }
        }
        if (T > 1) {
#pragma omp barrier
#pragma omp for schedule(static)
            for (int i = 0; i < m; i++) {
                float *cr = c + (long)i * ldc;
                for (int u = 1; u < T; u++) {
                    const float *pr = parts + (size_t)(u - 1) * cpart + (size_t)i * n;
                    for (int j = 0; j < n; j++)
                        cr[j] += pr[j];
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------
// bias

/* out [n,c,hw] += b [c] */
void cpu_add_bias(float *out, const float *b, int n, int c, long hw)
{
    if (!b)
        return;
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < n * c; pl++) {
        float bv = b[pl % c], *o = out + pl * hw;
        for (long i = 0; i < hw; i++)
            o[i] += bv;
    }
}

/* db [c] += sum over n and hw of dout [n,c,hw] */
void cpu_sum_bias(float *db, const float *dout, int n, int c, long hw)
{
    if (!db)
        return;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            const float *g = dout + ((long)i * c + ch) * hw;
            float part = 0;
            for (long j = 0; j < hw; j++)
                part += g[j];
            acc += part;
        }
        db[ch] += (float)acc;
    }
}
