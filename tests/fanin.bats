#!/usr/bin/env bats
# ZeroMQ fan-in: several `aug --shard` workers feeding one trainer train
# every batch of every epoch whatever order their records arrive in, or the
# trainer stops with an error; a foreign peer can neither end a stream early
# in silence nor make a reader allocate without bound.

load helpers

SMALL=(--ngf 8 --ndf 8 --blocks 2 --batch 2)

setup() {
    common_setup
    FACES=$(faces_dir) # 10 train pairs: 5 steps an epoch at batch 2
    EP="ipc://$(mktemp -u /tmp/aging-fanin.XXXXXX)"
    export AGING_STREAM_TIMEOUT=20
}
teardown() {
    rm -f "${EP#ipc://}"
    common_teardown
}

# worker K [STOP_EPOCH [SIZE]]: shard K of 2 of a 3-epoch train stream, to the trainer
worker() {
    utk-split --split train --epochs 3 --stop-epoch "${2:-3}" -q "$FACES" |
        aug --train --size "${3:-32}" --seed $((1 + $1)) --shard "$1/2" --out "$EP" --producers 2
}

# trainer [options]: in the background, its pid in TRAINER
trainer() {
    cyclegan-step "${SMALL[@]}" --in "@$EP" --producers 2 --ckpt-out "$TMP/ck.safetensors" --json \
        --log-every 1 "$@" > "$TMP/m.jsonl" 2> "$TMP/err" &
    TRAINER=$!
}

# Wait until the consumer has bound $EP (the raw peer below does not retry as ZeroMQ does).
wait_bound() {
    for _ in $(seq 100); do [ -S "${EP#ipc://}" ] && return 0; sleep 0.1; done
    return 1
}

# fails_with PID TEXT: the background process exits 1 with TEXT in $TMP/err.
fails_with() {
    local rc=0
    wait "$1" || rc=$?
    cat "$TMP/err"
    [ "$rc" -eq 1 ] && grep -qF -- "$2" "$TMP/err"
}

# The steps and epoch summaries the trainer logged and its checkpoint's state.
steps_done() {
    echo "$(grep -c '"phase": "step"' "$TMP/m.jsonl") $(grep -c '"phase": "train"' "$TMP/m.jsonl")" \
        "$(cyclegan-step --ckpt "$TMP/ck.safetensors" --state)"
}

@test "fan-in: two shard workers over 3 epochs train every step of every epoch" {
    trainer
    worker 0 &
    w0=$!
    worker 1
    wait $w0
    wait $TRAINER
    run steps_done
    assert_output "15 3 epoch=3 step=15 epoch_step=0"
}

@test "fan-in: a worker epochs ahead of the other: the same steps, batched by epoch" {
    trainer
    worker 0 # all its 3 epochs are in before the other worker starts
    worker 1
    wait $TRAINER
    run steps_done
    assert_output "15 3 epoch=3 step=15 epoch_step=0"
    # each epoch's batches were its own: the epoch summaries follow the step records in order
    "$PY" - "$TMP/m.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["epoch"] for r in recs if r["phase"] == "step"] == [1] * 5 + [2] * 5 + [3] * 5, recs
PY
}

@test "fan-in: a worker that stops an epoch early is an error naming the epoch, never exit 0" {
    trainer
    worker 0 &
    w0=$!
    worker 1 2 # epochs 1 and 2 only
    wait $w0
    fails_with $TRAINER "epoch 3: its epoch record announced 10 pairs, the stream held 10 young and 0 old images"
    [ "$(grep -c '"phase": "train"' "$TMP/m.jsonl")" -eq 2 ]
}

@test "fan-in: a worker far ahead beyond --queue-mb is a clear error" {
    trainer --queue-mb 1
    AGING_STREAM_TIMEOUT=3 worker 0 3 128 2> /dev/null || true # 128 px: 192 KiB an image
    fails_with $TRAINER "over 1 MiB of images queued: one producer is far ahead of another"
}

