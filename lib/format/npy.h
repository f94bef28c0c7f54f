/*
 * npy: NumPy's .npy arrays and .npz archives of them, for pytorch-fid's
 * statistics files (np.savez_compressed(path, mu=..., sigma=...)).
 *
 * .npy byte layout (numpy.lib.format):
 *     "\x93NUMPY", u8 major (1, 2 or 3), u8 minor (0)
 *     header length: u16 LE (version 1) or u32 LE (versions 2, 3)
 *     header: an ASCII Python dict literal, space-padded and ending in '\n',
 *         {'descr': '<f8', 'fortran_order': False, 'shape': (2048, 2048), }
 *     data: prod(shape) elements, C order (or Fortran order when set)
 * .npz: a zip (stored or deflated) whose members are "<key>.npy".
 *
 * Read: little-endian float32/float64 ('<f4', '<f8'), any number of
 * dimensions up to NPY_MAX_DIMS, Fortran order transposed to C order;
 * values come back as doubles.  Write: version 1.0, '<f8', C order, header
 * padded so the data starts on a 64-byte boundary (as numpy >= 1.18);
 * members stored uncompressed (np.savez), the archive built in memory and
 * written through lib/base/fileout.h (lib/format/zipmem.h).  Errors: -1 with err_msg().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

struct npy_array {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t numel;
    double *data; /* C order; owned (npy_array_free) */
};

void npy_array_free(struct npy_array *a); /* NULL-safe; frees data, zeroes a */

/* Parse one .npy file image.  label names it in messages. */
int npy_parse(struct npy_array *out, const uint8_t *buf, size_t len, const char *label);
/* Serialise data [shape] as a .npy image in a malloc'd buffer (*out, *len). */
int npy_format(uint8_t **out, size_t *len, const double *data, const int64_t *shape, int ndim);

/* Member "<key>.npy" of the .npz at path.  A missing member is an error
 * naming the keys the archive has. */
int npz_read(const char *path, const char *key, struct npy_array *out);

struct npz_entry {
    const char *key; /* member "<key>.npy" */
    const double *data;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
};
/* Write an .npz holding the entries (replacing path atomically). */
int npz_write(const char *path, const struct npz_entry *entries, int count);
