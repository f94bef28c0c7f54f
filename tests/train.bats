#!/usr/bin/env bats
# pipelines/train.sh, evaluate.sh and infer.sh end to end on small models:
# outputs, the LR schedule, resume after SIGKILL, options and config files,
# the AWS hooks (a fake aws CLI and a fake metadata service).

load helpers

TINY=(--img_size 32 --ngf 8 --ndf 8 --n_blocks 2 --train_batch_size 2 --num_sample_generations_to_save 4
      --checkpoint_every 2 --log_every 2)
SMALL=("${TINY[@]}" --skip_estimate) # the cost estimate is timed once, in the first test

setup() {
    common_setup
    FACES=$(faces_dir)
    export UTKFACE_DIR=$FACES OUTPUTS_DIR=$TMP/out
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
}
teardown() { common_teardown; }

@test "train.sh: a 3-epoch run writes every output, and the LR schedule follows the formula" {
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 "${TINY[@]}"
    assert_success
    o=$TMP/out
    # before training: what the run will cost here, from a few timed steps, on stderr and in the log
    assert_output --regexp "cost estimate on this machine as loaded now \(--device auto, 32 px, --precision auto\): [0-9.]+ s a step \(2 timed steps after a warm-up one\), 5 steps an epoch: about .* for the 3 epoch\(s\) to go"
    grep -q "cost estimate on this machine as loaded now" "$o/logs/train.log"
    [ -z "$(grep skip_estimate "$o/config.txt")" ] # an option of the invocation, not of the run
    for f in checkpoints/best.safetensors checkpoints/last.safetensors checkpoints/epoch_0002.safetensors \
             images/epoch1.png images/epoch2.png images/epoch3.png metrics/metrics.jsonl metrics/steps.jsonl \
             metrics/test_metrics.json metrics/curves.png metrics/best.json config.txt logs/train.log; do
        [ -s "$o/$f" ] || { echo "missing $f"; false; }
    done
    ls "$o"/logs/run-*/events.out.tfevents.* > /dev/null
    grep -q "chosen by the lowest validation generator loss" "$o/logs/train.log"
    grep -qx "data_dir = $FACES" "$o/config.txt" # the folder UTKFACE_DIR named, not an empty value
    refute_output --partial "resuming" # a fresh run continues its own epochs quietly
    "$PY" - "$o" <<'PY'
import json, math, sys
o = sys.argv[1]
val = [json.loads(l) for l in open(o + "/metrics/metrics.jsonl")]
assert [v["epoch"] for v in val] == [1, 2, 3], val
keys = ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "loss_cyc", "loss_id", "loss_gen_total")
assert all(math.isfinite(v[k]) for v in val for k in keys)
train = [json.loads(l) for l in open(o + "/metrics/steps.jsonl") if '"phase": "train"' in l]
N = 3
factor = lambda k: 1.0 if k < N // 2 else max(0.0, (N - k) / (N - N // 2))
for r in train:  # the lr each epoch trained with: LambdaLR of the 0-based epoch
    assert abs(r["lr"] - 2e-4 * factor(r["epoch"] - 1)) < 1e-12, r
    assert abs(r["lr_d"] - 1e-4 * factor(r["epoch"] - 1)) < 1e-12, r
test = json.load(open(o + "/metrics/test_metrics.json"))
assert test["phase"] == "test" and "fid_val" in test and all(math.isfinite(test[k]) for k in keys), test
from PIL import Image
assert Image.open(o + "/images/epoch3.png").size[1] == 2 * 34 + 2
assert Image.open(o + "/metrics/curves.png").size == (1200, 500)
PY
    run translate --y2o --ckpt "$TMP/out/checkpoints/best.safetensors" --size 32 -i "$(ls "$FACES"/*.chip.jpg | head -1)" -o "$TMP/x.png"
    assert_success
}

