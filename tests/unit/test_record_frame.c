/*
 * test_record_frame: the header walk that finds where a record ends, fed a
 * packed record whole, byte by byte and cut at every length (it must say
 * "more" for every prefix and "complete" exactly at the end), and bytes
 * msgpack never uses.
 */
#include "base/err.h"
#include "stream/record-frame.h"
#include "stream/record.h"

#include "check.h"

/* A record with every kind of value: scalars, a str, a bin, nested raw. */
static void pack_sample(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    msgpack_pack_str_with_body(&pk, "kind", 4);
    msgpack_pack_str_with_body(&pk, "tensor", 6);
    msgpack_pack_str_with_body(&pk, "", 0);
    msgpack_pack_str_with_body(&pk, "", 0);
    msgpack_pack_str_with_body(&pk, "n", 1);
    msgpack_pack_int64(&pk, -1234567890123);
    msgpack_pack_str_with_body(&pk, "f", 1);
    msgpack_pack_double(&pk, 0.5);
    msgpack_pack_str_with_body(&pk, "shape", 5);
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        msgpack_pack_int(&pk, 300 * i);
    msgpack_pack_str_with_body(&pk, "data", 4);
    static const char data[70000];
    msgpack_pack_bin_with_body(&pk, data, sizeof data);
    msgpack_pack_str_with_body(&pk, "note", 4);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "empty", 5);
    msgpack_pack_array(&pk, 0);
}

static int test_whole_and_in_pieces(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_sample(&sb);
    const uint8_t *b = (const uint8_t *)sb.data;
    record_frame f;
    record_frame_init(&f);
    EXPECT(record_frame_scan(&f, b, sb.size) == 1 && f.pos == sb.size, "complete at %zu", sb.size);
    /* one byte more at a time, the way a slow pipe delivers it */
    record_frame_init(&f);
    size_t k = 0;
    int rc = 0;
    while (rc == 0 && k < sb.size)
        rc = record_frame_scan(&f, b, ++k);
    EXPECT(rc == 1 && k == sb.size && f.pos == sb.size, "byte by byte: rc %d at %zu of %zu", rc, k, sb.size);
    /* every cut is incomplete, never an error and never complete */
    for (size_t cut = 0; cut < sb.size; cut += cut < 100 ? 1 : 997) {
        record_frame_init(&f);
        EXPECT(record_frame_scan(&f, b, cut) == 0, "a record cut at %zu", cut);
    }
    /* a second record after the first is left alone */
    msgpack_sbuffer_write(&sb, "\x81", 1);
    record_frame_init(&f);
    EXPECT(record_frame_scan(&f, (const uint8_t *)sb.data, sb.size) == 1 && f.pos == sb.size - 1, "two");
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

static int test_refused(void)
{
    record_frame f;
    record_frame_init(&f);
    EXPECT(record_frame_scan(&f, (const uint8_t *)"\x81\xc1", 2) == -1 && strstr(err_msg(), "0xc1"), "0xc1");
    record_frame_init(&f);
    /* 2^32-1 array items: refused at the header, whatever follows */
    EXPECT(record_frame_scan(&f, (const uint8_t *)"\xdd\xff\xff\xff\xff", 5) == -1 &&
               strstr(err_msg(), "values"),
           "a huge array");
    record_frame_init(&f);
    EXPECT(record_frame_scan(&f, (const uint8_t *)"\xde\x01\x01", 3) == -1 && strstr(err_msg(), "257 keys"),
           "257 keys");
    return 0;
}

CHECK_MAIN(T(test_whole_and_in_pieces), T(test_refused))
