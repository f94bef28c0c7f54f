/*
 * record-frame: a walk over msgpack headers (the format's spec, "formats"
 * table) that counts what is still due instead of building objects.
 */
#include "record-frame.h"

#include <stdbool.h>
#include <string.h>

#include "base/err.h"

/* One msgpack header: its own bytes, the payload bytes after it (str, bin,
 * ext, numbers), and for a map or array the values it opens. */
typedef struct head {
    size_t size;
    uint64_t payload;
    uint64_t values;
    bool container, map;
} head;

static uint64_t be_(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The header at p (avail bytes at hand): 1 read, 0 cut short, -1 invalid. */
static int head_(const uint8_t *p, size_t avail, head *h)
{
    memset(h, 0, sizeof *h);
    uint8_t b = p[0];
    int lenbytes = 0; /* bytes of a length or count after the type byte */
    size_t extra = 0; /* fixed bytes after those (ext type, number body) */
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, bool: the byte is the value */
    } else if (b <= 0x8f) {
        h->container = h->map = true;
        h->values = b & 0x0f;
    } else if (b <= 0x9f) {
        h->container = true;
        h->values = b & 0x0f;
    } else if (b <= 0xbf) {
        h->payload = b & 0x1f;
    } else if (b >= 0xc4 && b <= 0xc6) { /* bin 8/16/32 */
        lenbytes = 1 << (b - 0xc4);
    } else if (b >= 0xc7 && b <= 0xc9) { /* ext 8/16/32: length, then a type byte */
        lenbytes = 1 << (b - 0xc7);
        extra = 1;
    } else if (b == 0xca || b == 0xcb) { /* float 32/64 */
        extra = b == 0xca ? 4 : 8;
    } else if (b >= 0xcc && b <= 0xd3) { /* uint and int 8..64 */
        extra = (size_t)1 << ((b - 0xcc) & 3);
    } else if (b >= 0xd4 && b <= 0xd8) { /* fixext 1..16: a type byte, then the data */
        extra = 1 + ((size_t)1 << (b - 0xd4));
    } else if (b >= 0xd9 && b <= 0xdb) { /* str 8/16/32 */
        lenbytes = 1 << (b - 0xd9);
    } else if (b == 0xdc || b == 0xdd) { /* array 16/32 */
        h->container = true;
        lenbytes = b == 0xdc ? 2 : 4;
    } else if (b == 0xde || b == 0xdf) { /* map 16/32 */
        h->container = h->map = true;
        lenbytes = b == 0xde ? 2 : 4;
    } else {
        return -1; /* 0xc1, never used */
    }
    h->size = 1 + (size_t)lenbytes;
    if (avail < h->size)
        return 0;
    if (lenbytes && h->container)
        h->values = be_(p + 1, lenbytes);
    else if (lenbytes)
        h->payload = be_(p + 1, lenbytes);
    h->payload += extra;
    if (h->map)
        h->values *= 2; /* a key and a value per entry */
    return 1;
}

void record_frame_init(record_frame *f)
{
    memset(f, 0, sizeof *f);
}

int record_frame_scan(record_frame *f, const uint8_t *buf, size_t len)
{
    while (f->depth >= 0) {
        if (f->pos >= len)
            return 0;
        head h;
        int rc = head_(buf + f->pos, len - f->pos, &h);
        if (rc < 0)
            return err_set("not valid msgpack (byte 0x%02x at offset %zu)", buf[f->pos], f->pos);
        if (rc == 0)
            return 0;
        /* Every check comes before the value is decoded, so a header can
         * never make the decoder allocate for what the input lacks. */
        if (h.map && h.values / 2 > RECORD_MAX_KEYS)
            return err_set("a map of %llu keys (a record's maps have at most %d)",
                           (unsigned long long)(h.values / 2), RECORD_MAX_KEYS);
        if (h.values > RECORD_MAX_VALUES - f->values)
            return err_set("more than %d values in one record", RECORD_MAX_VALUES);
        if (h.payload > RECORD_MAX_BYTES - f->pos - h.size)
            return err_set("longer than %zu MiB, the limit of a record", RECORD_MAX_BYTES >> 20);
        f->values += h.values;
        f->pos += h.size + (size_t)h.payload;
        if (h.values) {
            if (f->depth == RECORD_MAX_DEPTH)
                return err_set("maps and arrays nested deeper than %d", RECORD_MAX_DEPTH);
            f->left[f->depth++] = (uint32_t)h.values;
            continue;
        }
        /* A value is complete: so is each container it was the last of. */
        while (f->depth > 0 && --f->left[f->depth - 1] == 0)
            f->depth--;
        if (f->depth == 0)
            f->depth = -1;
    }
    return f->pos <= len;
}