@test "train.sh --resume after SIGKILL ends with the same parameters as an uninterrupted run" {
    OUTPUTS_DIR=$TMP/full bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 "${SMALL[@]}" 2> /dev/null
    setsid bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 "${SMALL[@]}" 2> "$TMP/err" &
    pid=$!
    for _ in $(seq 600); do
        [ -f "$TMP/out/checkpoints/last.safetensors" ] && grep -q "step\": 6" "$TMP/out/metrics/steps.jsonl" 2>/dev/null && break
        sleep 0.1
    done
    kill -9 -- -$pid
    wait $pid || true
    state=$(cyclegan-step --ckpt "$TMP/out/checkpoints/last.safetensors" --state)
    echo "# killed at: $state" >&3
    [[ $state != epoch=3* ]]
    bash "$ROOT/pipelines/train.sh" --resume 2> "$TMP/err2" # only --resume: the run keeps its own options
    grep -q "resuming after epoch" "$TMP/err2"
    same_tensors "$TMP/full/checkpoints/last.safetensors" "$TMP/out/checkpoints/last.safetensors"
    [ "$(wc -l < "$TMP/out/metrics/metrics.jsonl")" -eq 3 ]
    [ -s "$TMP/out/metrics/test_metrics.json" ]
}

@test "train.sh at 128 and 256 px: records larger than a pipe's buffer, through to the test metrics" {
    # The sample grid reads a few faces of a larger stream: at 32 px the rest
    # fit in the pipe, at 128+ px its producers used to die of SIGPIPE.  40
    # faces a domain, so that the validation split holds more than the grid.
    "$PY" "$TESTS_DIR/py/faces.py" "$TMP/faces40" 40 48 > /dev/null
    for s in 128 256; do
        run bash "$ROOT/pipelines/train.sh" --data_dir "$TMP/faces40" --num_train_epochs 1 --img_size $s --ngf 4 --ndf 4 --n_blocks 1 \
            --train_batch_size 2 --limit 4 --num_sample_generations_to_save 2 --output_dir "$TMP/o$s"
        assert_success
        for f in checkpoints/best.safetensors images/epoch1.png metrics/test_metrics.json; do
            [ -s "$TMP/o$s/$f" ] || { echo "missing $f at $s px"; false; }
        done
        "$PY" -c 'import sys; from PIL import Image; assert Image.open(sys.argv[1]).size[1] == 2 * (int(sys.argv[2]) + 2) + 2' \
            "$TMP/o$s/images/epoch1.png" $s
    done
}

