#!/usr/bin/env bash
# train.sh: the reference's training loop composed from the tools.  Per
# epoch: train (utk-split | aug workers | cyclegan-step), evaluate on val,
# save a sample grid, keep best/periodic/last checkpoints, log metrics; at
# the end evaluate `best` on the test split.  --resume continues a stopped run.
set -eEuo pipefail
# Any failure names the stage it stopped in; functions inherit the trap (-E),
# and it fires once, at the innermost failing command.
stage=setup
trap 'rc=$?; trap - ERR; echo "train.sh: failed in $stage (exit $rc, line $LINENO: $BASH_COMMAND)" >&2
      [ -n "${logs:-}" ] && [ -d "$logs" ] && echo "train.sh: failed in $stage (exit $rc)" >> "$logs/train.log"' ERR
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=(
    [num_train_epochs]=50 [train_batch_size]=4 [gen_lr]=0.0002 [disc_lr]=0.0001
    [lambda_adv_value]=2.0 [lambda_cyc_value]=4.0 [lambda_id_value]=0.5 [weight_decay]=0.0001
    [beta1]=0.5 [beta2]=0.999 [max_grad_norm]=1.0 [num_sample_generations_to_save]=10
    [img_size]=256 [ngf]=32 [ndf]=32 [n_blocks]=9 [seed]=42 [num_workers]=1 [nproc]=1
    [limit]= [data_dir]= [output_dir]= [s3_bucket_name]= [checkpoint_every]=5 [log_every]=10
    [fid_weights]= [device]=auto [precision]=auto [init_from]=
    [eval_batch_size]=32 [train_size]= [val_size]= [test_size]= [steps_for_logging_metrics]= [wandb_project]=
)
declare -A FLAGS=([resume]= [overwrite]= [set_seed]= [archive_and_terminate_ec2]= [skip_test]= [skip_estimate]=)
# What may change when a run is resumed; everything else must stay as the run began.
CHANGEABLE="num_train_epochs num_workers nproc device precision log_every checkpoint_every data_dir
            fid_weights num_sample_generations_to_save resume overwrite
            eval_batch_size test_size steps_for_logging_metrics wandb_project skip_test init_from skip_estimate"
# Never taken from a run's config.txt: where the run lies (a run folder may be
# moved or copied), and the hooks that run commands and reach the network,
# which each invocation must ask for on its own command line.
NOT_SAVED="output_dir s3_bucket_name archive_and_terminate_ec2"
# The kinds of values config.txt may hold (the rest is text); the tools check the ranges.
declare -A OPT_TYPE
for k in num_train_epochs train_batch_size img_size ngf ndf n_blocks num_sample_generations_to_save seed \
         num_workers nproc checkpoint_every log_every eval_batch_size limit train_size val_size test_size \
         steps_for_logging_metrics; do OPT_TYPE[$k]=int; done
for k in gen_lr disc_lr lambda_adv_value lambda_cyc_value lambda_id_value weight_decay beta1 beta2 \
         max_grad_norm; do OPT_TYPE[$k]=number; done

