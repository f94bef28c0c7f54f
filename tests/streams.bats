#!/usr/bin/env bats
# Hostile and broken record streams against every reader (lib/stream/stream.c,
# lib/stream/record-frame.c, lib/stream/record.c): a stream cut inside a record, records
# over the limits of docs/stream.md, headers that ask for gigabytes.

load helpers

SMALL=(--ngf 8 --ndf 8 --blocks 2 --batch 2)

setup_file() {
    # one epoch of a small model: the checkpoint translate and --resume read
    export CK="$BATS_FILE_TMPDIR/c.safetensors"
    utk-split --split train -q "$(faces_dir)" | aug --train --size 32 --seed 3 |
        cyclegan-step "${SMALL[@]}" --ckpt-out "$CK" --log-every 0 >/dev/null
}

setup() {
    common_setup
    FACES=$(faces_dir)
}
teardown() { common_teardown; }

# Write one msgpack object, given as a Python expression, to stdout.
pack() {
    "$PY" -c 'import msgpack, sys; sys.stdout.buffer.write(msgpack.packb(eval(sys.argv[1]), use_bin_type=True))' "$1"
}

# $1 with a lone map header (7 entries, none of them there) appended: the
# stream ends between two elements of a record, where msgpack's unpacker
# sees no error of its own.
cut_after() {
    cat "$1"
    printf '\x87'
}

@test "streams: a stream cut inside a record is an error in aug, translate, fid and cyclegan-step" {
    utk-split --split val -q "$FACES" > "$TMP/img"
    cut_after "$TMP/img" > "$TMP/img.cut"
    run timeout 20 aug --eval --size 16 --out "$TMP/o" < "$TMP/img.cut"
    assert_failure 1
    # a split record and two faces came whole before the cut one
    assert_output "aug: record 4: truncated: the input ends inside this record (after 3 whole records)"
    [ ! -e "$TMP/o" ]

    aug --eval --size 32 < "$TMP/img" > "$TMP/t"
    cut_after "$TMP/t" > "$TMP/t.cut"
    run timeout 60 translate --y2o --ckpt "$CK" --stream --all < "$TMP/t.cut"
    assert_failure 1
    assert_output --partial "translate: record 4: truncated: the input ends inside this record"

    # a cut epoch must not be saved as done
    cp "$CK" "$TMP/c.safetensors"
    utk-split --split train --epochs 2 --start-epoch 2 -q "$FACES" | aug --train --size 32 --seed 3 > "$TMP/e2"
    # cut after the epoch record and 10 of its 20 images: the trainer counts an
    # epoch's pairs, so a cut after the whole epoch would only fail the next one
    "$PY" -c 'import msgpack, sys
u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False, max_buffer_size=0)
out = sys.stdout.buffer
for i, r in enumerate(u):
    if i == 11:
        break
    out.write(msgpack.packb(r, use_bin_type=True))' "$TMP/e2" > "$TMP/e2.half"
    cut_after "$TMP/e2.half" > "$TMP/e2.cut"
    run timeout 120 cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --resume --log-every 0 < "$TMP/e2.cut"
    assert_failure 1
    assert_output --partial "ends inside this record"
    cmp "$CK" "$TMP/c.safetensors"
    run cyclegan-step --ckpt "$TMP/c.safetensors" --state
    assert_output "epoch=1 step=5 epoch_step=0"
}

@test "streams: fid refuses a stream cut inside a record" {
    has_torch || skip "no torch to build the FID network"
    "$PY" "$TESTS_DIR/py/ref_fid.py" weights "$TMP/w.pth" 0
    ckpt import "$TMP/w.pth" "$TMP/w.safetensors" >/dev/null
    utk-split --split val -q "$FACES" > "$TMP/img"
    cut_after "$TMP/img" > "$TMP/img.cut"
    run timeout 120 fid --weights "$TMP/w.safetensors" --save-stats "$TMP/s.stats" < "$TMP/img.cut"
    assert_failure 1
    assert_output --partial "fid: record 4: truncated: the input ends inside this record"
    [ ! -e "$TMP/s.stats" ]
}

