/*
 * infer: one generator loaded from a checkpoint, in evaluation mode, ready
 * to translate CHW float images in [-1, 1] one at a time.  Used by
 * translate (and the web demo).  Not thread-safe: one infer per thread.
 *
 *   infer *g = infer_open("best.safetensors", "G.", be);
 *   infer_run(g, in, out, 256, 256);     // in/out: host float [3,256,256]
 *   infer_free(g);
 */
#pragma once

#include "backend/backend.h"

typedef struct infer infer;

/* Load the generator stored under prefix ("G." young->old, "F." old->young).
 * NULL with err_msg() when the file or the network in it is unusable. */
infer *infer_open(const char *path, const char *prefix, backend_t be);
void infer_free(infer *g); /* NULL-safe */
/* out = generator(in) for one image [3,h,w] (host memory); h and w must be
 * multiples of 4 and at least 8.  Output values lie in [-1, 1] (tanh). */
int infer_run(infer *g, const float *in, float *out, int h, int w);
/* The image size the model was trained at and the shorter side its faces
 * were resized to before cropping (transform.h), from the checkpoint's
 * config; 0 for what the file does not record. */
void infer_framing(const infer *g, int *size, int *resize);
/* The same training size read off a checkpoint file without loading it;
 * 0 when the file does not record one or cannot be read. */
int infer_file_size(const char *path);
/* "ngf=32 blocks=9" for messages. */
const char *infer_describe(const infer *g);