@test "fan-in: untagged records of several epochs in a fan-in are refused" {
    utk-split --split train --epochs 2 -q "$FACES" | aug --train --size 32 |
        "$PY" -c '
import sys, msgpack
pk = msgpack.Packer(use_bin_type=True)
for r in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    if r["kind"] == "tensor":
        del r["epoch"]
    sys.stdout.buffer.write(pk.pack(r))' > "$TMP/untagged"
    # an ordered stream (one producer) is still batched by its epoch records
    cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/ck.safetensors" --log-every 0 < "$TMP/untagged" > /dev/null
    run cyclegan-step --ckpt "$TMP/ck.safetensors" --state
    assert_output "epoch=2 step=10 epoch_step=0"
    run cyclegan-step "${SMALL[@]}" --producers 2 --ckpt-out "$TMP/ck2.safetensors" < "$TMP/untagged"
    assert_failure 1
    assert_output --partial "a tensor without its 'epoch' in a fan-in of 2 producers"
}

@test "cyclegan-step: val and test images in a training stream are refused; --eval pools every split" {
    utk-split --split train --epochs 1 -q "$FACES" | aug --train --size 32 |
        cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/ck.safetensors" --log-every 0 > /dev/null
    utk-split --split all -q "$FACES" | aug --eval --size 32 > "$TMP/all"
    run cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/ck2.safetensors" < "$TMP/all"
    assert_failure 1
    assert_output --partial "a tensor after a \`split\` record: only train images train"
    run cyclegan-step --eval --ckpt "$TMP/ck.safetensors" --batch 4 --json < "$TMP/all"
    assert_success
    assert_output --partial '"pairs": 13, "images": 26'
}

@test "fan-in: a foreign 'end' record neither ends the stream nor hides lost records" {
    utk-split --split all -q "$FACES" > "$TMP/img"
    n=$(summary < "$TMP/img" | wc -l)
    # a peer that sent nothing says 'end' first: not counted, every record still comes
    aug --eval --size 16 --in "@$EP" > "$TMP/out" 2> "$TMP/err" &
    cons=$!
    wait_bound
    "$PY" "$TESTS_DIR/py/zmtp_push.py" "$EP" end
    aug --eval --size 16 --dtype u8 --out "$EP" < "$TMP/img"
    wait $cons
    [ "$(summary < "$TMP/out" | wc -l)" -eq "$n" ]
    # an end claiming records that never came: an error, not a short stream
    rm -f "${EP#ipc://}"
    aug --eval --size 16 --in "@$EP" > "$TMP/out" 2> "$TMP/err" &
    cons=$!
    wait_bound
    "$PY" "$TESTS_DIR/py/zmtp_push.py" "$EP" end 5
    fails_with $cons "the end records of 1 producers announce 5 records, 0 came"
}

@test "fan-in: a message over the size bound is refused before it is allocated" {
    AGING_STREAM_TIMEOUT=3 aug --eval --size 16 --in "@$EP" > "$TMP/out" 2> "$TMP/err" &
    cons=$!
    wait_bound
    sent=$("$PY" "$TESTS_DIR/py/zmtp_push.py" "$EP" big 200)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$cons/status)
    rc=0
    wait $cons || rc=$?
    echo "# a 200 MB message: $sent bytes taken before the reader cut the peer; reader peak $hwm kB" >&3
    [ "$rc" -eq 1 ] && [ "$sent" -lt 50000000 ] && [ "$hwm" -lt 100000 ]
    # a producer is told its record is over the bound, and how to raise it
    utk-split --split val -q "$FACES" > "$TMP/img"
    export AGING_STREAM_MAX_MB=1 AGING_STREAM_TIMEOUT=3
    aug --eval --size 16 --in "@$EP" > "$TMP/out" 2> /dev/null &
    cons=$!
    run aug --eval --size 1024 --out "$EP" < "$TMP/img"
    wait $cons || true
    assert_failure 1
    assert_output --partial "over the ZeroMQ message limit of 1 MiB (AGING_STREAM_MAX_MB raises it"
}