@test "streams: a record of 100k keys is refused at once (it took 86 s to decode)" {
    pack '{"kind": "image", **{"k%d" % i: 0 for i in range(100000)}}' > "$TMP/keys"
    run timeout 10 aug --eval < "$TMP/keys"
    assert_failure 1
    assert_output "aug: record 1: a map of 100001 keys (a record's maps have at most 256)"
    # a nested map is held to the same bound
    pack '{"kind": "image", "note": {"k%d" % i: 0 for i in range(300)}}' > "$TMP/nested"
    run timeout 10 aug --eval < "$TMP/nested"
    assert_failure 1
    assert_output --partial "a map of 300 keys"
}

@test "streams: duplicate keys are found among many (sorted, not searched)" {
    # msgpack-python writes a dict: the duplicate is spliced in as raw bytes
    "$PY" -c '
import msgpack, sys
keys = ["kind"] + ["k%03d" % i for i in range(250)] + ["k007"]
out = b"\xde" + len(keys).to_bytes(2, "big")
for k in keys:
    out += msgpack.packb(k) + msgpack.packb("image" if k == "kind" else 0)
sys.stdout.buffer.write(out)' > "$TMP/dup"
    run timeout 10 aug --eval < "$TMP/dup"
    assert_failure 1
    assert_output "aug: record 1: duplicate key 'k007'"
}

@test "streams: count and length headers cannot make a reader allocate what the input lacks" {
    # 4 GiB of memory would not be enough for any of these on the old reader
    # (ASan reserves terabytes of address space: no limit under it)
    local limit="ulimit -v 4000000;"
    [ -z "${AGING_SANITIZED:-}" ] || limit=
    for hdr in '\xdd\xff\xff\xff\xff' '\x81\xa4kind\xdd\xff\xff\xff\xff' '\xdf\x7f\xff\xff\xff'; do
        run bash -c "$limit printf '$hdr' | timeout 10 aug --eval"
        assert_failure 1
        assert_output --regexp "aug: record 1: (more than 65536 values in one record|a map of 2147483647 keys)"
    done
    # a bin or str longer than a record may be is refused at its header
    for hdr in '\x81\xa4kind\xc6\xff\xff\xff\xff' '\x81\xa4kind\xdb\x40\x00\x00\x01'; do
        run bash -c "printf '$hdr' | timeout 10 aug --eval"
        assert_failure 1
        assert_output "aug: record 1: longer than 1024 MiB, the limit of a record"
    done
    # nesting is bounded
    run bash -c "{ printf '\x81\xa4kind'; printf '\x91%.0s' {1..20}; printf '\xc0'; } | timeout 10 aug --eval"
    assert_failure 1
    assert_output "aug: record 1: maps and arrays nested deeper than 16"
}

@test "streams: an empty string (a msgpack str with no bytes) is read cleanly" {
    # UBSan: memcpy from NULL when the empty key was copied
    run bash -c "printf '\x81\xa0\xc0' | aug --eval"
    assert_failure 1
    assert_output "aug: record 1: no string 'kind'"
    # empty keys and values pass through
    pack '{"kind": "", "": ""}' > "$TMP/e"
    aug --eval < "$TMP/e" > "$TMP/o"
    cmp "$TMP/e" "$TMP/o"
}

@test "streams: records within the limits pass, whole or in any number of reads" {
    # 200 keys, 16 levels, a 3 MB bin, cut into small writes by a pipe
    pack '{"kind": "note", "deep": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]], "blob": b"x" * 3000000, **{"k%d" % i: i for i in range(197)}}' > "$TMP/ok"
    dd if="$TMP/ok" bs=4097 status=none | aug --eval > "$TMP/out"
    cmp "$TMP/ok" "$TMP/out"
}
