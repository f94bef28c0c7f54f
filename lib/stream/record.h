/*
 * record: one record of a stream (DESIGN.md, docs/stream.md) as an ordered
 * list of named fields.  Records are msgpack maps with a "kind"; the fields a
 * tool does not know are kept as they came (raw msgpack objects) and written
 * back unchanged, so filters pass unknown keys through.
 *
 *   record r; record_init(&r);
 *   while (stream_in_next(in, &r) == 1) {           // fills r, freeing the old
 *       if (strcmp(record_kind(&r), "image") == 0) ...
 *       record_set_str(&r, "kind", "tensor");
 *       stream_out_put(out, &r);
 *   }
 *   record_clear(&r);
 *
 * Getters return pointers into the record, valid until it changes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

typedef enum {
    REC_NIL,
    REC_BOOL,
    REC_INT,
    REC_FLOAT,
    REC_STR,
    REC_BIN,
    REC_INTS, /* an array of integers, e.g. "shape" */
    REC_RAW,  /* anything else, kept as a msgpack object */
} rec_type;

typedef struct record_field {
    char *key;
    rec_type type;
    bool b;
    int64_t i;
    double f;
    char *s;            /* REC_STR: owned, NUL-terminated */
    const uint8_t *bin; /* REC_BIN: points into owned or into the record's backing */
    size_t len;
    uint8_t *owned; /* REC_BIN: non-NULL when the record owns the bytes */
    int64_t *ints;  /* REC_INTS: owned */
    int nints;
    msgpack_object raw; /* REC_RAW: lives in the record's zone */
} record_field;

typedef struct record {
    record_field *fields;
    int n, cap;
    msgpack_unpacked holder; /* owns the zone raw objects and borrowed bins live in */
    bool has_holder;
    void *backing; /* a message buffer bins may point into (freed by clear) */
} record;

void record_init(record *r);
/* Free every field and the backing memory; r is then empty and reusable. */
void record_clear(record *r);

/* Fill r (cleared first) from a decoded map.  r takes ownership of *holder's
 * zone (and of backing, if not NULL) on success and on failure.  -1 if the
 * object is not a map of distinct string keys, at most RECORD_MAX_KEYS
 * (record-frame.h) of them. */
int record_take_unpacked(record *r, msgpack_unpacked *holder, void *backing);

/* "" when the record has no string "kind". */
const char *record_kind(const record *r);
/* The young/old pairs an `epoch` or `split` record of utk-split announces
 * (for progress lines), or 0 for any other record. */
int64_t record_pairs_ahead(const record *r);
const record_field *record_find(const record *r, const char *key);
/* NULL when absent or not a string. */
const char *record_get_str(const record *r, const char *key);
/* 0 and *out set, or -1 when absent or of another type (ints accepted as floats). */
int record_get_int(const record *r, const char *key, int64_t *out);
int record_get_float(const record *r, const char *key, double *out);
int record_get_bin(const record *r, const char *key, const uint8_t **data, size_t *len);
int record_get_ints(const record *r, const char *key, const int64_t **v, int *n);

/* Setters replace the field in place (keeping its position) or append it. */
void record_set_str(record *r, const char *key, const char *v);
/* A string that may not be UTF-8, such as a file name: a str when it is
 * valid UTF-8, else a bin of its exact bytes (msgpack strs are UTF-8, and
 * readers such as Python's msgpack refuse a str that is not). */
void record_set_text(record *r, const char *key, const char *v);
void record_set_int(record *r, const char *key, int64_t v);
void record_set_float(record *r, const char *key, double v);
void record_set_bool(record *r, const char *key, bool v);
void record_set_ints(record *r, const char *key, const int64_t *v, int n);
/* Takes ownership of data (malloc'd), which record_clear frees. */
void record_set_bin_owned(record *r, const char *key, uint8_t *data, size_t len);
void record_remove(record *r, const char *key);

/* Append the record as one msgpack map. */
int record_pack(const record *r, msgpack_packer *pk);
/* Write the record as one JSON object and a newline (binary fields and
 * nested values other than integer arrays are written as null; floats
 * that are not finite as null). */
int record_write_json(const record *r, FILE *f);

/* ---- tensor records: kind "tensor", dtype, shape [C,H,W], data ---------- */

typedef enum { DTYPE_U8, DTYPE_F16, DTYPE_BF16, DTYPE_F32 } dtype;

/* "u8", "f16", "bf16", "f32"; dtype_parse returns -1 for anything else. */
const char *dtype_name(dtype d);
int dtype_parse(const char *s, dtype *out);
size_t dtype_size(dtype d);

typedef struct tensor_view {
    dtype dt;
    int64_t c, h, w;
    const uint8_t *data; /* little-endian, C order, c*h*w elements */
} tensor_view;

/* Validate a tensor record (known dtype, 3-d positive shape, data length =
 * product x item size) and point v at it.  -1 with a message otherwise. */
int record_tensor_view(const record *r, tensor_view *v);
/* Convert a viewed tensor to f32 (u8 is taken as a [0,255] pixel and mapped
 * to [-1,1]); out holds c*h*w floats. */
void tensor_view_to_f32(const tensor_view *v, float *out);
/* Set dtype/shape/data of r from f32 CHW data converted to dt (u8 maps
 * [-1,1] to [0,255] as save_image does).  r becomes kind "tensor". */
void record_set_tensor_f32(record *r, const float *chw, int64_t c, int64_t h, int64_t w, dtype dt);
