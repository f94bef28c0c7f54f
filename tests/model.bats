#!/usr/bin/env bats
# The shipped model (models/utkface-128.safetensors): found by default,
# translated faces equal the PyTorch reference's stored results, the
# lookup's failure, an installed copy, the demo, and the demo's runtime-only
# package list against the Makefile's libraries.

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
    MODEL=$ROOT/models/utkface-128.safetensors
    FACE=$ROOT/data/demo/astronaut.png
    unset AGING_MODEL
    cd "$TMP" # no outputs/checkpoints/best.safetensors here
}
teardown() { common_teardown; }

# max |a - b| over the pixels of two PNGs, in 1/255 steps
pixel_diff() {
    "$PY" "$TESTS_DIR/py/ref_translate.py" diff "$1" "$2"
}

@test "model: translate with no options uses the shipped model and matches the stored reference results" {
    [ -f "$MODEL" ]
    run translate --y2o --raw -o "$TMP/old.png" "$FACE"
    assert_success
    assert_output --partial "using the shipped model, $MODEL (128 px)"
    translate --o2y --raw -o "$TMP/young.png" < "$FACE"
    for d in young2old:old old2young:young; do
        # made by PyTorch's reference generator from the same F16 weights (scripts/ship-model.sh)
        diff=$(pixel_diff "$ROOT/tests/expected/astronaut_${d%%:*}.png" "$TMP/${d##*:}.png")
        echo "# ${d%%:*}: max |d| = $diff / 255" >&3
        [ "$diff" -le 1 ]
    done
    "$PY" -c 'import sys; from PIL import Image; assert Image.open(sys.argv[1]).size == (128, 128)' "$TMP/old.png"
}

@test "model: --size overrides the training size with a note; a user's own best checkpoint wins" {
    run translate --y2o --size 64 -o "$TMP/a.png" "$FACE"
    assert_success
    assert_output --partial "note: running at --size 64; the model was trained at 128 px"
    mkdir -p outputs/checkpoints
    ckpt extract --net G,F "$MODEL" outputs/checkpoints/best.safetensors
    run translate --y2o -o "$TMP/b.png" "$FACE"
    assert_success
    assert_output --partial "using your training run's best checkpoint, outputs/checkpoints/best.safetensors"
}

@test "model: with no checkpoint anywhere translate exits 1 naming the shipped model's path, and writes nothing" {
    mkdir -p "$TMP/tree/bin"
    cp "$(command -v translate)" "$TMP/tree/bin/"
    run "$TMP/tree/bin/translate" --y2o -o "$TMP/old.png" "$FACE"
    assert_failure 1
    assert_output --partial "no shipped model at $TMP/tree/models/utkface-128.safetensors"
    [ ! -e "$TMP/old.png" ]
    AGING_MODEL=$TMP/nothing run "$TMP/tree/bin/translate" --y2o -o "$TMP/old.png" "$FACE"
    assert_failure 1
    assert_output --partial "AGING_MODEL=$TMP/nothing: no such model file"
    [ ! -e "$TMP/old.png" ]
    AGING_MODEL=$MODEL run "$TMP/tree/bin/translate" --y2o -o "$TMP/old.png" "$FACE"
    assert_success
}

@test "model: make install: tools, model and pipelines that find each other" {
    # install this build (no rebuild: the build folders of the tools under test)
    run make -C "$ROOT" install PREFIX="$TMP/inst" BIN="$BIN_DIR" BUILD="$(dirname "$UNIT_DIR")" CUDA=0
    assert_success
    refute_output --partial "cc " # nothing was compiled
    for f in bin/translate bin/tb-log share/aging-cyclegan/utkface-128.safetensors share/man/man1/translate.1 \
             share/aging-cyclegan/pipelines/train.sh share/aging-cyclegan/pipelines/common.sh \
             share/aging-cyclegan/data/demo/astronaut.png; do
        [ -e "$TMP/inst/$f" ] || { echo "missing $f"; false; }
    done
    run "$TMP/inst/bin/translate" --o2y -o "$TMP/young.png" "$FACE"
    assert_success
    assert_output --partial "using the shipped model, $TMP/inst/share/aging-cyclegan/utkface-128.safetensors"
    [ -s "$TMP/young.png" ]
    # the installed pipelines use the installed tools (PATH without this build) and write under the working directory
    mkdir "$TMP/work" && cd "$TMP/work"
    PATH=/usr/bin:/bin run bash "$TMP/inst/share/aging-cyclegan/pipelines/infer.sh" --input "$FACE" --output "$TMP/work/o.png"
    assert_success
    assert_output --partial "using the shipped model, $TMP/inst/share/aging-cyclegan/utkface-128.safetensors"
    [ -s "$TMP/work/o.png" ]
    PATH=/usr/bin:/bin UTKFACE_DIR= run bash "$TMP/inst/share/aging-cyclegan/pipelines/demo.sh"
    assert_success
    [ -s "$TMP/work/outputs/demo/grid.png" ]
}

