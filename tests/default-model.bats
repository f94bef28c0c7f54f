#!/usr/bin/env bats
# Which model translate and serve run when given no --ckpt (lib/tool/models.c),
# and what they say about it on stderr.

load helpers

setup() {
    common_setup
    SHIPPED=$(cd "$TESTS_DIR/../models" && pwd)/utkface-128.safetensors
    FACE=$(ls "$(faces_dir)"/*.jpg | head -1)
    # a toy run's checkpoint: the shipped weights with a 32 px training size recorded
    cfg=$(ckpt meta "$SHIPPED" config | sed 's/"size":128/"size":32/')
    mkdir -p "$TMP/run/outputs/checkpoints"
    ckpt meta --set "config=$cfg" "$SHIPPED" "$TMP/run/outputs/checkpoints/best.safetensors"
    unset AGING_MODEL
    cd "$TMP"
}
teardown() { common_teardown; }

@test "default model: AGING_MODEL is named as the source, not as the shipped model" {
    AGING_MODEL=run/outputs/checkpoints/best.safetensors run translate --y2o -i "$FACE" -o o.png
    assert_success
    assert_output --partial "translate: using the model AGING_MODEL names, run/outputs/checkpoints/best.safetensors (32 px)"
    refute_output --partial "shipped"
    run translate --y2o -i "$FACE" -o o.png
    assert_output --partial "translate: using the shipped model, $SHIPPED (128 px)"
    refute_output --partial "warning"
}

@test "default model: a toy run's checkpoint in the working folder is used, with a warning naming both sizes" {
    cd run
    run translate --y2o -i "$FACE" -o o.png
    assert_success
    assert_output --partial "translate: warning: outputs/checkpoints/best.safetensors is a 32 px model, much smaller than the shipped 128 px one"
    assert_output --partial "using your training run's best checkpoint"
    # serve looks it up the same way (then fails here, on a host that cannot be)
    run serve --host 256.0.0.1 --port 1
    assert_output --partial "serve: warning: outputs/checkpoints/best.safetensors is a 32 px model"
    # a run as large as the shipped model needs no warning
    cp "$SHIPPED" outputs/checkpoints/best.safetensors
    run translate --y2o -i "$FACE" -o o.png
    assert_success
    refute_output --partial "warning"
}
