/*
 * rng: MT19937 as in PyTorch's at::mt19937 (Matsumoto & Nishimura's
 * reference algorithm), plus the few distributions the project needs with
 * PyTorch's exact bit recipes (ATen's uniform_real: take the low 24 or 53
 * bits and scale; randperm: Fisher-Yates forward with random() % (n-i)).
 */
#include "rng.h"

#include "err.h"

void rng_seed(rng *r, uint64_t seed)
{
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < RNG_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = RNG_N;
}

/* Regenerate the whole block of 624 words (the "twist"). */
static void twist_(rng *r)
{
    const uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix = 0x9908b0dfu;
    for (int i = 0; i < RNG_N; i++) {
        uint32_t y = (r->mt[i] & upper) | (r->mt[(i + 1) % RNG_N] & lower);
        r->mt[i] = r->mt[(i + 397) % RNG_N] ^ (y >> 1) ^ ((y & 1u) ? matrix : 0u);
    }
    r->index = 0;
}

uint32_t rng_u32(rng *r)
{
    if (r->index >= RNG_N)
        twist_(r);
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t rng_u64(rng *r)
{
    uint64_t hi = rng_u32(r), lo = rng_u32(r);
    return (hi << 32) | lo;
}

float rng_uniform_f32(rng *r, float from, float to)
{
    /* ATen computes in double (CPU dist_acctype) and casts the result. */
    double x = (double)(rng_u32(r) & ((1u << 24) - 1)) * (1.0 / (double)(1u << 24));
    return (float)(x * ((double)to - (double)from) + (double)from);
}

double rng_uniform_f64(rng *r, double from, double to)
{
    double x = (double)(rng_u64(r) & ((UINT64_C(1) << 53) - 1)) * (1.0 / (double)(UINT64_C(1) << 53));
    return x * (to - from) + from;
}

uint32_t rng_below(rng *r, uint32_t n)
{
    return n ? rng_u32(r) % n : 0;
}

void rng_randperm(rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t z = (int64_t)(rng_u32(r) % (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[z + i];
        perm[z + i] = t;
    }
}

void rng_save(const rng *r, uint8_t out[RNG_STATE_BYTES])
{
    for (int i = 0; i <= RNG_N; i++) {
        uint32_t v = i < RNG_N ? r->mt[i] : (uint32_t)r->index;
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (uint8_t)(v >> (8 * b));
    }
}

int rng_load(rng *r, const uint8_t in[RNG_STATE_BYTES])
{
    for (int i = 0; i <= RNG_N; i++) {
        uint32_t v = 0;
        for (int b = 0; b < 4; b++)
            v |= (uint32_t)in[4 * i + b] << (8 * b);
        if (i < RNG_N)
            r->mt[i] = v;
        else if (v > RNG_N)
            return err_set("rng state: index %u out of range", v);
        else
            r->index = (int)v;
    }
    return 0;
}
