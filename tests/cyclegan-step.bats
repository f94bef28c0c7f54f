#!/usr/bin/env bats
# cyclegan-step: parity with the reference training loop, resume after
# SIGKILL/SIGTERM, learning, evaluation, bad input.  Small models (ngf=ndf=8,
# 2 residual blocks, 32 px) keep it quick.

load helpers

SMALL=(--ngf 8 --ndf 8 --blocks 2 --batch 2)

setup() { common_setup; FACES=$(faces_dir); }
teardown() { common_teardown; }

# Train stream of fixture faces: 5 steps per epoch at batch 2.
stream() {  # epochs [first]
    utk-split --split train --epochs "$1" --start-epoch "${2:-1}" -q "$FACES" | aug --train --size 32 --seed 3
}

@test "cyclegan-step: --help exits 0; bad options exit 2" {
    run cyclegan-step --help
    assert_success
    assert_output --partial "usage: cyclegan-step"
    run cyclegan-step --batch 0
    assert_failure 2
    run cyclegan-step --eval
    assert_failure 2
    assert_output --partial "--eval needs --ckpt"
    run cyclegan-step --precision fp8
    assert_failure 2
    assert_output --partial "expected fp32, bf16, fp16 or auto"
    run cyclegan-step --loss-scale -1
    assert_failure 2
    run cyclegan-step --device cuda:x
    assert_failure 2
    run cyclegan-step --lr-g x
    assert_failure 2
}

@test "cyclegan-step: two steps equal the PyTorch reference training loop" {
    has_torch || skip "no torch"
    "$PY" "$TESTS_DIR/py/ref_trainer.py" batches "$TMP/b.msgpack" 2
    cyclegan-step --seed 1234 "${SMALL[@]}" --log-every 1 --json --metrics "$TMP/m.jsonl" \
        --ckpt-out "$TMP/o.safetensors" < "$TMP/b.msgpack"
    run "$PY" "$TESTS_DIR/py/ref_trainer.py" compare "$TMP/o.safetensors" "$TMP/m.jsonl" 2
    echo "# $output" >&3
    assert_success
}

@test "cyclegan-step: metrics records, epoch summaries and the LR schedule" {
    stream 4 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 5 --json > "$TMP/m.jsonl"
    # 10 young + 10 old training faces: 5 steps of 2 per epoch; every 5th step and the first
    [ "$(grep -c '"phase": "step"' "$TMP/m.jsonl")" -eq 5 ]
    grep -q '"phase": "step", "epoch": 1, "step": 1,' "$TMP/m.jsonl"
    [ "$(grep -c '"phase": "train"' "$TMP/m.jsonl")" -eq 4 ]
    "$PY" - "$TMP/m.jsonl" <<'PY'
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
keys = ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "loss_cyc", "loss_id", "loss_gen_total", "lr")
for r in recs:
    assert all(math.isfinite(r[k]) for k in keys), r
# LambdaLR over 4 epochs: factor 1, 1, then (4-2)/2 = 1, (4-3)/2 = 0.5
lrs = {r["epoch"]: r["lr"] for r in recs if r["phase"] == "train"}
assert lrs == {1: 2e-4, 2: 2e-4, 3: 2e-4, 4: 1e-4}, lrs
assert all("throughput" in r for r in recs if r["phase"] == "step")
PY
    run cyclegan-step --ckpt "$TMP/c.safetensors" --state
    assert_output "epoch=4 step=20 epoch_step=0"
}

