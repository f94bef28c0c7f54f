/*
 * half: fp16 / bf16 conversions matching PyTorch 1.13 on CPU bit for bit.
 *
 * fp16 follows the FP16 library that c10::Half uses (fp16_ieee_from/to_fp32):
 * rounding is done by the FPU itself through a scaled float addition, so
 * ties go to even and denormals come out right without branches.  NaN ->
 * sign|0x7E00 (payload dropped).  Half NaNs widen with the quiet bit set.
 * bf16 rounds to nearest even by adding 0x7FFF + lsb; NaN -> 0xFFFF, which
 * is what torch's vectorised CPU path (the one .bfloat16() takes) writes.
 * bf16 -> f32 is a plain shift, payload kept (torch does the same).
 */
#include "half.h"

#include <math.h>
#include <string.h>

static inline uint32_t bits_(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t half_from_f32(float f)
{
    /* Scaling by 2^112 then 2^-110 pushes overflow to inf and leaves the
     * value where adding a power of two (chosen from the exponent) makes the
     * FPU round the mantissa to exactly 10 bits (fewer for denormals). */
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    uint32_t w = bits_(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = float_((bias >> 1) + 0x07800000u) + base;
    uint32_t b = bits_(base);
    uint32_t nonsign = ((b >> 13) & 0x7C00u) + (b & 0x0FFFu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float half_to_f32(uint16_t h)
{
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    /* Normal numbers (and inf/NaN): re-bias the exponent by multiplying. */
    float normalized = float_((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    /* Denormals: place the mantissa under a 0.5 exponent and subtract 0.5. */
    float denormalized = float_((two_w >> 17) | (126u << 23)) - 0.5f;
    uint32_t r = sign | (two_w < (1u << 27) ? bits_(denormalized) : bits_(normalized));
    return float_(r);
}

uint16_t bf16_from_f32(float f)
{
    if (isnan(f))
        return 0xFFFF;
    uint32_t u = bits_(f);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float bf16_to_f32(uint16_t b)
{
    return float_((uint32_t)b << 16);
}

void half_from_f32_n(uint16_t *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = half_from_f32(in[i]);
}

void half_to_f32_n(float *out, const uint16_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = half_to_f32(in[i]);
}

void bf16_from_f32_n(uint16_t *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = bf16_from_f32(in[i]);
}

void bf16_to_f32_n(float *out, const uint16_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = bf16_to_f32(in[i]);
}
