#!/usr/bin/env bats
# fuzz: every libFuzzer harness of tests/fuzz/, built as a plain program
# around tests/fuzz/replay.c, runs its seed corpus and the inputs that once
# broke a reader (tests/fuzz/regress/NAME/) once each: what the fuzzers
# found stays fixed in every `make test` and `make asan`, clang or not.
# (`make fuzz` does the fuzzing itself.)

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# Replay corpus/NAME and regress/NAME through fuzz_NAME; every seed counted.
replay() {
    local name=$1 dirs=("$TESTS_DIR/fuzz/corpus/$1")
    [ -d "$TESTS_DIR/fuzz/regress/$name" ] && dirs+=("$TESTS_DIR/fuzz/regress/$name")
    run "$UNIT_DIR/fuzz_$name" "${dirs[@]}"
    assert_success
    assert_output --regexp "corpus/$name: [1-9][0-9]* inputs"
}

@test "fuzz: every harness has a replay build, seeds and a test here" {
    for src in "$TESTS_DIR"/fuzz/fuzz_*.c; do
        name=${src##*/fuzz_}
        name=${name%.c}
        [ -x "$UNIT_DIR/fuzz_$name" ] || fail "no replay build $UNIT_DIR/fuzz_$name"
        compgen -G "$TESTS_DIR/fuzz/corpus/$name/*" >/dev/null || fail "no seeds in tests/fuzz/corpus/$name"
        grep -q "^@test \"fuzz: $name: " "$BATS_TEST_FILENAME" || fail "no replay test for $name"
    done
    shopt -s nullglob
    for d in "$TESTS_DIR"/fuzz/regress/*/; do
        [ -f "$TESTS_DIR/fuzz/fuzz_$(basename "$d").c" ] || fail "regress/$(basename "$d") has no harness"
    done
}

@test "fuzz: a replay fails on an input it cannot read" {
    run "$UNIT_DIR/fuzz_image" "$TMP/missing.png"
    assert_failure
    assert_output --partial "missing.png"
}

@test "fuzz: stream: records, tensor views, JSON and repacking" { replay stream; }
@test "fuzz: safetensors: the checkpoint container" { replay safetensors; }
@test "fuzz: pickle: the pickle machine" { replay pickle; }
@test "fuzz: pth: torch.save files, zip and legacy" { replay pth; }
@test "fuzz: image: the PNG and JPEG decoders and the probe" { replay image; }
@test "fuzz: npz: .npy and .npz statistics" { replay npz; }

@test "fuzz: npz: a member declaring more than its compressed bytes can hold is refused before allocating" {
    # 596 bytes whose mu.npy says 2.6 GB: once malloc'd whole before reading
    cp "$TESTS_DIR/fuzz/regress/npz/member-size-beyond-deflate" "$TMP/bomb.npz"
    run fid --ref "$TMP/bomb.npz" --gen "$TESTS_DIR/fuzz/corpus/npz/stats.npz"
    assert_failure 1
    assert_output --partial "mu.npy: declares 2667642880 bytes, more than its 0 compressed bytes can hold"
}

@test "fuzz: pth: nested shared dicts (2^40 values from 877 bytes) are refused at once" {
    # torch.save of d = {'w': 1.0} nested 40 times as {'a': d, 'b': d}: the
    # walk once visited every path (ckpt info ran for ever)
    run timeout 60 ckpt info "$TESTS_DIR/fuzz/regress/pth/shared-dicts-2e40.pth"
    assert_failure 1
    assert_output --partial "shared references expand the pickle's 488 bytes to more than"
}

@test "fuzz: pickle: a list that holds itself is refused as too deep" {
    FUZZ_VERBOSE=1 run "$UNIT_DIR/fuzz_pickle" "$TESTS_DIR/fuzz/regress/pickle/list-holds-itself"
    assert_success
    assert_output --partial "nested deeper than 64 levels"
}

@test "fuzz: image: a PNG header asking for more pixels than its data can hold is refused before allocating" {
    # (fuzz_image leaves such headers to the probe, so aug decodes it here)
    "$PY" -c 'import msgpack, sys; sys.stdout.buffer.write(msgpack.packb({"kind": "image", "id": "x",
        "domain": "young", "encoding": "png", "bytes": open(sys.argv[1], "rb").read()}))' \
        "$TESTS_DIR/fuzz/regress/image/png-8192x8192-in-69-bytes.png" >"$TMP/in.msgpack"
    run aug --eval --size 8 --in "$TMP/in.msgpack" --out "$TMP/out.msgpack"
    assert_failure 1
    assert_output --partial "8192x8192 exceeds the limit of 16777216 pixels" # aug's --max-pixels, first
    run aug --eval --size 8 --max-pixels 67108864 --in "$TMP/in.msgpack" --out "$TMP/out.msgpack"
    assert_failure 1
    assert_output --partial "corrupt PNG: the header's size needs more image data than the file holds"
}
