#!/usr/bin/env bats
# What a newcomer meets first in the pipelines: the options every pipeline
# shares (pipelines/options.sh), infer.sh on a file, several files and a
# folder, and train.sh's word on a data folder that is not one.  No training:
# infer.sh uses the shipped model.

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
    # no training run's checkpoint: the shipped model, whatever the caller's folder holds
    export OUTPUTS_DIR=$TMP/no-run
    cd "$TMP"
}
teardown() { common_teardown; }

@test "pipelines: an unknown option is named as one, also last on the line or with a value" {
    for p in train infer evaluate; do
        for args in "--bogus" "--bogus 3" "--bogus=3" "--img_size 32 --bogus"; do
            run bash "$ROOT/pipelines/$p.sh" $args
            assert_failure 2
            assert_output --partial "$p.sh: unknown option --bogus"
            refute_output --partial "needs a value"
        done
    done
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs
    assert_failure 2
    assert_output --partial "--num_train_epochs needs a value"
    # only infer.sh takes operands (its faces)
    run bash "$ROOT/pipelines/train.sh" face.jpg
    assert_failure 2
    assert_output --partial "unexpected argument 'face.jpg'"
}

@test "infer.sh: faces given as operands, as translate takes them; NAME_young2old.jpg beside each (a JPEG stays a JPEG)" {
    faces=($(ls "$(faces_dir)"/*.jpg | head -2))
    cp "${faces[0]}" "$TMP/me.jpg"
    run bash "$ROOT/pipelines/infer.sh" me.jpg
    assert_success
    assert_output --partial "infer.sh: wrote me_young2old.jpg"
    [ -s "$TMP/me_young2old.jpg" ]
    # several faces into a folder, with progress; the model is named once
    run bash "$ROOT/pipelines/infer.sh" --direction old2young --output "$TMP/res" me.jpg -- "${faces[1]}"
    assert_success
    assert_output --partial "[1/2] wrote $TMP/res/me_old2young.jpg"
    assert_output --partial "[2/2] wrote $TMP/res/$(basename "${faces[1]}" .jpg.chip.jpg)_old2young.jpg"
    assert_output --partial "2 of 2 images done"
    [ "$(grep -c "using the shipped model" <<< "$output")" -eq 1 ]
    run bash "$ROOT/pipelines/infer.sh" --input me.jpg --output "$TMP/me_young2old.jpg" nope.jpg
    assert_failure 1
    assert_output --partial "not a folder"
    run bash "$ROOT/pipelines/infer.sh" nope.jpg
    assert_failure 1
    assert_output --partial "no such file or folder: nope.jpg"
    run bash "$ROOT/pipelines/infer.sh"
    assert_failure 2
}

@test "infer.sh: a folder of photos goes to DIR_young2old/ beside it; what is not an image is skipped and counted" {
    mkdir "$TMP/photos" "$TMP/photos/sub"
    cp $(ls "$(faces_dir)"/*.jpg | head -3) "$TMP/photos/"
    echo "not a face" > "$TMP/photos/notes.txt"
    run bash "$ROOT/pipelines/infer.sh" --input photos
    assert_failure 1
    assert_output --partial "skipping photos/notes.txt: not a PNG or JPEG image"
    assert_output --partial "skipping photos/sub/: a folder"
    assert_output --partial "[3/3] wrote photos_young2old/"
    assert_output --partial "3 of 3 images done, 2 skipped"
    [ "$(ls "$TMP/photos_young2old" | grep -c '_young2old\.jpg$')" -eq 3 ]
    # --output names the folder; a clean folder exits 0
    rm -r "$TMP/photos/notes.txt" "$TMP/photos/sub"
    run bash "$ROOT/pipelines/infer.sh" "$TMP/photos/" --output "$TMP/aged"
    assert_success
    [ "$(ls "$TMP/aged" | wc -l)" -eq 3 ]
}

@test "train.sh: a --data_dir that is a file, or missing, is named as such (no stack of 'failed in' lines)" {
    cp "$(ls "$(faces_dir)"/*.jpg | head -1)" "$TMP/face.jpg"
    run bash "$ROOT/pipelines/train.sh" --data_dir face.jpg
    assert_failure 1
    assert_output --partial "train.sh: --data_dir face.jpg: not a folder"
    assert_output --partial "--data_dir DIR"
    refute_output --partial "failed in"
    UTKFACE_DIR=$TMP/typo run bash "$ROOT/pipelines/train.sh"
    assert_failure 1
    assert_output --partial "UTKFACE_DIR=$TMP/typo: no such folder"
    refute_output --partial "failed in"
}