@test "model: several faces make one grid of both directions" {
    run translate --y2o --o2y -o "$TMP/grid.png" "$FACE" "$FACE" "$FACE"
    assert_success
    "$PY" -c 'import sys; from PIL import Image; assert Image.open(sys.argv[1]).size == (3 * 130 + 2, 3 * 130 + 2)' "$TMP/grid.png"
    run translate --y2o --o2y -o "$TMP/one.png" "$FACE"
    assert_success
    "$PY" -c 'import sys; from PIL import Image; assert Image.open(sys.argv[1]).size == (132, 3 * 130 + 2)' "$TMP/one.png"
    run translate --y2o --o2y -o "$TMP/x.png" < "$FACE"
    assert_failure 2
    assert_output --partial "give --grid N or FACE files"
    run translate --y2o -o "$TMP/x.png" "$FACE" "$TMP/missing.png"
    assert_failure 1
    assert_output --partial "$TMP/missing.png"
    [ ! -e "$TMP/x.png" ]
}

@test "model: pipelines/demo.sh writes the grid and the single results with the shipped model" {
    OUTPUTS_DIR=$TMP/out UTKFACE_DIR= run bash "$ROOT/pipelines/demo.sh"
    assert_success
    assert_output --partial "grid            $TMP/out/demo/grid.png"
    for f in grid.png astronaut_young2old.png astronaut_old2young.png; do [ -s "$TMP/out/demo/$f" ]; done
    if [ -n "$REAL_UTKFACE_DIR" ]; then
        OUTPUTS_DIR=$TMP/out2 UTKFACE_DIR=$REAL_UTKFACE_DIR run bash "$ROOT/pipelines/demo.sh"
        assert_success
        assert_output --partial "the portrait and 6 UTKFace test faces"
        "$PY" -c 'import sys; from PIL import Image; assert Image.open(sys.argv[1]).size == (7 * 130 + 2, 3 * 130 + 2)' "$TMP/out2/demo/grid.png"
    fi
}

@test "model: the demo's runtime package list provides every library the Makefile links" {
    runtime=$(bash "$ROOT/scripts/deps.sh" --list-runtime)
    pkgs=$(sed -n 's/^PKGS *:= *//p' "$ROOT/Makefile")
    [ -n "$pkgs" ]
    # a runtime package or one it depends on (libopenblas-dev pulls libopenblas-pthread-dev)
    deps=$(for d in $runtime; do dpkg-query -W -f='${Depends}\n' "$d" 2>/dev/null; done | tr ',|' '\n\n' \
           | sed 's/^ *//; s/[ :].*//')
    for p in $pkgs; do
        pc=$(readlink -f "$(pkg-config --path "$p")") # openblas.pc is an alternatives link
        deb=$(dpkg -S "$pc" | head -1 | cut -d: -f1)
        echo "# $p: $pc from $deb" >&3
        grep -qx "$deb" <<< "$runtime"$'\n'"$deps" || { echo "$p ($deb) is not in deps.sh's runtime list"; false; }
    done
    # the libraries linked by -l without a .pc file (oneDNN), past the C library's own
    for l in $(sed -n 's/^LDLIBS *+= *//p' "$ROOT/Makefile" | grep -oE -- '(^| )-l[a-z0-9_]+' | sed 's/^ *-l//'); do
        case $l in m | pthread | dl) continue ;; esac
        so=$(readlink -f "$(gcc -print-file-name="lib$l.so")")
        deb=$(dpkg -S "$so" | head -1 | cut -d: -f1)
        echo "# -l$l: $so from $deb" >&3
        grep -qx "$deb" <<< "$runtime"$'\n'"$deps" || { echo "-l$l ($deb) is not in deps.sh's runtime list"; false; }
    done
    for p in build-essential pkg-config; do grep -qx "$p" <<< "$runtime"; done
    ! grep -qx python3-torch <<< "$runtime"
    ! grep -qx chromium <<< "$runtime"
}

@test "model: full-resolution results keep the input's detail (aged >= 0.95, de-aged >= 0.90) and carry no checkerboard (bench/fullres_metrics.py)" {
    pics=("$FACE")
    if [ -n "${UTKFACE_DIR:-}" ] && [ -d "$UTKFACE_DIR" ]; then
        pics+=("$UTKFACE_DIR/$(ls "$UTKFACE_DIR" | sed -n 7p)" "$UTKFACE_DIR/$(ls "$UTKFACE_DIR" | sed -n 3007p)")
    fi
    for p in "${pics[@]}"; do
        for dir in y2o o2y; do
            out=$TMP/out.${p##*.}
            translate --$dir -o "$out" "$p" 2>/dev/null
            m=$("$PY" "$ROOT/bench/fullres_metrics.py" "$p" "$out")
            echo "# $(basename "$p") --$dir: $m" >&3
            # aging keeps the detail; de-aging smooths skin, which is its aim, so it may lose a little
            low=0.95; [ $dir = y2o ] || low=0.90
            "$PY" -c 'import sys; m = dict(kv.split("=") for kv in sys.argv[1].split()); assert float(m["detail"]) >= float(sys.argv[2]) and float(m["checker"]) <= 0.2, m' "$m" "$low"
        done
    done
}
