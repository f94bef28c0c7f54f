#!/usr/bin/env bats
# eval/judge (the aging metrics: face-api's age and identity nets, detail
# ratio, checkerboard amplitude) and what evaluate.sh makes of it.  The nets
# are slow on a CPU (seconds a face): each test judges only a few images.

load helpers

setup_file() {
    export ROOT=$(cd "$TESTS_DIR/.." && pwd)
    export JUDGE=$ROOT/eval/judge
}

setup() {
    common_setup
    [ -d "$JUDGE/node_modules" ] || skip "no $JUDGE/node_modules (scripts/deps.sh installs it: npm ci --prefix eval/judge)"
}
teardown() { common_teardown; }

field() {  # key < json line -> value
    "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"
}

@test "judge: an image against itself, a blurred copy, a copy with a period-2 pattern, a 128 px crop" {
    A=$ROOT/data/demo/astronaut.png
    "$PY" - "$A" "$TMP" <<'PY'
import sys
import numpy as np
from PIL import Image, ImageFilter
a = Image.open(sys.argv[1]).convert("RGB")
a.filter(ImageFilter.GaussianBlur(1.5)).save(sys.argv[2] + "/blur.png")
x = np.asarray(a).astype(int)
yy, xx = np.mgrid[:x.shape[0], :x.shape[1]]
c = np.clip(x + np.where((xx + yy) % 2 == 0, 6, -6)[..., None], 0, 255)
Image.fromarray(c.astype(np.uint8)).save(sys.argv[2] + "/checker.png")
# what a model sees of it (its centre 168/200) at 128 px
a.crop((16, 16, 184, 184)).resize((128, 128), Image.BILINEAR).save(sys.argv[2] + "/small.png")
# the amplitude of the change by its definition: mean |p - q - r + s| / 4
# over 2x2 cells and channels (+-6 levels, less where clipped at 0 or 255)
d = c - x
print("%.4f" % (np.abs(d[0::2, 0::2] - d[0::2, 1::2] - d[1::2, 0::2] + d[1::2, 1::2]) / 4).mean(),
      file=open(sys.argv[2] + "/want", "w"))
PY
    printf '%s\t%s\t0.84\n' "$A" "$TMP/small.png" > "$TMP/pairs"
    run node "$JUDGE/judge.mjs" "$A" "$A" "$A" "$TMP/blur.png" "$A" "$TMP/checker.png" --pairs "$TMP/pairs"
    assert_success
    assert_output --partial "tfjs wasm"
    grep '^{' <<< "$output" > "$TMP/j"
    "$PY" - "$TMP/j" "$(cat "$TMP/want")" <<'PY'
import json, sys
same, blur, checker, small = (json.loads(l) for l in open(sys.argv[1]))
assert same["face_in"] and same["face_out"] and same["identity"] == 0, same
assert same["detail"] == 1 and same["checker"] == 0 and 0 < same["checker_out"] < 1.5, same
assert same["age_in"] == same["age_out"] and 20 < same["age_in"] < 50, same
assert blur["detail"] < 0.6 and blur["identity"] < 0.6, blur
assert abs(checker["checker"] - float(sys.argv[2])) < 1e-3 and 5 < checker["checker"] <= 6, checker
# the input is judged at the output's framing and size: no change of age or person
assert abs(small["age_out"] - small["age_in"]) < 2 and small["identity"] < 0.2, small
assert 0.5 < small["detail"] < 1 and small["checker"] < 0.5, small
PY
}

@test "judge: an old face is judged older than a young one; different people are over 0.6 apart" {
    [ -n "${REAL_UTKFACE_DIR:-}" ] && [ -d "$REAL_UTKFACE_DIR" ] || skip "UTKFACE_DIR not set"
    young=$REAL_UTKFACE_DIR/22_0_2_20170104021129925.jpg.chip.jpg
    other=$REAL_UTKFACE_DIR/28_0_4_20170109002923202.jpg.chip.jpg
    old=$REAL_UTKFACE_DIR/80_0_0_20170111211335909.jpg.chip.jpg
    [ -f "$young" ] && [ -f "$other" ] && [ -f "$old" ] || skip "not the UTKFace crop_part1 set"
    run node "$JUDGE/judge.mjs" "$young" "$old" "$young" "$other"
    assert_success
    grep '^{' <<< "$output" > "$TMP/j"
    "$PY" - "$TMP/j" <<'PY'
import json, sys
to_old, to_other = (json.loads(l) for l in open(sys.argv[1]))
assert to_old["age_out"] > to_old["age_in"] + 30 and to_old["age_in"] < 30, to_old
assert to_old["identity"] > 0.6 and to_other["identity"] > 0.6, (to_old, to_other)
PY
}

@test "judge: bad input is refused with a message" {
    run node "$JUDGE/judge.mjs" "$ROOT/data/demo/astronaut.png"
    assert_failure 2
    assert_output --partial "judge: an IN without its OUT"
    run node "$JUDGE/judge.mjs" --crop 0 a b
    assert_failure 2
    run node "$JUDGE/judge.mjs" "$ROOT/data/demo/astronaut.png" "$ROOT/README.md"
    assert_failure 1
    assert_output --partial "README.md: not a PNG or JPEG image (text)"
}

@test "judge: summary.mjs takes the means, the shares and the direction" {
    cat > "$TMP/p" <<'EOF'
{"face_in":true,"face_out":true,"age_in":20,"age_out":24,"identity":0.3,"detail":0.8,"checker":0.2,"checker_out":1}
{"face_in":true,"face_out":true,"age_in":30,"age_out":31,"identity":0.7,"detail":0.6,"checker":0.4,"checker_out":2}
{"face_in":true,"face_out":false,"age_in":40,"age_out":null,"identity":null,"detail":1,"checker":0.3,"checker_out":3}
EOF
    run node "$JUDGE/summary.mjs" --expect older --label G < "$TMP/p"
    assert_success
    assert_output --partial '{"pairs":3,"faces":2,"face_share":0.6667,"age_in":25,"age_out":27.5,"age_change":2.5,"moved_3y":0.5,"identity":0.5,"same_person":0.5,"detail":0.8,"checker":0.3,"checker_out":2}'
    assert_output --partial "G: 3 pairs, a face in both of 2; judged age 25.0 -> 27.5 (+2.5), 50% moved >= 3 years older"
    run node "$JUDGE/summary.mjs" --expect younger < "$TMP/p"
    assert_output --partial '"moved_3y":0,'
    run node "$JUDGE/summary.mjs" < "$TMP/p"
    assert_failure 2
}
