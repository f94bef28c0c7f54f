/*
 * record-frame: where one record ends in a byte stream, and whether it keeps
 * within the limits of a record, found before msgpack decodes it.
 *
 * msgpack's streaming unpacker keeps a half-read record in its own state,
 * so a stream cut just after a map header looks like a clean end, and it
 * allocates the objects of a map or array as soon as it reads the count, so
 * a five-byte header can ask for 200 GB.  The frame walks the headers only
 * (payloads are skipped, nothing is allocated) and says "complete", "needs
 * more bytes" or "refused"; the stream reader hands a record to msgpack only
 * once it is complete, and knows at end of input whether it was inside one.
 *
 *   record_frame f; record_frame_init(&f);
 *   while (record_frame_scan(&f, buf, have) == 0)   // buf: from the record's start
 *       ... read more, append to buf ...
 *   // 1: the record is f.pos bytes long; -1: err_msg() says why
 *
 * The limits (docs/stream.md): a record has tens of keys and its large
 * values are single bin fields (image bytes, tensor data), so these bound
 * the cost of any input without touching a real record.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The largest record in bytes: the largest file utk-split sends (256 MiB)
 * or tensor translate sends, with room to spare. */
#define RECORD_MAX_BYTES ((size_t)1 << 30)
/* Keys of any one map. */
#define RECORD_MAX_KEYS 256
/* Values in one record, every level counted (a map entry counts 2). */
#define RECORD_MAX_VALUES 65536
/* Maps and arrays nested in one another, the record's own map included. */
#define RECORD_MAX_DEPTH 16

typedef struct record_frame {
    size_t pos;                      /* bytes of the record walked so far; may run past the
                                      * bytes at hand while a payload is skipped */
    size_t values;                   /* values the maps and arrays so far hold */
    int depth;                       /* maps and arrays open; -1 once the record is complete */
    uint32_t left[RECORD_MAX_DEPTH]; /* values still due in each */
} record_frame;

/* Ready for the first byte of a record. */
void record_frame_init(record_frame *f);
/* Walk on through buf[0..len), the bytes at hand from the record's first
 * byte (the same bytes as before, maybe more).  1: the record is complete
 * and f->pos bytes long; 0: it needs more bytes (at least f->pos - len when
 * that is positive); -1: not valid msgpack or over a limit, with a message. */
int record_frame_scan(record_frame *f, const uint8_t *buf, size_t len);
