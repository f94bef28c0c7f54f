/*
 * rng: a Mersenne Twister (MT19937) that reproduces PyTorch's CPU generator,
 * so seeded choices (default initialisation, torch.randperm) can be compared
 * bit for bit with the reference.  rng_seed(r, s) == torch.manual_seed(s)
 * (s taken modulo 2^32 as PyTorch does).  The state is a plain struct the
 * caller owns (rng_init-style: no heap), copyable, and serialisable with
 * rng_save/rng_load for checkpoints.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RNG_N 624

typedef struct rng {
    uint32_t mt[RNG_N];
    int index;
} rng;

void rng_seed(rng *r, uint64_t seed);
/* One 32-bit draw: CPUGeneratorImpl::random(). */
uint32_t rng_u32(rng *r);
/* One 64-bit draw: CPUGeneratorImpl::random64() (first draw is the high half). */
uint64_t rng_u64(rng *r);
/* torch.Tensor.uniform_(from, to) on a float32 tensor, one element. */
float rng_uniform_f32(rng *r, float from, float to);
/* torch.Tensor.uniform_(from, to) on a float64 tensor, one element. */
double rng_uniform_f64(rng *r, double from, double to);
/* An integer in [0, n): plain modulo of a 32-bit draw, as torch.randint. */
uint32_t rng_below(rng *r, uint32_t n);
/* perm[0..n) = torch.randperm(n, generator=g) of PyTorch 1.13 (CPU, n < 2^31). */
void rng_randperm(rng *r, int64_t *perm, int64_t n);

/* Bytes needed by rng_save; the layout is 624 LE u32 words then the index. */
#define RNG_STATE_BYTES (4 * (RNG_N + 1))
void rng_save(const rng *r, uint8_t out[RNG_STATE_BYTES]);
int rng_load(rng *r, const uint8_t in[RNG_STATE_BYTES]);
