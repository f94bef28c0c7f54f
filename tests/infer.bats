#!/usr/bin/env bats
# pipelines/infer.sh on the shipped model: the result at the input's own
# size by default, the model's square with --raw, and --strength passed on
# to translate (each result equals translate's, byte for byte).

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
    MODEL=$ROOT/models/utkface-128.safetensors
    unset AGING_MODEL
    cd "$TMP" # no outputs/checkpoints/best.safetensors here
    # not square, so its own size and the model's 128 x 128 differ
    "$PY" -c "from PIL import Image; Image.open('$ROOT/data/demo/astronaut.png').crop((0, 20, 200, 170)).save('$TMP/a.png')"
}
teardown() { common_teardown; }

infer() { bash "$ROOT/pipelines/infer.sh" --ckpt "$MODEL" --input "$TMP/a.png" "$@"; }
size_of() { "$PY" -c "from PIL import Image; print('%dx%d' % Image.open('$1').size)"; }
pixel_diff() { "$PY" "$TESTS_DIR/py/ref_translate.py" diff "$1" "$2"; }

@test "infer.sh: --help lists --strength and --raw" {
    run bash "$ROOT/pipelines/infer.sh" --help
    assert_success
    assert_output --partial "--strength S"
    assert_output --partial "--raw"
}

@test "infer.sh: the result is the input's size by default, the model's with --raw, as translate writes them" {
    run infer
    assert_success
    assert_output --partial "infer.sh: wrote $TMP/a_young2old.png"
    [ "$(size_of "$TMP/a_young2old.png")" = 200x150 ]
    translate --y2o --ckpt "$MODEL" -i "$TMP/a.png" -o "$TMP/want.png" 2> /dev/null
    cmp "$TMP/a_young2old.png" "$TMP/want.png"
    infer --raw --direction old2young --output "$TMP/raw.png"
    [ "$(size_of "$TMP/raw.png")" = 128x128 ]
    translate --o2y --ckpt "$MODEL" --raw -i "$TMP/a.png" -o "$TMP/want.png" 2> /dev/null
    cmp "$TMP/raw.png" "$TMP/want.png"
}

@test "infer.sh --strength: 0 is the input, 2 changes more than 1, as translate --strength; not with --raw" {
    infer --strength 0 --output "$TMP/s0.png"
    cmp "$TMP/a.png" "$TMP/s0.png"
    infer --output "$TMP/s1.png"
    infer --strength 2 --output "$TMP/s2.png"
    translate --y2o --ckpt "$MODEL" --strength 2 -i "$TMP/a.png" -o "$TMP/want.png" 2> /dev/null
    cmp "$TMP/s2.png" "$TMP/want.png"
    d1=$(pixel_diff "$TMP/a.png" "$TMP/s1.png") d2=$(pixel_diff "$TMP/a.png" "$TMP/s2.png")
    [ "$d1" -gt 0 ] && [ "$d2" -gt "$d1" ]
    run infer --strength 0.5 --raw --output "$TMP/x.png"
    [ "$status" -eq 2 ]
    assert_output --partial "--strength scales the change in a full-size result: not with --raw"
    run infer --strength 3 --output "$TMP/x.png"
    [ "$status" -eq 2 ]
    [ ! -e "$TMP/x.png" ]
}
