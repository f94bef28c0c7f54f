#!/usr/bin/env bats
# pipelines/evaluate.sh on a small model: a checkpoint of G and F only, what
# it says about a --ckpt that is no checkpoint, the counts it reports, an
# --output that is one of its inputs, and the aging metrics of eval/judge.

load helpers

SMALL=(--ngf 8 --ndf 8 --blocks 1 --batch 2)

setup_file() {
    export ROOT=$(cd "$TESTS_DIR/.." && pwd)
    export CK=$BATS_FILE_TMPDIR/ck.safetensors GF=$BATS_FILE_TMPDIR/gf.safetensors
    utk-split --split train -q --epochs 1 "$(faces_dir)" | aug --train --size 32 --seed 3 \
        | cyclegan-step "${SMALL[@]}" --max-steps 1 --log-every 0 --ckpt-out "$CK" > /dev/null
    ckpt extract --net G,F "$CK" "$GF" > /dev/null
}

setup() {
    common_setup
    FACES=$(faces_dir)
    EV=(bash "$ROOT/pipelines/evaluate.sh" --data_dir "$FACES" --split val --device cpu)
}
teardown() { common_teardown; }

@test "evaluate.sh: a checkpoint of G and F only gives the losses of G and F, null for the rest, and says so" {
    "${EV[@]}" --no_judge --ckpt "$CK" --output "$TMP/four.json" 2> /dev/null
    run "${EV[@]}" --no_judge --ckpt "$GF" --output "$TMP/two.json"
    assert_success
    assert_output --partial "has no discriminators (G and F only): the discriminator and adversarial losses are absent (null)"
    "$PY" - "$TMP/four.json" "$TMP/two.json" <<'PY'
import json, sys
four, two = (json.load(open(p)) for p in sys.argv[1:])
for k in ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "loss_gen_total"):
    assert two[k] is None and two["val/" + k] is None and four[k] is not None, k
for k in ("loss_cyc", "loss_id", "l1_cyc", "l1_id"):
    assert two[k] == four[k], k
PY
}

@test "evaluate.sh: a --ckpt that is no checkpoint is named for what is wrong with it" {
    face=$(ls "$FACES"/*.jpg.chip.jpg | head -1)
    run "${EV[@]}" --no_judge --ckpt "$face"
    assert_failure 1
    assert_output --partial "evaluate.sh: --ckpt: $face: not a checkpoint: this is a 48x48 JPEG image"
    run "${EV[@]}" --no_judge --ckpt "$TMP/missing.safetensors"
    assert_failure 1
    assert_output "evaluate.sh: --ckpt $TMP/missing.safetensors: no such file"
    run "${EV[@]}" --no_judge --ckpt "$TMP"
    assert_failure 1
    assert_output "evaluate.sh: --ckpt $TMP is a folder, not a checkpoint file"
    # without --ckpt, the training run's checkpoint is looked for
    OUTPUTS_DIR=$TMP/none run "${EV[@]}" --no_judge
    assert_failure 1
    assert_output --partial "no checkpoint $TMP/none/checkpoints/best.safetensors (train first, or pass --ckpt)"
}

@test "evaluate.sh: the counts say pairs, and images of both domains" {
    run "${EV[@]}" --no_judge --ckpt "$CK" --limit 1 --output "$TMP/m.json"
    assert_success
    assert_output --partial '"pairs": 1, "images": 2'
}

@test "evaluate.sh: an --output that is one of the inputs is refused, whatever its name" {
    cp "$GF" "$TMP/c.safetensors"
    ln "$TMP/c.safetensors" "$TMP/hard.json"
    ln -s c.safetensors "$TMP/soft.json"
    for out in "$TMP/c.safetensors" "$TMP/hard.json" "$TMP/soft.json"; do
        run "${EV[@]}" --no_judge --ckpt "$TMP/c.safetensors" --output "$out"
        assert_failure 1
        assert_output --partial "--output $out is $TMP/c.safetensors, an input"
    done
    cmp "$GF" "$TMP/c.safetensors"
}

@test "evaluate.sh: without the judge's packages it says how to get them (or --no_judge)" {
    mkdir -p "$TMP/root/eval/judge"
    cp -r "$ROOT/pipelines" "$ROOT/Makefile" "$TMP/root/"
    cp "$ROOT"/eval/judge/*.mjs "$ROOT/eval/judge/package.json" "$TMP/root/eval/judge/"
    run bash "$TMP/root/pipelines/evaluate.sh" --data_dir "$FACES" --split val --device cpu --ckpt "$GF"
    assert_failure 1
    assert_output --partial "npm ci --prefix $TMP/root/eval/judge"
    run bash "$TMP/root/pipelines/evaluate.sh" --data_dir "$FACES" --split val --device cpu --ckpt "$GF" \
        --no_judge --limit 1 --output "$TMP/m.json"
    assert_success
}

@test "evaluate.sh: the aging metrics of each direction in the JSON and on stderr" {
    [ -d "$ROOT/eval/judge/node_modules" ] || skip "no eval/judge/node_modules (npm ci --prefix eval/judge)"
    run "${EV[@]}" --ckpt "$GF" --limit 1 --output "$TMP/m.json"
    assert_success
    assert_output --partial "evaluate.sh: young->old (G): 1 pairs"
    assert_output --partial "evaluate.sh: old->young (F): 1 pairs"
    "$PY" - "$TMP/m.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["pairs"] == 1 and m["loss_cyc"] is not None, m
for d in ("judge_y2o", "judge_o2y"):
    j = m[d]
    # the fixture faces are smooth noise: the image metrics are there, faces may not be
    assert j["pairs"] == 1 and j["detail"] > 0 and j["checker"] >= 0 and j["checker_out"] >= 0, j
    assert set(j) >= {"faces", "age_in", "age_out", "age_change", "moved_3y", "identity", "same_person"}, j
PY
}
