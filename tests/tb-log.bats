#!/usr/bin/env bats
# tb-log: scalars and PNG images into TensorBoard event files, read back by
# an independent decoder (tests/py/tfevents_read.py); bad input writes nothing.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "tb-log: scalars and an image, checked by an independent reader" {
    "$PY" -c 'import sys; from PIL import Image; Image.new("RGB", (30, 20), (1, 2, 3)).save(sys.argv[1])' "$TMP/g.png"
    run tb-log "$TMP/logs" --step 7 --scalar val/fid_val=41.25 --image val/samples="$TMP/g.png" --scalar x=-2e-3
    assert_success
    run "$PY" "$TESTS_DIR/py/tfevents_read.py" "$TMP/logs"
    assert_success
    assert_output --partial '"val/fid_val": [[7, 41.25]]'
    assert_output --partial '"x": [[7, -0.00'
    assert_output --partial '"val/samples": [[7, 30, 20, true]]'
}

@test "tb-log: usage errors and bad images exit non-zero and write nothing" {
    echo "not a picture" > "$TMP/t.png"
    for args in "--step 1" "--scalar a=1" "--step x --scalar a=1" "--step 1 --scalar a=x" "--step 1 --scalar =1" \
                "--step 1 --image a"; do
        run tb-log "$TMP/logs" $args
        [ "$status" -eq 2 ] || { echo "tb-log $args -> $status: $output"; false; }
    done
    run tb-log "$TMP/logs" --step 1 --scalar a=1 --image b="$TMP/t.png"
    assert_failure 1
    assert_output --partial "$TMP/t.png: not a PNG image"
    run tb-log "$TMP/logs" --step 1 --image b="$TMP/none.png"
    assert_failure 1
    [ ! -e "$TMP/logs" ]
}

@test "tb-log --image: a FIFO is refused at once; the PNG is checked whole and its header first" {
    "$PY" - "$TMP" <<'PY'
import sys, zlib
from PIL import Image
t = sys.argv[1]
Image.new("RGB", (30, 20), (1, 2, 3)).save(t + "/ok.png")
d = open(t + "/ok.png", "rb").read()
open(t + "/trailing.png", "wb").write(d + b"anything at all")
i = d.index(b"IEND")
open(t + "/no-iend.png", "wb").write(d[:i - 4])
i = d.index(b"IDAT")                      # the IDAT CRC no longer matches
open(t + "/bad-crc.png", "wb").write(d[:i + 4 + 20] + bytes([d[i + 4 + 20] ^ 1]) + d[i + 4 + 21:])
ihdr = bytearray(d[:33])                  # 25000000x20: libpng's viewers stop at 1000000
ihdr[16:20] = (25000000).to_bytes(4, "big")
ihdr[29:33] = zlib.crc32(bytes(ihdr[12:29])).to_bytes(4, "big")
open(t + "/wide.png", "wb").write(bytes(ihdr) + d[33:])
PY
    mkfifo "$TMP/fifo.png"
    run timeout 10 tb-log "$TMP/logs" --step 1 --image a="$TMP/fifo.png"
    assert_failure 1
    assert_output --partial "not a regular file"
    run tb-log "$TMP/logs" --step 1 --image a="$TMP/wide.png"
    assert_failure 1
    assert_output --partial "a 25000000x20 PNG: TensorBoard shows sides up to 1000000"
    for f in trailing no-iend bad-crc; do
        run tb-log "$TMP/logs" --step 1 --image a="$TMP/$f.png"
        assert_failure 1
        assert_output --partial "$f.png: corrupt PNG"
    done
    [ ! -e "$TMP/logs" ] || [ -z "$(ls "$TMP/logs")" ]
    run tb-log "$TMP/logs" --step 1 --image a="$TMP/ok.png"
    assert_success
}