@test "train.sh: a failing stage is named, with its exit status" {
    mkdir "$TMP/bad"
    for f in "$FACES"/*.jpg; do head -c 200 "$f" > "$TMP/bad/$(basename "$f")"; done
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --data_dir "$TMP/bad"
    assert_failure
    assert_output --partial "train.sh: failed in epoch 1/1: training (exit 1"
    grep -q "failed in epoch 1/1: training" "$TMP/out/logs/train.log"
}

@test "train.sh --resume continues with the run's own options; conflicts stop it; the epoch count may change" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --lambda_id_value 0.25 2> /dev/null
    # only --resume and a new epoch count: the rest comes from the run (32 px, ngf 8, ...)
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 --resume
    assert_success
    assert_output --partial "resuming after epoch 1 of 2"
    assert_output --partial "cyclegan-step: resuming from $TMP/out/checkpoints/last.safetensors at epoch 2"
    [ "$(cyclegan-step --ckpt "$TMP/out/checkpoints/last.safetensors" --state)" = "epoch=2 step=10 epoch_step=0" ]
    grep -qx "img_size = 32" "$TMP/out/config.txt"
    grep -qx "lambda_id_value = 0.25" "$TMP/out/config.txt"
    grep -qx "num_train_epochs = 2" "$TMP/out/config.txt"
    ! grep -q "^resume" "$TMP/out/config.txt"
    [ "$(wc -l < "$TMP/out/metrics/metrics.jsonl")" -eq 2 ]
    cp "$TMP/out/checkpoints/last.safetensors" "$TMP/before"
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 --resume --img_size 64 --gen_lr 2e-4 --ngf 16
    assert_failure 2
    assert_output --partial "--img_size 64 (the run has 32)"
    assert_output --partial "--ngf 16 (the run has 8)"
    refute_output --partial "gen_lr" # 2e-4 is the run's 0.0002
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 --resume
    assert_failure 2
    assert_output --partial "the run has trained 2 epochs, more than --num_train_epochs 1"
    cmp "$TMP/before" "$TMP/out/checkpoints/last.safetensors"
}

@test "train.sh --init_from a training state takes its Adam moments: the same nets as --resume" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --skip_test 2> /dev/null
    cp "$TMP/out/checkpoints/last.safetensors" "$TMP/state.safetensors"
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/state.safetensors" --output_dir "$TMP/new" --num_train_epochs 2 \
        --skip_test --skip_estimate
    assert_success
    assert_output --partial "after its epoch 1 of 2, with the file's Adam moments"
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 --resume --skip_test 2> /dev/null
    # the same epoch from the same nets and moments: bit for bit the resumed run's
    ckpt diff --tol 0 "$TMP/out/checkpoints/last.safetensors" "$TMP/new/checkpoints/last.safetensors"
}

@test "train.sh --init_from: a new machine continues a run from its four nets alone (F16, no Adam state)" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 "${SMALL[@]}" --skip_test 2> /dev/null
    # what the repository keeps: all four nets in F16, with the run's epoch, step and configuration
    ckpt extract --net G,F,DX,DY --dtype f16 "$TMP/out/checkpoints/last.safetensors" "$TMP/continue.safetensors"
    [ "$(ckpt meta "$TMP/continue.safetensors" epoch)" = 2 ]
    [ "$(ckpt meta "$TMP/continue.safetensors" kind)" = weights ]
    # a new folder, no model options: the sizes and rates come from the file, the epochs count on
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/continue.safetensors" --output_dir "$TMP/new" --num_train_epochs 4 \
        --num_sample_generations_to_save 4 --log_every 2 --skip_test --skip_estimate
    assert_success
    assert_output --partial "starting from the nets of $TMP/continue.safetensors after its epoch 2 of 4"
    assert_output --partial "fresh Adam moments"
    [ "$(cyclegan-step --ckpt "$TMP/new/checkpoints/last.safetensors" --state)" = "epoch=4 step=20 epoch_step=0" ]
    grep -qx "img_size = 32" "$TMP/new/config.txt"
    grep -qx "ngf = 8" "$TMP/new/config.txt"
    "$PY" - "$TMP/new" <<'PY'
import json, sys
o = sys.argv[1]
val = [json.loads(l) for l in open(o + "/metrics/metrics.jsonl")]
assert [v["epoch"] for v in val] == [3, 4], val
train = [json.loads(l) for l in open(o + "/metrics/steps.jsonl") if '"phase": "train"' in l]
assert [r["epoch"] for r in train] == [3, 4], train
for r in train:  # the schedule of the 4-epoch run: constant for epochs 1-2, then linear decay
    f = 1.0 if r["epoch"] - 1 < 2 else (4 - (r["epoch"] - 1)) / 2
    assert abs(r["lr"] - 2e-4 * f) < 1e-12 and abs(r["lr_d"] - 1e-4 * f) < 1e-12, r
PY
    # the nets moved on from the file's
    run ckpt diff --tol 0.001 "$TMP/continue.safetensors" "$TMP/new/checkpoints/last.safetensors"
    assert_failure 1
    # a generators-only model cannot continue (its discriminators would start from noise)
    ckpt extract --net G,F "$TMP/continue.safetensors" "$TMP/gf.safetensors"
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/gf.safetensors" --output_dir "$TMP/gf"
    assert_failure 1
    assert_output --partial "holds no DX net"
    [ ! -e "$TMP/gf" ]
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/continue.safetensors" --resume --output_dir "$TMP/new"
    assert_failure 2
    assert_output --partial "not both"
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/continue.safetensors" --num_train_epochs 2 --output_dir "$TMP/x"
    assert_failure 2
    assert_output --partial "has trained 2 epochs, as many as --num_train_epochs 2"
    run bash "$ROOT/pipelines/train.sh" --init_from "$TMP/none.safetensors" --output_dir "$TMP/x"
    assert_failure 1
    assert_output --partial "no such file"
}

@test "train.sh: a new run never deletes the run in its folder; --overwrite replaces it once it starts" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" 2> /dev/null
    cp "$TMP/out/checkpoints/last.safetensors" "$TMP/before"
    cp "$TMP/out/metrics/metrics.jsonl" "$TMP/before.jsonl"
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}"
    assert_failure 1
    assert_output --partial "holds a run already; --resume continues it, --overwrite replaces it"
    for bad in "--precision fp8" "--fid_weights $TMP/none" "--data_dir $TMP/none" "--num_train_epochs x"; do
        run bash "$ROOT/pipelines/train.sh" --overwrite "${SMALL[@]}" $bad
        assert_failure
        cmp "$TMP/before" "$TMP/out/checkpoints/last.safetensors"
        cmp "$TMP/before.jsonl" "$TMP/out/metrics/metrics.jsonl"
    done
    run bash "$ROOT/pipelines/train.sh" --resume --overwrite
    assert_failure 2
    RUN_ID=second run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --seed 7 --overwrite
    assert_success
    ! cmp -s "$TMP/before" "$TMP/out/checkpoints/last.safetensors"
    [ "$(wc -l < "$TMP/out/metrics/metrics.jsonl")" -eq 1 ]
    # TensorBoard: one folder per run, so the two runs' curves do not mix
    [ "$(ls -d "$TMP"/out/logs/run-* | wc -l)" -eq 2 ]
    ls "$TMP"/out/logs/run-second/events.out.tfevents.* > /dev/null
}

# Every file of a folder, by name and content.
fingerprint() { (cd "$1" && find . | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

@test "train.sh --overwrite: a value any tool refuses leaves the old run byte-identical" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" 2> /dev/null
    fingerprint "$TMP/out" > "$TMP/before"
    while read -r opt values; do
        for v in $values; do
            run bash "$ROOT/pipelines/train.sh" --overwrite "${SMALL[@]}" --num_train_epochs 1 "--$opt" "$v"
            [ "$status" -eq 2 ] || { echo "--$opt $v: exit $status: $output"; false; }
            fingerprint "$TMP/out" | cmp -s "$TMP/before" - || { echo "--$opt $v changed the run: $output"; false; }
        done
    done <<'BAD'
num_train_epochs x 0 200000
train_batch_size 0 5000
gen_lr abc -1 11
disc_lr abc 1e9
lambda_adv_value -1
lambda_cyc_value x
lambda_id_value 1e7
weight_decay x
beta1 1
beta2 2
max_grad_norm -1
num_sample_generations_to_save 0 300
img_size 30 4 8192
ngf 0 2000
ndf 0
n_blocks 0 100
seed -1 99999999999999999999
num_workers x 2000
checkpoint_every 0
log_every x
eval_batch_size 0 5000
limit x
train_size -1
val_size x
test_size 1.5
BAD
    run bash "$ROOT/pipelines/train.sh" --overwrite "${SMALL[@]}" --gen_lr abc
    assert_output --partial "cyclegan-step: --lr-g: 'abc' is not a number"
}

@test "train.sh --resume: the S3 and EC2 hooks come from the command line only; config.txt is parsed strictly" {
    export AWS_LOG=$TMP/aws.log PATH="$TESTS_DIR/fake:$PATH"
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" 2> /dev/null
    ! grep -q "s3_bucket_name\|archive_and_terminate_ec2\|output_dir" "$TMP/out/config.txt"
    cp "$TMP/out/config.txt" "$TMP/config.good"
    # a doctored run folder asks for the hooks: they are not taken
    printf 'archive_and_terminate_ec2 = 1\ns3_bucket_name = attacker\n' >> "$TMP/out/config.txt"
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 --resume
    assert_success
    [ ! -e "$AWS_LOG" ]
    refute_output --partial "attacker"
    ! grep -q attacker "$TMP/out/config.txt"
    fingerprint "$TMP/out" > "$TMP/before"
    for bad in "gen_lr = abc" "ngf = 8;rm -rf /" "limit = -1" "resume = yes" "no_such_key = 1" "what is this" \
               "data_dir = $(printf 'a\033[2Jb')"; do
        { grep -v "^${bad%% *} " "$TMP/config.good"; echo "$bad"; } > "$TMP/out/config.txt"
        fingerprint "$TMP/out" > "$TMP/before"
        run bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 --resume
        [ "$status" -eq 2 ] || { echo "'$bad': exit $status"; false; }
        case $bad in
            "what is this") assert_output --partial "expected 'key = value'" ;;
            *) assert_output --partial "'${bad%% *}'" ;;
        esac
        fingerprint "$TMP/out" | cmp -s "$TMP/before" -
    done
}

@test "train.sh --resume: a run folder moved or copied elsewhere resumes there" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" 2> /dev/null
    cp -a "$TMP/out" "$TMP/copy"
    rm -rf "$TMP/out"
    run bash "$ROOT/pipelines/train.sh" --output_dir "$TMP/copy" --num_train_epochs 2 --resume
    assert_success
    assert_output --partial "resuming from $TMP/copy/checkpoints/last.safetensors at epoch 2"
    [ "$(cyclegan-step --ckpt "$TMP/copy/checkpoints/last.safetensors" --state)" = "epoch=2 step=10 epoch_step=0" ]
    [ ! -e "$TMP/out" ]
    mv "$TMP/copy" "$TMP/moved"
    OUTPUTS_DIR=$TMP/moved run bash "$ROOT/pipelines/train.sh" --num_train_epochs 3 --resume
    assert_success
    [ "$(wc -l < "$TMP/moved/metrics/metrics.jsonl")" -eq 3 ]
    [ ! -e "$TMP/out" ] && [ ! -e "$TMP/copy" ]
}

@test "train.sh: the reference's options: split sizes, eval batch, logging steps, --skip_test, --wandb_project" {
    "$PY" "$TESTS_DIR/py/faces.py" "$TMP/faces40" 40 48 > /dev/null # 4 validation pairs
    run bash "$ROOT/pipelines/train.sh" --data_dir "$TMP/faces40" --num_train_epochs 1 "${SMALL[@]}" --train_size 4 --val_size 2 \
        --eval_batch_size 1 --steps_for_logging_metrics 1 --skip_test --wandb_project aging-gan
    assert_success
    assert_output --partial "wandb sync --sync-tensorboard -p aging-gan $TMP/out/logs/run-"
    assert_output --partial "--skip_test: no test evaluation"
    [ ! -e "$TMP/out/metrics/test_metrics.json" ]
    # 4 pairs in batches of 2: 2 steps, each logged; 2 validation pairs, one batch each
    [ "$(cyclegan-step --ckpt "$TMP/out/checkpoints/last.safetensors" --state)" = "epoch=1 step=2 epoch_step=0" ]
    [ "$(grep -c '"phase": "step"' "$TMP/out/metrics/steps.jsonl")" -eq 2 ]
    grep -q '"pairs": 2, "images": 4' "$TMP/out/metrics/metrics.jsonl"
    run bash "$ROOT/pipelines/train.sh" --overwrite --train_size x
    assert_failure 2
}

@test "train.sh: --num_workers 2 feeds the trainer from two aug processes over ZeroMQ" {
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --num_workers 2
    assert_success
    [ "$(cyclegan-step --ckpt "$TMP/out/checkpoints/last.safetensors" --state)" = "epoch=1 step=5 epoch_step=0" ]
}

@test "train.sh: options, aliases, --config and the saved configuration" {
    run bash "$ROOT/pipelines/train.sh" --help
    assert_success
    assert_output --partial "--num_train_epochs"
    run bash "$ROOT/pipelines/train.sh" --no_such_option 1
    assert_failure 2
    assert_output --partial "unknown option --no_such_option"
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs many
    assert_failure 2
    run bash "$ROOT/pipelines/train.sh" --archive_and_terminate_ec2
    assert_failure 2
    assert_output --partial "--s3_bucket_name"
    run bash "$ROOT/pipelines/train.sh" --precision fp8
    assert_failure 2
    assert_output --partial "expected fp32, bf16, fp16 or auto"
    printf 'num_train_epochs = 5\nlambda_cyc_value = 7.5   # comment\nset_seed = true\n' > "$TMP/cfg"
    run bash "$ROOT/pipelines/train.sh" --config "$TMP/cfg" --num-train-epochs 1 "${SMALL[@]}" --lambda-id-value=0.25
    assert_success
    grep -qx "num_train_epochs = 1" "$TMP/out/config.txt"
    grep -qx "lambda_cyc_value = 7.5" "$TMP/out/config.txt"
    grep -qx "lambda_id_value = 0.25" "$TMP/out/config.txt"
    grep -qx "set_seed = 1" "$TMP/out/config.txt"
    grep -qx "precision = auto" "$TMP/out/config.txt"
    printf 'what is this\n' > "$TMP/bad"
    run bash "$ROOT/pipelines/train.sh" --config "$TMP/bad"
    assert_failure 2
    assert_output --partial "expected 'key = value'"
    UTKFACE_DIR=$TMP/none run bash "$ROOT/pipelines/train.sh" --data_dir "$TMP/none"
    assert_failure 1
    assert_output --partial "--data_dir $TMP/none: no such folder"
}

@test "train.sh: --archive_and_terminate_ec2 syncs to S3 and terminates the instance" {
    export AWS_LOG=$TMP/aws.log PATH="$TESTS_DIR/fake:$PATH"
    timeout 150 "$PY" "$TESTS_DIR/py/fake_imds.py" "$TMP/port" &
    imds=$!
    for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
    export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(cat "$TMP/port")
    RUN_ID=t1 run bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 "${SMALL[@]}" \
        --archive_and_terminate_ec2 --s3_bucket_name my-bucket
    kill $imds || true
    assert_success
    cat "$AWS_LOG" >&3
    grep -q "^aws s3 sync $TMP/out s3://my-bucket/outputs/run-t1 --only-show-errors$" "$AWS_LOG"
    [ "$(grep -c 's3 sync' "$AWS_LOG")" -ge 3 ]   # best, periodic, test metrics
    tail -1 "$AWS_LOG" | grep -q "^aws ec2 terminate-instances --instance-ids i-0abc123 --region eu-west-3$"
}

@test "train.sh: a failing S3 sync keeps the instance running and fails the run" {
    export AWS_LOG=$TMP/aws.log PATH="$TESTS_DIR/fake:$PATH" AWS_FAIL_SYNC=1
    # a reachable metadata service: the only thing that may stop the termination is the failed sync
    timeout 150 "$PY" "$TESTS_DIR/py/fake_imds.py" "$TMP/port" &
    imds=$!
    for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
    export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(cat "$TMP/port")
    run bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" --archive_and_terminate_ec2 --s3_bucket_name b
    kill $imds || true
    assert_failure 1
    assert_output --partial "WARNING: aws s3 sync failed"
    assert_output --partial "the final S3 sync failed; the instance is left running"
    [ -s "$TMP/out/checkpoints/best.safetensors" ] && [ -s "$TMP/out/metrics/test_metrics.json" ]
    grep -q "s3 sync" "$AWS_LOG"
    run grep -c terminate-instances "$AWS_LOG"
    assert_output "0"
}

@test "evaluate.sh and infer.sh" {
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 1 "${SMALL[@]}" 2> /dev/null
    cp "$TMP/out/metrics/test_metrics.json" "$TMP/train_test.json"
    run bash "$ROOT/pipelines/evaluate.sh" --no_judge # the size comes from the checkpoint
    assert_success
    assert_output --partial '"phase": "test"'
    assert_output --partial '"img_size": 32'
    # its own file: the training run's test metrics stay as they were
    cmp "$TMP/train_test.json" "$TMP/out/metrics/test_metrics.json"
    "$PY" - "$TMP/out/metrics/eval_test.json" "$TMP/train_test.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    m = json.load(open(path))
    for k in ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "loss_cyc", "loss_id", "loss_gen_total", "fid_val"):
        assert m["test/" + k] == m[k], (path, k)
    # the reference logs the weighted terms: the total is their sum
    total = m["loss_f_adv"] + m["loss_g_adv"] + m["loss_cyc"] + m["loss_id"]
    assert abs(total - m["loss_gen_total"]) < 1e-5 * max(1, abs(total)), m
    assert abs(m["loss_cyc"] - 4 * m["l1_cyc"]) < 1e-6 and abs(m["loss_g_adv"] - 2 * m["mse_g_adv"]) < 1e-6, m
PY
    run bash "$ROOT/pipelines/evaluate.sh" --no_judge --split val --output "$TMP/v.json"
    assert_success
    grep -q '"val/loss_DX"' "$TMP/v.json"
    run bash "$ROOT/pipelines/evaluate.sh" --fid_weights "$TMP/none"
    assert_failure 1
    assert_output --partial "no such file"
    cp "$(ls "$FACES"/*.chip.jpg | head -1)" "$TMP/25_0_0_20170101.jpg.chip.jpg"
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/25_0_0_20170101.jpg.chip.jpg" --img_size 32
    assert_success
    [ -s "$TMP/25_0_0_20170101_young2old.jpg" ] # a JPEG stays a JPEG
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/25_0_0_20170101.jpg.chip.jpg" --img_size 32 \
        --direction old2young --output "$TMP/y.png"
    assert_success
    [ -s "$TMP/y.png" ]
    # --raw: the model's size comes from the checkpoint: the run's best (32 px), else the shipped model (128 px)
    run bash "$ROOT/pipelines/infer.sh" --raw --input "$TMP/25_0_0_20170101.jpg.chip.jpg" --output "$TMP/own.png"
    assert_success
    assert_output --partial "using your training run's best checkpoint"
    OUTPUTS_DIR=$TMP/none run bash "$ROOT/pipelines/infer.sh" --raw --input "$TMP/25_0_0_20170101.jpg.chip.jpg" \
        --output "$TMP/shipped.png"
    assert_success
    assert_output --partial "using the shipped model"
    "$PY" -c 'import sys; from PIL import Image; assert [Image.open(p).size[0] for p in sys.argv[1:]] == [32, 128]' \
        "$TMP/own.png" "$TMP/shipped.png"
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/nope.jpg"
    assert_failure 1
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/y.png" --direction sideways
    assert_failure 2
    run bash "$ROOT/pipelines/evaluate.sh" --ckpt "$TMP/none.safetensors"
    assert_failure 1
}

@test "train.sh on the real UTKFace images (UTKFACE_DIR from CI)" {
    [ -n "${REAL_UTKFACE_DIR:-}" ] && [ -d "$REAL_UTKFACE_DIR" ] || skip "UTKFACE_DIR not set"
    UTKFACE_DIR=$REAL_UTKFACE_DIR run bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 "${SMALL[@]}" --limit 16
    assert_success
    head -2 "$TMP/out/metrics/metrics.jsonl" >&3
    [ "$(wc -l < "$TMP/out/metrics/metrics.jsonl")" -eq 2 ]
}

@test "train.sh --fid_weights: best by the validation FID, the test FID in test_metrics.json" {
    has_torch || skip "no torch"
    "$PY" "$TESTS_DIR/py/ref_fid.py" weights "$TMP/w.pth" 0
    ckpt import "$TMP/w.pth" "$TMP/inception.safetensors" > /dev/null
    "$PY" "$TESTS_DIR/py/faces.py" "$TMP/faces40" 40 48 > /dev/null
    UTKFACE_DIR=$TMP/faces40 OMP_WAIT_POLICY=passive run bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 \
        "${SMALL[@]}" --fid_weights "$TMP/inception.safetensors"
    assert_success
    grep -q "lowest validation FID.*FID weights: $TMP/inception.safetensors" "$TMP/out/logs/train.log"
    grep -q '"criterion": "val FID"' "$TMP/out/metrics/best.json"
    # TensorBoard: the val FID and the sample grid per epoch, both learning rates
    "$PY" "$TESTS_DIR/py/tfevents_read.py" "$(ls -d "$TMP"/out/logs/run-*)" > "$TMP/tb.json"
    "$PY" - "$TMP/tb.json" <<'PY'
import json, sys
tb = json.load(open(sys.argv[1]))
assert len(tb["scalars"]["val/fid_val"]) == 2, tb["scalars"].keys()
assert [i[3] for i in tb["images"]["val/samples"]] == [True, True], tb["images"]
assert "train/lr" in tb["scalars"] and "train/lr_d" in tb["scalars"], tb["scalars"].keys()
PY
    "$PY" - "$TMP/out/metrics" <<'PY'
import json, math, sys
val = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
assert len(val) == 2 and all(isinstance(v["fid"], float) and math.isfinite(v["fid"]) and v["fid"] >= 0 for v in val), val
best = json.load(open(sys.argv[1] + "/best.json"))
assert best["score"] == min(v["fid"] for v in val), (best, val)
test = json.load(open(sys.argv[1] + "/test_metrics.json"))
assert isinstance(test["fid_val"], float) and math.isfinite(test["fid_val"]), test
print("# val FID per epoch %s, test FID %.3f" % ([round(v["fid"], 3) for v in val], test["fid_val"]))
PY
    UTKFACE_DIR=$TMP/faces40 run bash "$ROOT/pipelines/evaluate.sh" --no_judge --fid_weights "$TMP/inception.safetensors"
    assert_success
    "$PY" -c 'import json, math, sys; m = json.load(open(sys.argv[1])); assert math.isfinite(m["test/fid_val"]) and m["test/fid_val"] == m["fid_val"], m' \
        "$TMP/out/metrics/eval_test.json"
    run bash "$ROOT/pipelines/train.sh" --fid_weights "$TMP/none.safetensors"
    assert_failure 1
}
