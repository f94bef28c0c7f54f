#!/usr/bin/env bats
# Data-parallel training (mpirun -np N cyclegan-step, lib/dist/dist.c): parity
# with a PyTorch simulation of DDP, 1 rank bit for bit the plain trainer,
# resume over another rank count, a killed rank or differing streams end
# the job.  Skipped where mpirun or an MPI build is missing.  Small models
# (ngf=ndf=8, 2 blocks, 32 px) on a loaded 2-core machine: --oversubscribe.

load helpers

SMALL=(--seed 1234 --ngf 8 --ndf 8 --blocks 2 --batch 4)

setup() {
    common_setup
    command -v mpirun > /dev/null || skip "no mpirun (openmpi-bin)"
    ldd "$(command -v cyclegan-step)" | grep -q libmpi || skip "cyclegan-step built without MPI"
    # root in a container: OpenMPI refuses it unless told; 2 cores: oversubscribe
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
    MPIRUN=(mpirun --oversubscribe --bind-to none)
    # under make asan: OpenMPI's own never-freed allocations are not the trainer's;
    # its libraries keep no frame pointers, so only the slow unwinder sees them
    if [ -n "${AGING_SANITIZED:-}" ]; then
        export LSAN_OPTIONS="suppressions=$TESTS_DIR/lsan-mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
        export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
    fi
}
teardown() { common_teardown; }

batches() {  # steps -> $TMP/b.msgpack
    "$PY" "$TESTS_DIR/py/ref_ddp.py" batches "$TMP/b.msgpack" "$1"
}

@test "dist: 2 ranks for 3 steps equal a PyTorch simulation of DDP (per-rank BatchNorm)" {
    has_torch || skip "no torch"
    batches 3
    "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --log-every 1 --json \
        --metrics "$TMP/m.jsonl" --ckpt-out "$TMP/o.safetensors"
    # rank 0 alone writes: one record per step, plus the epoch's
    [ "$(grep -c '"phase": "step"' "$TMP/m.jsonl")" -eq 3 ]
    run "$PY" "$TESTS_DIR/py/ref_ddp.py" compare "$TMP/o.safetensors" "$TMP/m.jsonl" 3
    echo "# $output" >&3
    assert_success
}

@test "dist: 1 rank under mpirun equals the plain trainer bit for bit" {
    has_torch || skip "no torch"
    batches 3
    cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics /dev/null --ckpt-out "$TMP/a.safetensors"
    "${MPIRUN[@]}" -np 1 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics /dev/null \
        --ckpt-out "$TMP/b.safetensors"
    cmp "$TMP/a.safetensors" "$TMP/b.safetensors"
}

@test "dist: --batch must split over the ranks; --eval and a fan-in refuse several ranks" {
    has_torch || skip "no torch"
    batches 1
    run "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --batch 3 --in "$TMP/b.msgpack"
    assert_failure
    assert_output --partial "--batch 3 does not split evenly over 2 ranks"
    run "${MPIRUN[@]}" -np 2 cyclegan-step --eval --ckpt x --in "$TMP/b.msgpack"
    assert_failure
    assert_output --partial "--eval runs in one process"
    run "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --producers 2 --in "ipc://$TMP/x"
    assert_failure
    assert_output --partial "a fan-in reorders the records"
}

@test "dist: --resume continues a 2-rank run with 1 rank, and a 1-rank run with 2, at the same step" {
    has_torch || skip "no torch"
    batches 4
    "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics /dev/null \
        --ckpt-out "$TMP/c.safetensors" --max-steps 2
    run cyclegan-step --state --ckpt "$TMP/c.safetensors"
    assert_output "epoch=0 step=2 epoch_step=2"
    run cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics "$TMP/m.jsonl" \
        --ckpt-out "$TMP/c.safetensors" --resume
    assert_success
    assert_output --partial "resuming from $TMP/c.safetensors at epoch 1, step 2"
    grep -q '"phase": "train", "epoch": 1, "step": 4,' "$TMP/m.jsonl"
    rm "$TMP/c.safetensors"
    cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics /dev/null \
        --ckpt-out "$TMP/c.safetensors" --max-steps 1
    run "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics "$TMP/m2.jsonl" \
        --ckpt-out "$TMP/c.safetensors" --resume
    assert_success
    assert_output --partial "resuming from $TMP/c.safetensors at epoch 1, step 1"
    grep -q '"phase": "train", "epoch": 1, "step": 4,' "$TMP/m2.jsonl"
    run cyclegan-step --state --ckpt "$TMP/c.safetensors"
    assert_output "epoch=1 step=4 epoch_step=0"
}

