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
