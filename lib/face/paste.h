/*
 * paste: a generator's result at the picture's own resolution.  The model
 * works on a small square (128 px for the shipped model); rather than
 * hand back that blurrier square, the picture keeps its pixels and gets
 * the generator's CHANGE added:
 *
 *     picture += strength * feather * upsample(lowpass(G(x) - x))
 *
 * x is the model's view of a region of the picture (a face found by
 * lib/face/face.h, or the whole picture's central square), B the map from model
 * pixels to the picture.  translate --face and the default whole-picture
 * way share paste_change; they differ only in the region and the feather.
 *
 *   float *x = ...[3*size*size], *y = ...;  double B[6];
 *   paste_frame_input(x, B, &pic, size, resize);   // the picture's framing
 *   run the generator: x -> y
 *   paste_change(&pic, x, y, size, B, PASTE_FRAME, 1.0f);
 *
 * The change is cleaned at model size before it is upsampled:
 *
 * - Detail: the generator's output is blurrier than its input, so G(x) - x
 *   holds, beside the aging, minus a share of the input's fine detail;
 *   added at full resolution it would blur the picture (detail energy
 *   0.70-0.85 of the input's).  The input's detail is x minus its binomial
 *   low-pass (PASTE_SPLIT passes of [1 2 1]/4, sigma 2.8 model pixels); the
 *   share k that the change's high band takes away from it over the whole
 *   square (least squares, clamped to [0, 1]) is the generator's blur, and
 *   k times the detail is given back.  What a generator does beyond that in
 *   one place stays: G's new lines, and F's smoothed wrinkles (shrinking
 *   every change against the input's detail, as an earlier version did,
 *   kept the picture sharp but undid F: -0.3 judged years on test faces
 *   against -2.0 now).
 * - Checkerboard: a transposed convolution's output carries a period-2
 *   checkerboard (0.6-0.8/255 for the shipped model).  The change is
 *   filtered with [1 2 1]/4 along each axis: its response cos^2(pi f) is
 *   exactly 0 at the model's Nyquist frequency, where the checkerboard
 *   lives ((-1)^x, (-1)^y and (-1)^(x+y) vanish), while what the generator
 *   means to change (a few model pixels and up) passes at 0.5 or more.
 *
 * Every filter has positive taps only, so unlike a sharper (sinc-like) one
 * it cannot ring: no halo at hard edges, nor at the region's border (edge
 * pixels are repeated); the bilinear upsampling adds no ringing either.
 * bench/fullres_metrics.py measures both (README.md, "Full resolution").
 *
 * The strength scales the change: 0 leaves every pixel as it was, 1 is the
 * generator's change, 2 doubles it (and any halo or artefact with it).
 *
 * Errors: -1 with err_msg().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "image/photo.h"

/* How the change fades out around its region. */
enum paste_feather {
    /* A face in a photo: 1 inside a superellipse over the model's square,
     * falling smoothly to 0 over its outer quarter (rounded corners): the
     * hairline and jaw change, the square's corners (background) do not. */
    PASTE_FACE,
    /* The whole picture: 1 over the model's square (the framed region),
     * then the edge's change fades smoothly to 0 at the picture's borders,
     * over at most a quarter of the square beyond it (a wide picture's
     * sides keep their pixels past that).  B must not rotate. */
    PASTE_FRAME,
};

#define PASTE_MAX_STRENGTH 2.0f
/* [1 2 1]/4 passes of the detail band split. */
#define PASTE_SPLIT 16

/* The [1 2 1]/4 low-pass along each axis of d ([c,size,size]), in place,
 * edge pixels repeated. */
int paste_lowpass(float *d, int c, int size);
/* picture (c 3 or 4; alpha kept) += strength * feathered change: every
 * pixel of the region gets w * lowpass(after - before), with before/after
 * the generator's input and output ([3,size,size] in [-1, 1]), sampled
 * bilinearly through B^-1 (averaged over sub-pixels where the picture is
 * smaller than the model).  Pixels the feather leaves at 0 are untouched;
 * strength 0 changes nothing. */
int paste_change(image *picture, const float *before, const float *after, int size, const double B[6],
                 enum paste_feather feather, float strength);

/* The whole picture's framing, as the model was trained: its central
 * square (the side is the shorter side; a non-square picture is cropped,
 * never squashed), resized to resize (<= 0: transform_resize_size(size))
 * and centre-cropped to size, as transform_eval does.  x: the model's input
 * [3,size,size] in [-1, 1]; B (may be NULL): model pixels -> picture.  For
 * a square picture x is exactly transform_eval's (the reference's) input.
 * picture c 3 or 4 (alpha dropped). */
int paste_frame_input(float *x, double B[6], const image *picture, int size, int resize);

/* A generator: y = G(x), [3,size,size] in [-1, 1]. */
typedef int (*paste_gen_fn)(void *ctx, const float *x, float *y, int size);
/* The whole job on a picture (c 3 or 4): its framing through gen, the
 * change pasted back with PASTE_FRAME.  The result keeps the picture's
 * size; the framed region holds the change at full strength. */
int paste_whole(image *picture, int size, int resize, paste_gen_fn gen, void *ctx, float strength);

/* A picture file's whole way through translate or serve. */
typedef struct paste_job {
    int size, resize; /* the model's framing */
    paste_gen_fn gen; /* and its generator */
    void *ctx;
    float strength;  /* 0 to PASTE_MAX_STRENGTH (full resolution only) */
    int raw;         /* 1: the generator's own size x size image instead */
    long max_pixels; /* larger pictures are refused before decoding */
} paste_job;
/* Decode bytes (PNG or JPEG, lib/image/photo.h: upright, grey and alpha kept),
 * then either paste_whole (the picture's size) or, raw, the generator's
 * output for paste_frame_input (RGB, size x size); encode it as fmt
 * (PHOTO_PNG, PHOTO_JPEG, PHOTO_SAME: the input's) into *out (malloc'd).
 * At strength 0 in the input's format the bytes are the input's own. */
int paste_photo(const paste_job *j, const uint8_t *bytes, size_t n, int fmt, uint8_t **out, size_t *len);
/* paste_photo's steps, for a caller that decodes and encodes itself (serve):
 * whether the result is the input's own bytes (in format jpeg: nothing to
 * do), else the decoded photo through j in place: paste_whole, or raw, the
 * generator's output (RGB, size x size). */
bool paste_photo_unchanged(const paste_job *j, const photo *p, bool jpeg);
int paste_photo_apply(const paste_job *j, photo *p);