@test "dist: ranks whose streams differ stop with a message naming the rank" {
    has_torch || skip "no torch"
    batches 4
    # rank 1 reads an epoch of 2 batches, rank 0 one of 4: rank 1's input ends first
    "$PY" "$TESTS_DIR/py/ref_ddp.py" batches "$TMP/short.msgpack" 2
    run timeout 60 "${MPIRUN[@]}" -np 1 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --ckpt-out "$TMP/c.safetensors" \
        --json --metrics /dev/null : -np 1 cyclegan-step "${SMALL[@]}" --in "$TMP/short.msgpack" \
        --ckpt-out "$TMP/c.safetensors" --json --metrics /dev/null
    echo "$output"
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ]
    assert_output --partial "rank 1's input ended while rank 0 has epoch 1 step 3 to train"
}

@test "dist: a killed rank ends the job on every rank within 10 s, naming it" {
    has_torch || skip "no torch"
    batches 200
    "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics "$TMP/m.jsonl" \
        --log-every 1 --ckpt-out "$TMP/c.safetensors" > "$TMP/out" 2>&1 &
    local job=$! pid="" i
    # wait for training to start, then find rank 1 among mpirun's children
    for ((i = 0; i < 600; i++)); do
        [ -s "$TMP/m.jsonl" ] && break
        sleep 0.1
    done
    [ -s "$TMP/m.jsonl" ]
    for p in $(pgrep -P "$job"); do
        tr '\0' '\n' < "/proc/$p/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && pid=$p
    done
    [ -n "$pid" ]
    local t0=$SECONDS
    kill -9 "$pid"
    local rc=0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    wait "$job" || rc=$?
    echo "# ended in $((SECONDS - t0)) s, exit $rc" >&3
    [ $((SECONDS - t0)) -lt 10 ]
    [ "$rc" -ne 0 ]
    grep "mpirun noticed that process rank 1 .* exited on signal 9" "$TMP/out"
    run pgrep -f "$TMP/c.safetensors"
    assert_failure # no rank left behind
}

@test "dist: train.sh --nproc 2 trains over 2 ranks, each with its own pipeline" {
    local faces
    faces=$(faces_dir)
    export MPIRUN_ARGS="--oversubscribe --bind-to none"
    run env UTKFACE_DIR="$faces" OUTPUTS_DIR="$TMP/out" bash "$TESTS_DIR/../pipelines/train.sh" --num_train_epochs 1 \
        --img_size 32 --ngf 8 --ndf 8 --n_blocks 2 --train_batch_size 2 --num_sample_generations_to_save 4 \
        --log_every 1 --skip_estimate --skip_test --nproc 2
    assert_success
    # 10 pairs at a global batch of 2: 5 steps, whatever the rank count; one record each, rank 0's
    [ "$(cyclegan-step --ckpt "$TMP/out/checkpoints/last.safetensors" --state)" = "epoch=1 step=5 epoch_step=0" ]
    [ "$(grep -c '"phase": "step"' "$TMP/out/metrics/steps.jsonl")" -eq 5 ]
    run bash "$TESTS_DIR/../pipelines/train.sh" --nproc 2 --train_batch_size 3 --num_train_epochs 1
    assert_failure 2
    assert_output --partial "does not split evenly over --nproc 2 ranks"
}

@test "dist: SIGTERM to mpirun stops every rank at the same step, and rank 0 saves it" {
    has_torch || skip "no torch"
    # seen under make asan only: 2 runs in 7 ended without rank 0's line, as if mpirun
    # killed ranks slowed by the sanitizer before they had saved (issue #26's note)
    [ -z "${AGING_SANITIZED:-}" ] || skip "mpirun's stop races the sanitizer's slower exit"
    batches 200
    "${MPIRUN[@]}" -np 2 cyclegan-step "${SMALL[@]}" --in "$TMP/b.msgpack" --json --metrics "$TMP/m.jsonl" \
        --log-every 1 --ckpt-out "$TMP/c.safetensors" > "$TMP/out" 2>&1 &
    local job=$! i
    for ((i = 0; i < 3000; i++)); do
        [ "$(grep -c '"phase": "step"' "$TMP/m.jsonl" 2>/dev/null)" -ge 2 ] && break
        sleep 0.1
    done
    kill -TERM "$job"
    wait "$job" || true
    cat "$TMP/out"
    [ "$(grep -c "stopped by signal 15" "$TMP/out")" -eq 1 ] # rank 0 says it
    local steps
    steps=$(sed -n 's/.*"phase": "step", "epoch": 1, "step": \([0-9]*\),.*/\1/p' "$TMP/m.jsonl" | tail -1)
    run cyclegan-step --state --ckpt "$TMP/c.safetensors"
    assert_output "epoch=0 step=$steps epoch_step=$steps"
}
