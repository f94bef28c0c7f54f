/*
 * half: f32 <-> IEEE fp16 and f32 <-> bfloat16, bit-exact with PyTorch's
 * tensor.half() / tensor.bfloat16() on CPU (round to nearest, ties to even;
 * overflow goes to inf; denormals kept).  Used when tensors are stored or
 * sent as f16/bf16 (the `tensor` record's dtype field) and by the
 * mixed-precision code.  NaN handling follows torch too: see half.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint16_t half_from_f32(float f);
float half_to_f32(uint16_t h);
uint16_t bf16_from_f32(float f);
float bf16_to_f32(uint16_t b);

/* Array versions: out[i] = conv(in[i]) for i < n; out and in must not overlap. */
void half_from_f32_n(uint16_t *out, const float *in, size_t n);
void half_to_f32_n(float *out, const uint16_t *in, size_t n);
void bf16_from_f32_n(uint16_t *out, const float *in, size_t n);
void bf16_to_f32_n(float *out, const uint16_t *in, size_t n);
