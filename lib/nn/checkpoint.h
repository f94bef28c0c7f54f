/*
 * checkpoint: networks to and from safetensors files (docs/checkpoint.md).
 * Each tensor is stored under a prefix and its reference state_dict name
 * ("G." + "model.1.weight"); parameters and BN statistics as F32,
 * num_batches_tracked as an I64 scalar.  Loading checks that every tensor
 * the network has is present with the right shape (F16/BF16/F64 are
 * converted), and the generator/discriminator sizes can be read off a file
 * so tools need no size options to use it.
 *
 *   ckpt_out *c = ckpt_out_new();
 *   ckpt_out_add_net(c, "G.", G);  ckpt_out_meta(c, "epoch", "3");
 *   ckpt_out_save(c, "run.safetensors");  ckpt_out_free(c);
 *
 *   st_file *f = st_open("run.safetensors");
 *   struct gen_config gc; ckpt_gen_config(f, "G.", &gc);
 *   struct net *G = gen_new(be, &gc, NULL); ckpt_load_net(f, "G.", G);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "model.h"
#include "format/safetensors.h"

typedef struct ckpt_out ckpt_out;

/* An empty checkpoint to fill; NULL when out of memory.  ckpt_out_free. */
ckpt_out *ckpt_out_new(void);
void ckpt_out_free(ckpt_out *c); /* NULL-safe */
/* Stage every tensor of net under prefix (copied to host memory now, so the
 * net may change before saving). */
int ckpt_out_add_net(ckpt_out *c, const char *prefix, struct net *net);
/* Stage one float tensor living in be's memory (copied now). */
int ckpt_out_add_f32(ckpt_out *c, const char *name, const int64_t *shape, int ndim, backend_t be,
                     const float *dev);
/* Stage one int64 scalar. */
int ckpt_out_add_i64(ckpt_out *c, const char *name, int64_t value);
/* Stage one float32 scalar (shape []), e.g. torch's Adam `step`. */
int ckpt_out_add_f32_scalar(ckpt_out *c, const char *name, float value);
int ckpt_out_meta(ckpt_out *c, const char *key, const char *value);
/* Write atomically (temporary file + rename). */
int ckpt_out_save(ckpt_out *c, const char *path);

#define CKPT_FORMAT         "aging-cyclegan"
#define CKPT_FORMAT_VERSION "1"

/* Metadata "format" and "format_version" (either may be NULL when absent,
 * as in a plain safetensors file, accepted and judged by its tensors): when
 * present they must be CKPT_FORMAT and CKPT_FORMAT_VERSION.  -1 naming
 * label and the key otherwise. */
int ckpt_check_format(const char *label, const char *format, const char *version);
/* The same for an open file. */
int ckpt_check_st_format(const st_file *f);

/* Does f hold any tensor under prefix ("G.")?  A net with some tensors is
 * there, and loading it then names what it lacks. */
bool ckpt_has_net(const st_file *f, const char *prefix);
/* Sizes of the generator / discriminator stored under prefix, read off its
 * first conv and residual blocks, then checked against the whole file
 * before anything is allocated: every tensor of a network of that size is
 * present with its exact shape and a float dtype (I64 for
 * num_batches_tracked), and nothing else is under prefix.  So the network
 * a caller builds from cfg is never larger than the bytes the file holds.
 * -1 naming the file and the first missing, mis-shaped or unexpected
 * tensor. */
int ckpt_gen_config(const st_file *f, const char *prefix, struct gen_config *cfg);
int ckpt_disc_config(const st_file *f, const char *prefix, struct disc_config *cfg);
/* Load every tensor of net from f under prefix; -1 naming the first missing
 * or mis-shaped tensor. */
int ckpt_load_net(const st_file *f, const char *prefix, struct net *net);
/* One float tensor into be's memory, shape checked. */
int ckpt_load_f32(const st_file *f, const char *name, const int64_t *shape, int ndim, backend_t be,
                  float *dev);