usage() {
    cat <<'USAGE'
usage: pipelines/train.sh [options]      (snake_case or kebab-case names; --name=value works)
Train the aging CycleGAN on UTKFace with the reference's loop.

  --num_train_epochs N (50)   --train_batch_size N (4)   --img_size N (256)
  --gen_lr X (2e-4)  --disc_lr X (1e-4)  --weight_decay X (1e-4)  --beta1 X (0.5)  --beta2 X (0.999)
  --lambda_adv_value X (2)  --lambda_cyc_value X (4)  --lambda_id_value X (0.5)  --max_grad_norm X (1)
  --ngf N (32)  --ndf N (32)  --n_blocks N (9)      model sizes
  --num_sample_generations_to_save N (10)            faces in each epoch's sample grid
  --set_seed --seed N (42)    seeds the split, the augmentation and the initialisation
  --num_workers N (1)         aug processes feeding the trainer over ZeroMQ
  --nproc N (1)               data-parallel ranks: mpirun -np N cyclegan-step, each rank with its own
                              utk-split | aug pipeline and its N-th of each batch (docs/distributed.md;
                              MPIRUN_ARGS adds mpirun options: hosts, --oversubscribe)
  --device D (auto)           cpu, cuda, cuda:N or auto (the GPU when one is visible)
  --precision P (auto)        fp32, bf16, fp16 (loss-scaled) or auto: bf16 on a GPU, fp32 on the CPU
  --limit N                   at most N faces per domain per split (quick runs)
  --train_size N --val_size N --test_size N   at most N pairs in that split (default: all)
  --eval_batch_size N (32)    batch of the validation and test evaluations (per-batch means averaged)
  --steps_for_logging_metrics N   the same as --log_every N (the reference's name)
  --skip_test                 no test evaluation at the end
  --skip_estimate             start without first timing a few steps to say what the run will cost
  --wandb_project NAME        accepted; there is no W&B client here: `wandb sync --sync-tensorboard
                              OUTPUT_DIR/logs/run-ID` uploads the TensorBoard events instead
  --data_dir DIR              UTKFace folder (default: UTKFACE_DIR or data/)
  --output_dir DIR            outputs (default: OUTPUTS_DIR or outputs/)
  --checkpoint_every N (5)    keep epoch_NNNN.safetensors every N epochs
  --fid_weights FILE          FID Inception weights (safetensors from `ckpt import pt_inception-...pth`;
                              default AGING_FID_WEIGHTS): then `best` is the lowest val FID of G(young)
  --resume                    continue the run in the output folder where it stopped, with its options
                              (those given again must agree, but for the epoch count, workers, device,
                              precision, logging and the data folder); the folder may have been moved
  --overwrite                 replace the run in the output folder, once the tools have accepted every option
  --init_from FILE            start a new run from the four nets (G, F, DX, DY) of FILE, e.g. the
                              repository's models/continue-128.safetensors (with fresh Adam moments) or
                              a run's last.safetensors (with its moments): the epochs count on from the
                              file's `epoch`, and the options not given take the file's training
                              configuration (sizes, learning rates, loss weights)
  --config FILE               `key = value` lines with these names; the command line wins
  --archive_and_terminate_ec2 --s3_bucket_name B   sync outputs to S3, then terminate this EC2 instance
                              (never taken from a run's config.txt: give them to each run that wants them)
USAGE
}

# --init_from FILE: the file must hold all four nets (a generators-only model
# cannot train: its discriminators would start from noise and undo it).  Its
# training configuration fills the options not given, so that continuing a
# 128 px model needs no options; its `epoch` (0 if absent) is where the run
# goes on.  Sets init_epoch.
init_options() {  # file
    local f=$1 info cfg v k pair
    [ -f "$f" ] || { echo "train.sh: --init_from: no such file $f" >&2; exit 1; }
    info=$(ckpt info --summary "$f" 2>&1) || { echo "train.sh: --init_from: $info" >&2; exit 1; }
    for k in G F DX DY; do
        grep -q "^  $k " <<< "$info" || {
            echo "train.sh: --init_from: $f holds no $k net (it needs G, F, DX and DY: a generators-only" \
                 "model such as models/utkface-128.safetensors cannot continue training; use" \
                 "models/continue-128.safetensors)" >&2
            exit 1
        }
    done
    cfg=$(ckpt meta --json "$f" config 2>/dev/null) || cfg=
    for pair in lr_g:gen_lr lr_d:disc_lr beta1:beta1 beta2:beta2 weight_decay:weight_decay \
                lambda_adv:lambda_adv_value lambda_cyc:lambda_cyc_value lambda_id:lambda_id_value \
                clip_norm:max_grad_norm batch:train_batch_size size:img_size ngf:ngf ndf:ndf \
                n_blocks:n_blocks epochs:num_train_epochs; do
        k=${pair#*:}
        [ -z "${GIVEN[$k]:-}" ] || continue
        v=$(config_num "$cfg" "${pair%%:*}")
        [ -z "$v" ] || OPT[$k]=$v
    done
    # a training state (train.sh's last.safetensors) also carries Adam's moments,
    # which cyclegan-step then takes over; a weights file starts them afresh
    if grep -q "^  opt_G " <<< "$info"; then init_adam="with the file's Adam moments"
    else init_adam="with fresh Adam moments (the file holds no optimiser state)"; fi
    init_epoch=$(ckpt meta "$f" epoch 2>/dev/null) || init_epoch=0
    [[ $init_epoch =~ ^[0-9]+$ ]] || { echo "train.sh: --init_from: $f: metadata 'epoch' is not a count" >&2; exit 1; }
}

parse_options "$@"
[ -n "${OPT[output_dir]}" ] && OUTPUTS=${OPT[output_dir]}
ck=$OUTPUTS/checkpoints met=$OUTPUTS/metrics img=$OUTPUTS/images logs=$OUTPUTS/logs
if [ -n "${OPT[resume]}" ]; then
    [ -z "${OPT[overwrite]}" ] || { echo "train.sh: --resume and --overwrite do not go together" >&2; exit 2; }
    [ -f "$ck/last.safetensors" ] || { echo "train.sh: --resume: no $ck/last.safetensors to resume from" >&2; exit 1; }
    if [ -f "$OUTPUTS/config.txt" ]; then
        merge_saved_config "$OUTPUTS/config.txt" "$CHANGEABLE" "$NOT_SAVED"
    else
        echo "train.sh: --resume: no $OUTPUTS/config.txt; using the options given" >&2
    fi
fi
init_epoch=0
if [ -n "${GIVEN[init_from]:-}" ]; then
    [ -z "${OPT[resume]}" ] || { echo "train.sh: --init_from starts a new run and --resume continues one: not both" >&2; exit 2; }
    init_options "${OPT[init_from]}"
fi
[ -n "${OPT[steps_for_logging_metrics]}" ] && OPT[log_every]=${OPT[steps_for_logging_metrics]}
for k in num_train_epochs train_batch_size img_size ngf ndf n_blocks num_sample_generations_to_save seed \
         num_workers log_every eval_batch_size; do need_int "$k"; done
need_int nproc positive
if [ "${OPT[nproc]}" -gt 1 ]; then
    command -v mpirun > /dev/null || { echo "train.sh: --nproc ${OPT[nproc]} needs mpirun (Debian: openmpi-bin)" >&2; exit 2; }
    [ "${OPT[num_workers]}" -le 1 ] || { echo "train.sh: --nproc and --num_workers: each rank reads its own ordered" \
        "pipeline, which a ZeroMQ fan-in would reorder; give one of them" >&2; exit 2; }
    [ $((OPT[train_batch_size] % OPT[nproc])) -eq 0 ] || { echo "train.sh: --train_batch_size" \
        "${OPT[train_batch_size]} does not split evenly over --nproc ${OPT[nproc]} ranks" >&2; exit 2; }
fi
need_int checkpoint_every positive # only train.sh uses it: e % 0 would stop the run after an epoch
for k in limit train_size val_size test_size; do [ -z "${OPT[$k]}" ] || need_int "$k"; done
case ${OPT[precision]} in fp32|bf16|fp16|auto) ;; *)
    echo "train.sh: --precision: expected fp32, bf16, fp16 or auto, got '${OPT[precision]}'" >&2; exit 2 ;; esac
if [ -n "${OPT[archive_and_terminate_ec2]}" ] && [ -z "${OPT[s3_bucket_name]}" ]; then
    echo "train.sh: --archive_and_terminate_ec2 needs --s3_bucket_name" >&2; exit 2
fi
data=$(find_utkface "${OPT[data_dir]}") || exit 1 # it said why
OPT[data_dir]=$data # config.txt records the folder used, also when UTKFACE_DIR named it
N=${OPT[num_train_epochs]}
seed=${OPT[seed]}
# utk-split --limit for a split: the smaller of --limit and --SPLIT_size
split_limit() {
    local n=${OPT[limit]} m=${OPT[${1}_size]}
    [ -z "$m" ] || { [ -n "$n" ] && [ "$n" -le "$m" ]; } || n=$m
    [ -z "$n" ] || echo "--limit $n"
}
fidw=${OPT[fid_weights]:-${AGING_FID_WEIGHTS:-}}
[ -z "$fidw" ] || [ -f "$fidw" ] || { echo "train.sh: --fid_weights: no such file $fidw" >&2; exit 1; }
done_epochs=$init_epoch
if [ "$done_epochs" -ge "$N" ]; then
    echo "train.sh: --init_from: ${OPT[init_from]} has trained $done_epochs epochs, as many as --num_train_epochs $N" >&2
    exit 2
fi
if [ -n "${OPT[resume]}" ]; then
    done_epochs=$(cyclegan-step --ckpt "$ck/last.safetensors" --state | sed -n 's/^epoch=\([0-9]*\).*/\1/p')
    if [ "$done_epochs" -gt "$N" ]; then
        echo "train.sh: --resume: the run has trained $done_epochs epochs, more than --num_train_epochs $N" >&2
        exit 2
    fi
elif [ -e "$ck/last.safetensors" ] || [ -s "$met/metrics.jsonl" ] || [ -s "$met/steps.jsonl" ]; then
    if [ -z "${OPT[overwrite]}" ]; then
        echo "train.sh: $OUTPUTS holds a run already; --resume continues it, --overwrite replaces it," >&2
        echo "  --output_dir DIR starts a new one elsewhere" >&2
        exit 1
    fi
fi
step_opts=(--batch "${OPT[train_batch_size]}" --epochs "$N" --lr-g "${OPT[gen_lr]}" --lr-d "${OPT[disc_lr]}"
           --beta1 "${OPT[beta1]}" --beta2 "${OPT[beta2]}" --weight-decay "${OPT[weight_decay]}"
           --lambda-adv "${OPT[lambda_adv_value]}" --lambda-cyc "${OPT[lambda_cyc_value]}"
           --lambda-id "${OPT[lambda_id_value]}" --clip-norm "${OPT[max_grad_norm]}"
           --ngf "${OPT[ngf]}" --ndf "${OPT[ndf]}" --blocks "${OPT[n_blocks]}" --seed "$seed"
           --device "${OPT[device]}" --precision "${OPT[precision]}")
dev=(--device "${OPT[device]}")
size=${OPT[img_size]}

# Each value the tools will parse is checked by the tools themselves, in a dry
# run with the run's options, before the output folder changes: a usage
# error (exit 2) stops here and not an epoch later with the old run deleted.
# aug and utk-split have --check; cyclegan-step and translate are given no
# input, which they refuse (exit 1) only once their options are accepted.
dry_run() {  # command...
    local err rc=0
    err=$("$@" 2>&1 < /dev/null > /dev/null) || rc=$?
    [ "$rc" -ne 2 ] && return 0
    echo "train.sh: the options do not suit $1 (nothing was changed in $OUTPUTS):" >&2
    echo "$err" | grep -v "^Try '" | sed 's/^/  /' >&2
    exit 2
}
stage="checking the options"
dry=$(mktemp -d "${TMPDIR:-/tmp}/aging-train-check.XXXXXX")
trap 'rm -rf "$dry"' EXIT
w=${OPT[num_workers]}
dry_run utk-split "$data" --split train --epochs "$N" --start-epoch 1 --stop-epoch "$N" --seed "$seed" \
    $(split_limit train) --check
for k in val test; do dry_run utk-split "$data" --split $k --seed "$seed" $(split_limit $k) --check; done
dry_run utk-split "$data" --split val --seed "$seed" --limit "${OPT[num_sample_generations_to_save]}" --check
dry_run aug --train --size "$size" --seed "$seed" --check
[ "$w" -le 1 ] || dry_run aug --train --size "$size" --seed $((10#$seed + 7919 * (w - 1))) --shard "$((w - 1))/$w" \
    --producers "$w" --check
for k in "${OPT[train_batch_size]}" "${OPT[eval_batch_size]}"; do
    dry_run cyclegan-step "${step_opts[@]}" --batch "$k" --ckpt-out "$dry/x.safetensors" --json --metrics "$dry/m" \
        --log-every "${OPT[log_every]}"
done
dry_run translate --y2o --size "$size" --grid "${OPT[num_sample_generations_to_save]}" "${dev[@]}" -o "$dry/g.png"
rm -rf "$dry"
trap - EXIT

# Everything is checked: from here on the output folder changes.
mkdir -p "$ck" "$met" "$img" "$logs"
log() { echo "train.sh: $*" | tee -a "$logs/train.log" >&2; }
run_id=${RUN_ID:-$(date -u +%Y%m%d-%H%M%S)}
if [ -n "${OPT[resume]}" ]; then
    [ -f "$OUTPUTS/run_id" ] && run_id=$(cat "$OUTPUTS/run_id")
elif [ -n "${OPT[overwrite]}" ]; then
    rm -f "$ck"/last.safetensors "$ck"/best.safetensors "$ck"/epoch_*.safetensors "$met"/metrics.jsonl \
        "$met"/steps.jsonl "$met"/best.json "$met"/test_metrics.json "$met"/*.stats "$met"/curves.png \
        "$img"/epoch*.png "$logs"/train.log
fi
echo "$run_id" > "$OUTPUTS/run_id"
write_config "resume overwrite config skip_estimate $NOT_SAVED" > "$OUTPUTS/config.txt"
log "run $run_id: $N epochs on $data, outputs in $OUTPUTS (configuration in $OUTPUTS/config.txt)"
tb=$logs/run-$run_id # TensorBoard: one folder per run, so two runs' curves never mix
[ -z "${OPT[wandb_project]}" ] || log "--wandb_project ${OPT[wandb_project]}: no W&B client here; upload the TensorBoard" \
    "events with: wandb sync --sync-tensorboard -p ${OPT[wandb_project]} $tb"
if [ -n "$fidw" ]; then
    log "best checkpoint chosen by the lowest validation FID (real old faces vs G(young)); FID weights: $fidw"
else
    log "best checkpoint chosen by the lowest validation generator loss: no FID weights given (--fid_weights;"
    log "  convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with 'ckpt import', see docs/fid.md)"
fi

s3_sync() {
    [ -n "${OPT[archive_and_terminate_ec2]}" ] || return 0
    if aws s3 sync "$OUTPUTS" "s3://${OPT[s3_bucket_name]}/outputs/run-$run_id" --only-show-errors; then
        log "synced outputs to s3://${OPT[s3_bucket_name]}/outputs/run-$run_id"
    else
        local rc=$?
        log "WARNING: aws s3 sync failed (exit $rc); the outputs stay in $OUTPUTS"
        return "$rc"
    fi
}

# The epoch's training stream, with N aug workers over ZeroMQ when asked.
train_epoch() {
    local e=$1 w=${OPT[num_workers]} resume=()
    if [ -f "$ck/last.safetensors" ]; then
        resume=(--ckpt "$ck/last.safetensors")
    elif [ -n "${GIVEN[init_from]:-}" ]; then
        resume=(--ckpt "${OPT[init_from]}")
    fi
    # say "resuming from" only where a stopped run really resumes, not at each new epoch
    [ -n "${OPT[resume]}" ] && [ "$e" -eq "$start" ] || resume+=(-q)
    local split=(utk-split "$data" --split train --epochs "$N" --start-epoch "$e" --stop-epoch "$e"
                 --seed "$seed" -q $(split_limit train))
    local step=(cyclegan-step "${step_opts[@]}" "${resume[@]}" --ckpt-out "$ck/last.safetensors"
                --json --metrics "$met/steps.jsonl" --log-every "${OPT[log_every]}" --tensorboard "$tb")
    if [ "${OPT[nproc]}" -gt 1 ]; then
        # every rank runs the same pipeline (same seed: the same augmented
        # images) and trains on its share of each batch, so the epoch is the
        # same whatever the rank count; rank 0 alone writes the outputs
        local pipe
        pipe="$(printf '%q ' "${split[@]}") | aug --train --size $(printf '%q' "$size") --seed $(printf '%q' "$seed")"
        pipe+=" | $(printf '%q ' "${step[@]}")"
        # shellcheck disable=SC2086 # MPIRUN_ARGS: options, split on purpose
        mpirun ${MPIRUN_ARGS:-} -np "${OPT[nproc]}" bash -o pipefail -c "$pipe"
    elif [ "$w" -le 1 ]; then
        "${split[@]}" | aug --train --size "$size" --seed "$seed" | "${step[@]}"
    else
        local ep="ipc://$(mktemp -u /tmp/aging-train.XXXXXX)" pids=() k rc=0
        "${step[@]}" --in "@$ep" --producers "$w" &
        local trainer=$!
        for ((k = 0; k < w; k++)); do
            "${split[@]}" | aug --train --size "$size" --seed $((10#$seed + 7919 * k)) --shard "$k/$w" \
                --out "$ep" --producers "$w" &
            pids+=($!)
        done
        for k in "${pids[@]}"; do wait "$k" || rc=$?; done
        wait "$trainer" || rc=$?
        return $rc
    fi
}

evaluate() {  # ckpt split phase -> one JSON line on stdout
    utk-split "$data" --split "$2" --seed "$seed" -q $(split_limit "$2") | aug --eval --size "$size" \
        | cyclegan-step --eval --ckpt "$1" --batch "${OPT[eval_batch_size]}" --phase "$3" --json \
          --tensorboard "$tb" "${dev[@]}"
}

start=$((done_epochs + 1))
[ -z "${OPT[resume]}" ] || log "resuming after epoch $done_epochs of $N"
[ -z "${GIVEN[init_from]:-}" ] || log "starting from the nets of ${OPT[init_from]} after its epoch $init_epoch of $N," \
    "$init_adam"

# After an epoch: validation, sample grid, best/periodic checkpoints, curves.
post_epoch() {
    local e=$1 secs=$2 val score best fid=null
    stage="epoch $e: validation"
    val=$(evaluate "$ck/last.safetensors" val val)
    score=$(echo "$val" | sed -n 's/.*"loss_gen_total": \([^,}]*\).*/\1/p')
    local criterion="val loss_gen_total"
    if [ -n "$fidw" ]; then
        stage="epoch $e: validation FID"
        fid=$(fid_of "$ck/last.safetensors" val "$met/val_old.stats")
        [ -n "$fid" ] || { log "FID failed"; return 1; }
        score=$fid criterion="val FID"
    fi
    stage="epoch $e: sample grid $img/epoch$e.png"
    echo "$val" | sed "s/^{/{\"epoch_seconds\": $secs, \"fid\": $fid, /" >> "$met/metrics.jsonl"
    utk-split "$data" --split val --seed "$seed" --limit "${OPT[num_sample_generations_to_save]}" -q \
        | aug --eval --size "$size" \
        | translate --y2o --ckpt "$ck/last.safetensors" --grid "${OPT[num_sample_generations_to_save]}" \
          "${dev[@]}" -o "$img/epoch$e.png"
    stage="epoch $e: best and periodic checkpoints"
    # TensorBoard gets what the reference logged to W&B: the grid and the val FID
    local gstep tbv=(--image "val/samples=$img/epoch$e.png")
    gstep=$(cyclegan-step --ckpt "$ck/last.safetensors" --state | sed -n 's/.* step=\([0-9]*\).*/\1/p')
    [ "$fid" = null ] || tbv+=(--scalar "val/fid_val=$fid")
    tb-log "$tb" --step "$gstep" "${tbv[@]}"
    best=$(sed -n 's/.*"score": \([^,}]*\).*/\1/p' "$met/best.json" 2>/dev/null || true)
    if [ -z "$best" ] || awk -v a="$score" -v b="$best" 'BEGIN{exit !(a < b)}'; then
        cp "$ck/last.safetensors" "$ck/best.safetensors.tmp" && mv "$ck/best.safetensors.tmp" "$ck/best.safetensors"
        echo "{\"epoch\": $e, \"score\": $score, \"criterion\": \"$criterion\"}" > "$met/best.json"
        log "epoch $e: $criterion $score, new best"
        s3_sync || true # warned; the final sync sends it again
    else
        log "epoch $e: $criterion $score (best $best)"
    fi
    if (( e % OPT[checkpoint_every] == 0 )); then
        cp "$ck/last.safetensors" "$ck/epoch_$(printf %04d "$e").safetensors.tmp"
        mv "$ck/epoch_$(printf %04d "$e").safetensors.tmp" "$ck/epoch_$(printf %04d "$e").safetensors"
        s3_sync || true
    fi
    bash "$ROOT/pipelines/plot.sh" "$met" || log "WARNING: could not draw $met/curves.png"
}

# What the run will cost on this machine, said before it starts: a few steps
# of this very configuration, timed on a throwaway copy (the first step,
# warm-up, not counted), scaled to the epochs left.  Validation, sample
# grids and the test evaluation come on top.
estimate_cost() {
    local b=${OPT[train_batch_size]} tmpd recs secs pairs steps left total
    tmpd=$(mktemp -d)
    recs=$(utk-split "$data" --split train --epochs 1 --seed "$seed" -q --limit $((3 * b)) \
        | aug --train --size "$size" --seed "$seed" \
        | cyclegan-step "${step_opts[@]}" --max-steps 3 --ckpt-out "$tmpd/c.safetensors" --json --log-every 1 \
          2> "$tmpd/err") || true
    rm -rf "$tmpd"
    # throughput is images (2 per pair) a second over the step
    secs=$(echo "$recs" | awk -v b="$b" '/"phase": "step"/ && !/"step": 1,/ && match($0, /"throughput": [0-9.eE+-]+/) {
        t += 2 * b / substr($0, RSTART + 14, RLENGTH - 14); n++ } END { if (n) printf "%.3f", t / n }')
    if [ -z "$secs" ]; then
        log "cost estimate: could not time a step; starting anyway"
        return 0
    fi
    pairs=$(utk-split "$data" --split train --seed "$seed" -q --list $(split_limit train) | awk '$3 == "young"' | wc -l)
    steps=$(( (pairs + b - 1) / b )) left=$((N - start + 1))
    total=$(awk -v s="$secs" -v n="$steps" -v e="$left" 'BEGIN { printf "%d", s * n * e }')
    log "cost estimate on this machine as loaded now (--device ${OPT[device]}, ${size} px, --precision ${OPT[precision]}):" \
        "$secs s a step (2 timed steps after a warm-up one), $steps steps an epoch: about $(human_secs $((total / left))) an epoch," \
        "$(human_secs "$total") for the $left epoch(s) to go, plus validation"
    if [ "$total" -gt 7200 ] && [ "$size" -gt 128 ]; then
        log "  a long run: on a CPU, --img_size 128 costs about 4 times less (and --precision bf16 less again" \
            "where the CPU has bf16 units); see the README's CPU recipe.  --skip_estimate skips this timing"
    fi
}

human_secs() {  # seconds -> "42 s", "17 min", "3.5 h", "2.1 days"
    awk -v s="$1" 'BEGIN { if (s < 120) printf "%d s", s; else if (s < 7200) printf "%d min", s / 60;
                           else if (s < 172800) printf "%.1f h", s / 3600; else printf "%.1f days", s / 86400 }'
}

if [ -z "${OPT[skip_estimate]}" ] && [ "$start" -le "$N" ]; then
    stage="cost estimate"
    estimate_cost
fi

# A run stopped between an epoch's training and its validation finishes that first.
if [ -n "${OPT[resume]}" ] && [ "$done_epochs" -gt 0 ] \
    && ! grep -q "\"epoch\": $done_epochs," "$met/metrics.jsonl" 2>/dev/null; then
    post_epoch "$done_epochs" 0
fi
for ((e = start; e <= N; e++)); do
    t0=$(date +%s)
    stage="epoch $e/$N: training"
    train_epoch "$e"
    post_epoch "$e" $(( $(date +%s) - t0 ))
done

if [ -n "${OPT[skip_test]}" ]; then
    log "--skip_test: no test evaluation"
else
    stage="test evaluation of $ck/best.safetensors"
    test=$(evaluate "$ck/best.safetensors" test test)
    fid_test=null
    [ -n "$fidw" ] && fid_test=$(fid_of "$ck/best.safetensors" test "$met/test_old.stats")
    best_epoch=$(sed -n 's/.*"epoch": \([0-9]*\).*/\1/p' "$met/best.json")
    echo "$test" | sed "s/^{/{\"fid_val\": ${fid_test:-null}, \"best_epoch\": $best_epoch, /" \
        | with_reference_keys test > "$met/test_metrics.json.tmp" && mv "$met/test_metrics.json.tmp" "$met/test_metrics.json"
    log "test metrics of best: $met/test_metrics.json"
fi
if [ -n "${OPT[archive_and_terminate_ec2]}" ]; then
    # The instance holds the only copy of what did not reach S3: terminate
    # only after a sync that succeeded, as the reference stops on its error.
    if ! s3_sync; then
        log "ERROR: the final S3 sync failed; the instance is left running with the outputs in $OUTPUTS"
        exit 1
    fi
    bash "$ROOT/pipelines/ec2-terminate.sh" || log "WARNING: could not terminate the instance"
fi
log "done: checkpoints in $ck, sample grids in $img, metrics in $met"