@test "cyclegan-step: a run killed with SIGKILL resumes to the same parameters" {
    stream 3 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/full.safetensors" --log-every 0 > /dev/null
    stream 3 > "$TMP/s3"
    # feed 60% of the stream, then stall, so the kill lands mid-epoch
    mkfifo "$TMP/feed"
    ( head -c $(( $(stat -c %s "$TMP/s3") * 6 / 10 )) "$TMP/s3"; exec sleep 60 ) > "$TMP/feed" &
    feeder=$!
    cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/run.safetensors" --save-every 2 --log-every 1 --json \
        < "$TMP/feed" > "$TMP/m" &
    pid=$!
    for _ in $(seq 600); do [ "$(grep -c '"step"' "$TMP/m" 2>/dev/null)" -ge 8 ] && break; sleep 0.1; done
    sleep 1
    kill -9 $pid $feeder
    wait $pid $feeder || true
    state=$(cyclegan-step --ckpt "$TMP/run.safetensors" --state)
    echo "# killed at: $state" >&3
    [[ $state =~ step=([0-9]+)\ epoch_step=([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 8 ] && [ "${BASH_REMATCH[1]}" -lt 15 ] && [ "${BASH_REMATCH[2]}" -gt 0 ]
    # the resumed run may be fed the whole stream again: done batches are skipped
    cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/run.safetensors" --resume --log-every 0 < "$TMP/s3" > /dev/null
    same_tensors "$TMP/full.safetensors" "$TMP/run.safetensors"
}

@test "cyclegan-step: SIGTERM finishes the step, saves, and --resume continues exactly" {
    stream 2 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/full.safetensors" --log-every 0 > /dev/null
    stream 2 > "$TMP/s2"
    cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/run.safetensors" --log-every 1 --json < "$TMP/s2" > "$TMP/m" 2> "$TMP/err" &
    pid=$!
    for _ in $(seq 600); do [ "$(grep -c step "$TMP/m" 2>/dev/null)" -ge 3 ] && break; sleep 0.1; done
    kill -TERM $pid
    rc=0
    wait $pid || rc=$?
    [ "$rc" -eq 143 ]
    grep -q "stopped by signal 15" "$TMP/err"
    state=$(cyclegan-step --ckpt "$TMP/run.safetensors" --state)
    echo "# stopped at: $state" >&3
    e=$(( $(echo "$state" | sed 's/epoch=\([0-9]*\).*/\1/') + 1 ))
    stream 2 $e | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/run.safetensors" --resume --log-every 0 > /dev/null
    same_tensors "$TMP/full.safetensors" "$TMP/run.safetensors"
}

@test "cyclegan-step: learning happens (the cycle loss falls on a tiny fixed set)" {
    # 2 young + 2 old faces, 150 steps (one per epoch), the reference's lambdas: the loss falls
    # to ~0.64 of its start by 150 (0.56 by 300), so 150 keep a margin over the 0.75 asked
    utk-split --split train --limit 2 -q --epochs 150 "$FACES" | aug --eval --size 32 \
        | cyclegan-step --ngf 8 --ndf 8 --blocks 1 --batch 2 --lr-g 0.001 --lr-d 0.0005 \
          --ckpt-out "$TMP/c.safetensors" --json --log-every 1000 > "$TMP/m.jsonl"
    "$PY" - "$TMP/m.jsonl" <<'PY'
import json, sys
cyc = [json.loads(l)["loss_cyc"] for l in open(sys.argv[1]) if '"phase": "train"' in l]
first, last = sum(cyc[:10]) / 10, sum(cyc[-10:]) / 10
print("# cycle loss over %d epochs: %.3f -> %.3f" % (len(cyc), first, last))
assert last < 0.75 * first, (first, last)
PY
}

@test "cyclegan-step: --eval measures losses without changing the checkpoint" {
    stream 1 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 0 > /dev/null
    cp "$TMP/c.safetensors" "$TMP/before"
    utk-split --split all -q "$FACES" | aug --eval --size 32 \
        | cyclegan-step --eval --ckpt "$TMP/c.safetensors" --batch 4 --phase test --json > "$TMP/e"
    run cat "$TMP/e"
    assert_output --partial '"phase": "test"'
    assert_output --partial '"pairs": 13, "images": 26'
    cmp "$TMP/before" "$TMP/c.safetensors"
}

@test "cyclegan-step: --eval of G and F alone: the L1 losses as with all four nets, the rest null" {
    stream 1 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 0 > /dev/null
    ckpt extract --net G,F "$TMP/c.safetensors" "$TMP/gf.safetensors" > /dev/null
    utk-split --split all -q "$FACES" | aug --eval --size 32 > "$TMP/all"
    cyclegan-step --eval --ckpt "$TMP/c.safetensors" --batch 4 --json < "$TMP/all" > "$TMP/four"
    run cyclegan-step --eval --ckpt "$TMP/gf.safetensors" --batch 4 --json < "$TMP/all"
    assert_success
    assert_output --partial "has no discriminators (G and F only): the discriminator and adversarial losses are absent (null)"
    grep '^{' <<< "$output" > "$TMP/two"
    "$PY" - "$TMP/four" "$TMP/two" <<'PY'
import json, sys
four, two = (json.load(open(p)) for p in sys.argv[1:])
for k in ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "mse_f_adv", "mse_g_adv", "loss_gen_total"):
    assert two[k] is None and four[k] is not None, k
for k in ("loss_cyc", "loss_id", "l1_cyc", "l1_id"):
    assert two[k] == four[k], (k, two[k], four[k])
assert two["pairs"] == 13 and two["images"] == 26 and "lr_d" not in two, two
PY
}

@test "cyclegan-step: bad input exits 1 with a message; the previous checkpoint survives" {
    run bash -c "utk-split --split train -q '$FACES' | aug --eval --size 32 | grep -v xx | head -c 0 | cyclegan-step ${SMALL[*]} --ckpt-out '$TMP/x'"
    assert_failure 1
    assert_output --partial "no training batch"
    # only one domain
    "$PY" "$TESTS_DIR/py/streamtool.py" tensors 6 32 | "$PY" -c '
import msgpack, sys
for r in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    r["domain"] = "young"; sys.stdout.buffer.write(msgpack.packb(r, use_bin_type=True))' > "$TMP/young"
    run cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/x" < "$TMP/young"
    assert_failure 1
    assert_output --partial "6 young and 0 old"
    # a tensor of another size in the same run
    { "$PY" "$TESTS_DIR/py/streamtool.py" tensors 2 32; "$PY" "$TESTS_DIR/py/streamtool.py" tensors 2 48; } > "$TMP/mixed"
    run cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/x" < "$TMP/mixed"
    assert_failure 1
    assert_output --partial "a 48x48 image in a run of 32x32 images"
    # missing and corrupt checkpoints
    stream 1 > "$TMP/s1"
    run cyclegan-step "${SMALL[@]}" --ckpt "$TMP/nope.safetensors" < "$TMP/s1"
    assert_failure 1
    assert_output --partial "nope.safetensors"
    echo garbage > "$TMP/bad.safetensors"
    run cyclegan-step --eval --ckpt "$TMP/bad.safetensors" < "$TMP/s1"
    assert_failure 1
    assert_output --partial "bad.safetensors"
    # a full disk while saving: the old checkpoint is intact
    stream 1 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 0 > /dev/null
    cp "$TMP/c.safetensors" "$TMP/before"
    run bash -c "trap '' XFSZ; ulimit -f 64; utk-split --split train -q --epochs 2 --start-epoch 2 '$FACES' | aug --train --size 32 --seed 3 | cyclegan-step ${SMALL[*]} --ckpt-out '$TMP/c.safetensors' --resume --log-every 0"
    assert_failure 1
    assert_output --partial "the previous checkpoint is intact"
    cmp "$TMP/before" "$TMP/c.safetensors"
    [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]
}

@test "cyclegan-step: --tensorboard writes event files TensorBoard can read" {
    stream 1 | cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 1 --json \
        --tensorboard "$TMP/tb" > "$TMP/m.jsonl"
    "$PY" "$TESTS_DIR/py/tfevents_read.py" "$TMP/tb" > "$TMP/tb.json"
    "$PY" - "$TMP/tb.json" "$TMP/m.jsonl" <<'PY'
import json, struct, sys
tb = json.load(open(sys.argv[1]))
assert tb["version"] == "brain.Event:2", tb["version"]
steps = [json.loads(l) for l in open(sys.argv[2]) if '"phase": "step"' in l]
got = dict((s, v) for s, v in tb["scalars"]["step/loss_gen_total"])
for r in steps:
    f32 = struct.unpack("<f", struct.pack("<f", r["loss_gen_total"]))[0]
    assert got[r["step"]] == f32, (r["step"], got.get(r["step"]), f32)
assert "train/loss_DX" in tb["scalars"] and "step/lr" in tb["scalars"], sorted(tb["scalars"])
PY
}

@test "cyclegan-step: bf16 and fp16 (emulated on the CPU) train; fp16 loss scaling skips overflowing updates" {
    for p in bf16 fp16; do
        stream 1 | cyclegan-step "${SMALL[@]}" --device cpu --precision $p --ckpt-out "$TMP/$p.safetensors" \
            --log-every 1 --json > "$TMP/$p.jsonl"
    done
    # an absurd initial scale overflows fp16 at once: every update of both steps is skipped and the
    # scale halves once per step; nothing moves, so the nets stay at their initialisation
    stream 1 | cyclegan-step "${SMALL[@]}" --device cpu --precision fp16 --loss-scale 1e30 \
        --max-steps 2 --ckpt-out "$TMP/big.safetensors" --log-every 1 --json > "$TMP/big.jsonl"
    stream 1 | cyclegan-step "${SMALL[@]}" --device cpu --precision fp16 --loss-scale 0 --max-steps 2 \
        --lr-g 0 --lr-d 0 --weight-decay 0 --ckpt-out "$TMP/lr0.safetensors" --log-every 0 > /dev/null
    "$PY" - "$TMP" <<'PY'
import json, math, sys
d = sys.argv[1]
rd = lambda f: [json.loads(l) for l in open(f"{d}/{f}")]
bf, fp = rd("bf16.jsonl"), rd("fp16.jsonl")
for recs in (bf, fp):
    assert len(recs) >= 5 and all(math.isfinite(r["loss_gen_total"]) for r in recs), recs
assert "loss_scale" not in bf[0] and fp[0]["loss_scale"] <= 65536, fp[0]
big = [r for r in rd("big.jsonl") if r["phase"] == "step"]
assert [r["skipped_updates"] for r in big] == [3, 6], big
assert [r["loss_scale"] for r in big] == [5e29, 2.5e29] or \
    all(abs(r["loss_scale"] / e - 1) < 1e-6 for r, e in zip(big, (5e29, 2.5e29))), big
PY
    # the skipped run's nets equal a run that stepped with lr 0 (same BN statistics, same weights)
    for net in G F DX DY; do
        ckpt extract --net $net "$TMP/big.safetensors" "$TMP/big-$net.safetensors"
        ckpt extract --net $net "$TMP/lr0.safetensors" "$TMP/lr0-$net.safetensors"
        run ckpt diff "$TMP/lr0-$net.safetensors" "$TMP/big-$net.safetensors"
        assert_success
    done
    # the scaler state is saved and restored
    run ckpt info "$TMP/big.safetensors"
    assert_output --partial "scaler"
}

@test "cyclegan-step: a live progress line on a terminal (epoch, step/steps, img/s, losses, ETA); none in a pipe" {
    utk-split --split train --epochs 2 -q "$FACES" | aug --eval --size 32 > "$TMP/s"
    AGING_PROGRESS=1 cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/c.safetensors" --log-every 0 < "$TMP/s" \
        > /dev/null 2> "$TMP/err"
    tr '\r' '\n' < "$TMP/err" > "$TMP/lines"
    cat "$TMP/lines" | tail -3 >&3
    # 10 pairs a domain, batch 2: 5 steps an epoch, shown every step (not every --log-every)
    grep -q "cyclegan-step: epoch 1/2 step 1/5 .* img/s  gen [0-9.]* DX [0-9.]* DY [0-9.]*" "$TMP/lines"
    grep -q "epoch 2/2 step 5/5 .*ETA epoch 0s, run 0s" "$TMP/lines"
    utk-split --split val -q "$FACES" | aug --eval --size 32 \
        | AGING_PROGRESS=1 cyclegan-step --eval --ckpt "$TMP/c.safetensors" --batch 1 > /dev/null 2> "$TMP/err"
    tr '\r' '\n' < "$TMP/err" | grep -q "evaluating val: 1/1 pairs"
    # not a terminal: nothing but what there was before
    cyclegan-step "${SMALL[@]}" --ckpt-out "$TMP/d.safetensors" --log-every 0 < "$TMP/s" > /dev/null 2> "$TMP/err2"
    ! grep -q $'\r' "$TMP/err2"
}
