/*
 * safetensors: read and write the safetensors format, aging-cyclegan's
 * checkpoint container (docs/checkpoint.md says which tensors and metadata
 * keys a checkpoint holds; this module knows only the container).
 *
 * Byte layout (huggingface/safetensors, little-endian):
 *
 *     u64 N                     header length in bytes, N <= 100,000,000
 *     N bytes                   UTF-8 JSON object, right-padded with spaces:
 *         {"__metadata__": {"key": "value", ...},          (optional, str -> str)
 *          "name": {"dtype": "F32", "shape": [32, 3, 7, 7],
 *                   "data_offsets": [begin, end]}, ...}
 *     data area                 the rest of the file; tensor bytes (C order,
 *                               little-endian) at [begin, end) relative to
 *                               the start of the data area
 *
 * The reader checks everything the reference reader checks: end-begin ==
 * numel * element size, tensors tile the data area exactly (first at 0, no
 * gap, no overlap, last end == data size), names unique, metadata values
 * strings, shapes of non-negative integers, known dtypes, at most
 * ST_MAX_TENSORS tensors and ST_MAX_META metadata keys.  Any violation makes
 * st_open() return NULL with a message in err_msg() naming the file and the
 * tensor ("ckpt.safetensors: tensor 'G.model.1.weight': data_offsets [0, 12]
 * do not match shape [32,3,7,7] of F32 (18816 bytes)").
 *
 * The writer pads the header with spaces to a multiple of 8 bytes, as the
 * reference does, so the data area starts 8-byte aligned.  It lays tensors
 * out by descending element size (8, 4, 2, 1 bytes) and, within one size,
 * in the order they were added; every tensor is then naturally aligned in
 * the data area.  (The Python library sorts by alignment then by *name*:
 * the files are equivalent, not byte-identical.)  The header lists
 * __metadata__ first, then the tensors in layout order.  Saving goes through
 * "<path>.tmp.XXXXXX" in the same directory, fsync, rename: a crash never
 * leaves a torn file at <path>.
 *
 * Usage:
 *     st_file *f = st_open("last.safetensors");
 *     if (!f) die("%s", err_msg());
 *     int64_t shape[4] = {32, 3, 7, 7};
 *     if (st_read_f32(f, "G.model.1.weight", w, shape, 4)) die("%s", err_msg());
 *     st_free(f);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS   8            /* more dimensions are rejected */
/* Largest integer a JSON number (a double in cJSON) carries exactly: larger
 * dimensions are rejected. */
#define ST_MAX_INT 9007199254740992.0 /* 2^53 */
#define ST_MAX_HEADER 100000000ull /* the reference reader's limit */
/* This reader's limits, far above what aging-cyclegan writes (a training
 * checkpoint has about 1000 tensors and 15 metadata keys), so that a small
 * hostile header cannot make every later lookup pay for 100k names. */
#define ST_MAX_TENSORS 16384
#define ST_MAX_META    1024

/* Element types with whole-byte elements.  The sub-byte F4/F6_* types of
 * recent safetensors versions are rejected as unsupported. */
typedef enum st_dtype {
    ST_BOOL,
    ST_U8,
    ST_I8,
    ST_F8_E5M2,
    ST_F8_E4M3,
    ST_F8_E8M0,
    ST_F8_E4M3FNUZ,
    ST_F8_E5M2FNUZ,
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_C64,
    ST_F64,
    ST_I64,
    ST_U64,
    ST_DTYPE_COUNT
} st_dtype;

/* "F32", "BF16", ... as written in the header; "?" for an invalid value. */
const char *st_dtype_name(st_dtype dtype);
/* Bytes per element (1, 2, 4 or 8); 0 for an invalid value. */
size_t st_dtype_size(st_dtype dtype);

/* One tensor of an open file.  Everything points into the st_file and lives
 * as long as it.  data is aligned to the element size when the file lays its
 * tensors out naturally aligned (st_writer and the Python library do); a
 * file from another writer may not, so read through st_read/st_read_f32 or
 * memcpy unless you know where the file came from. */
typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;                   /* 0 for a scalar (one element) */
    int64_t shape[ST_MAX_DIMS]; /* shape[0..ndim) */
    int64_t numel;              /* product of the shape (1 for a scalar) */
    const void *data;           /* nbytes of little-endian, C-order data */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

// ----------------------------------------------------------------------------
// reading

/* Read and validate a whole file into one owned buffer.  NULL on any error
 * (err_msg() says what and where).  The caller frees with st_free(). */
st_file *st_open(const char *path);
/* The same from bytes in memory (copied; the caller keeps buf).  label
 * names the source in messages. */
st_file *st_parse(const void *buf, size_t len, const char *label);
void st_free(st_file *f); /* NULL-safe */

/* Tensors in data-area order, i in [0, st_count). */
int st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, int i);
/* The tensor called name, or NULL (and err_msg() "path: missing tensor 'x'"). */
const st_tensor *st_get(const st_file *f, const char *name);
/* Tensors in name order (strcmp), i in [0, st_count). */
const st_tensor *st_by_name(const st_file *f, int i);
/* How many tensor names start with prefix; *first (may be NULL) gets the
 * name-order index of the first, so st_by_name(f, *first + k) lists them.
 * O(log n + count). */
int st_prefix_range(const st_file *f, const char *prefix, int *first);
/* The label the file was opened with (its path), for messages. */
const char *st_path(const st_file *f);

/* __metadata__: the value for key, or NULL when absent. */
const char *st_meta(const st_file *f, const char *key);
/* Metadata entries in header order, i in [0, st_meta_count). */
int st_meta_count(const st_file *f);
const char *st_meta_key(const st_file *f, int i);

/* Copy tensor name into dst (numel elements) after checking that it exists,
 * that its dtype is exactly dtype and its shape exactly shape[0..ndim).
 * Returns 0, or -1 with "path: missing tensor 'x'", "path: tensor 'x' has
 * shape [a,b] but the model expects [c,d]" or "path: tensor 'x' is I32 but
 * I64 is expected". */
int st_read(const st_file *f, const char *name, st_dtype dtype, void *dst, const int64_t *shape, int ndim);
/* The same into float32: F32 is copied, F16, BF16 and F64 are converted
 * (F64 values beyond float range become +-inf); other dtypes are an error. */
int st_read_f32(const st_file *f, const char *name, float *dst, const int64_t *shape, int ndim);

// ----------------------------------------------------------------------------
// writing

typedef struct st_writer st_writer;

/* An empty writer (NULL only when out of memory).  Free with st_writer_free. */
st_writer *st_writer_new(void);
void st_writer_free(st_writer *w); /* NULL-safe; the caller's data untouched */

/* Add a tensor.  name and shape are copied; data is REFERENCED, not copied:
 * it must hold numel*st_dtype_size(dtype) bytes (little-endian, C order) and
 * stay alive and unchanged until st_writer_save returns (NULL is allowed for
 * an empty tensor).  ndim 0 is a scalar.  -1 (err_msg) for a duplicate or
 * reserved name, a negative dimension, ndim outside [0, ST_MAX_DIMS]. */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, const int64_t *shape, int ndim,
                  const void *data);
/* Set __metadata__[key] = value (both copied; setting a key again replaces
 * its value, keeping its place). */
int st_writer_meta(st_writer *w, const char *key, const char *value);
/* Write the file (lib/base/fileout.h): a regular file atomically (temporary
 * file in the same directory, fsync, rename, fsync of the directory), a
 * FIFO or device in place.  On error returns -1, removes the temporary file
 * and leaves any existing file at path untouched.  The writer can be saved
 * again or freed afterwards. */
int st_writer_save(const st_writer *w, const char *path);
/* The bytes st_writer_save would write, in a malloc'd buffer the caller
 * frees: for checking a file with st_parse before it is written. */
int st_writer_to_memory(const st_writer *w, uint8_t **data, size_t *n);
