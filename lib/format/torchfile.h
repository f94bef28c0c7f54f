/*
 * torchfile: PyTorch checkpoints (torch.save .pth files) to and from a flat
 * set of named tensors plus string metadata, the shape of a safetensors file
 * (docs/ckpt.md has the mapping; the byte formats are described in
 * shared/docs/torch-checkpoint-format.md).
 *
 * Reading accepts both container formats torch.save writes:
 *   zip    (PyTorch >= 1.6): "<root>/data.pkl" + "<root>/data/<key>" members,
 *          read with libzip; every declared size is checked against the file
 *          and the storage size before anything is allocated.
 *   legacy (_use_new_zipfile_serialization=False): magic, protocol, sys_info
 *          and main pickles, the storage key list, then per storage an int64
 *          element count and the raw bytes.
 * The pickle goes through lib/format/pickle.h (whitelisted globals only).  Tensors
 * are materialised in C order honouring storage offsets and strides (views
 * and shared storages are copied out, bounds-checked against the storage).
 *
 * Flattening (tf_set_from_pth):
 *   a state_dict at top level           -> its tensors, names as they are
 *   top-level key K holding a state_dict -> "K.<name>" ("module." stripped)
 *   K holding {state, param_groups}      -> "K.state.<idx>.<field>" tensors (a number
 *                                           `step` becomes an F32 scalar);
 *                                           metadata "K.param_groups" = JSON of the
 *                                           single group without "params"
 *   K holding a dict with last_epoch     -> metadata K = JSON of it (a scheduler);
 *                                           "sched_epoch" = the first last_epoch
 *   K = "epoch" (int)                    -> metadata "epoch"
 *   other nested dicts                   -> dotted names; non-tensor leaves as JSON metadata
 * plus "format", "format_version", "kind" (train when an optimiser is present,
 * else weights) and "source".
 *
 * Writing (tf_set_save_pth) emits the dict torch.save would for the reference
 * project: {"epoch", nets as OrderedDicts, "opt_X": {"state", "param_groups"},
 * "sched_X"}, in the zip format with 64-byte aligned storages, readable by
 * torch.load (weights_only=True too).
 *
 *   tf_set s;
 *   if (tf_set_from_pth("best.pth", &s) || tf_set_save_st(&s, "best.safetensors"))
 *       die("%s", err_msg());
 *   tf_set_free(&s);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"
#include "base/strmap.h"

#define TF_MAX_FILE   (64ull << 30) /* larger files are refused */
#define TF_MAX_PICKLE (256u << 20)  /* data.pkl larger than this is refused */
/* Views and shared storages are copied out, so the tensors of a .pth may
 * take more bytes than its storages: at most TF_MAX_EXPANSION times the
 * file's size plus TF_EXPANSION_SLACK in all.  A file whose views repeat
 * one storage more often than that (a 600-byte file with a zero-stride
 * view of 2^28 elements) is refused instead of filling memory. */
#define TF_MAX_EXPANSION   4
#define TF_EXPANSION_SLACK (1u << 20)

typedef struct tf_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* nbytes, little-endian, C order */
    size_t nbytes;
} tf_tensor;

/* A flat checkpoint: tensors in file order and metadata in insertion order.
 * Zero-initialise (or tf_set_init) before use; tf_set_free releases
 * everything the set owns. */
typedef struct tf_set {
    tf_tensor *t;
    int n, cap; /* n <= ST_MAX_TENSORS */
    char **meta_key, **meta_val;
    int nmeta, capmeta;     /* nmeta <= ST_MAX_META */
    strmap by_name, by_key; /* tensor name -> index in t, metadata key -> index */
    void **owned;           /* buffers freed with the set */
    int nowned, capowned;
    st_file *st;     /* when built from a safetensors file: tensor data points into it */
    char format[64]; /* "torch zip (root 'best')", "torch legacy", "safetensors" */
} tf_set;

void tf_set_init(tf_set *s);
void tf_set_free(tf_set *s); /* NULL-safe; leaves s empty */

/* Read a .pth file (zip or legacy) into s.  -1 + err_msg() naming the file. */
int tf_set_from_pth(const char *path, tf_set *s);
/* Read a safetensors file into s (the tensors reference the open file). */
int tf_set_from_st(const char *path, tf_set *s);
/* By content: zip/legacy pickle magic -> .pth, anything else -> safetensors. */
int tf_set_open(const char *path, tf_set *s);

/* Append a tensor (name copied; data referenced, or copied when copy=1)
 * or a metadata entry (both copied; a repeated key replaces the value).
 * A repeated tensor name, more than ST_MAX_TENSORS tensors or more than
 * ST_MAX_META metadata keys are errors (the set must fit a safetensors
 * file).  Lookups by name or key are hashed (O(1)). */
int tf_set_add(tf_set *s, const char *name, st_dtype dt, const int64_t *shape, int ndim, const void *data,
               size_t nbytes, int copy);
int tf_set_meta(tf_set *s, const char *key, const char *value);
const char *tf_set_get_meta(const tf_set *s, const char *key);
const tf_tensor *tf_set_find(const tf_set *s, const char *name);

/* Write s as safetensors (atomic, lib/format/safetensors.h). */
int tf_set_save_st(const tf_set *s, const char *path);
/* The same file's bytes in a malloc'd buffer (to check before writing). */
int tf_set_st_bytes(const tf_set *s, uint8_t **data, size_t *n);
/* Write s as a torch zip checkpoint (built in memory, then written as
 * lib/base/fileout.h says: a regular file atomically).  Tensor names are grouped by their first component: "opt_X"
 * groups become Adam state dicts (param_groups from metadata
 * "opt_X.param_groups", params = the parameter count of net X), the others
 * OrderedDict state_dicts; metadata "epoch" becomes an int and "sched_X"
 * JSON objects scheduler dicts. */
int tf_set_save_pth(const tf_set *s, const char *path);

/* Is name a BatchNorm buffer (running_mean/running_var/num_batches_tracked)
 * rather than a parameter?  The rule torch's parameters() order follows. */
int tf_is_buffer_name(const char *name);
