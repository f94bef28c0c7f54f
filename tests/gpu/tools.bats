#!/usr/bin/env bats
# tools.bats: the tools on the device under test (AGING_GPU_DEVICE, default
# cuda; "cpu" runs the same checks on the CPU, which is how the file itself
# is tested on machines without a GPU): translate on the device against
# translate on the CPU, short cyclegan-step runs in fp32, bf16 and fp16, and
# pipelines/train.sh end to end.  Self-contained (no bats-support, no
# /usr/bin/python3): the GPU machine has neither, only a python3 with numpy,
# Pillow and msgpack, which is what $PY must have.

DEV=${AGING_GPU_DEVICE:-cuda}

pick_python() {
    local p
    for p in ${PY:-} python3 /usr/bin/python3; do
        "$p" -c 'import numpy, PIL, msgpack' 2>/dev/null && { echo "$p"; return 0; }
    done
    return 1
}

setup_file() {
    export TESTS_DIR=${TESTS_DIR:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
    export ROOT=$(cd "$TESTS_DIR/.." && pwd)
    export PATH="${BIN_DIR:-$ROOT/bin}:$PATH"
    # a trainer that dies (no device) must not leave aug workers waiting long
    export AGING_STREAM_TIMEOUT=${AGING_STREAM_TIMEOUT:-30}
    PY=$(pick_python) || { echo "# no python3 with numpy, Pillow and msgpack" >&3; return 1; }
    export PY FACES="$BATS_FILE_TMPDIR/faces" CK="$BATS_FILE_TMPDIR/ck.safetensors"
    "$PY" "$TESTS_DIR/py/faces.py" "$FACES" 12 64 >/dev/null
    # A reference-sized checkpoint (ngf 32, 9 blocks) after one step on the
    # CPU: BN running statistics that are not the initial ones.
    utk-split --split train -q "$FACES" | aug --train --size 64 --seed 1 \
        | cyclegan-step --device cpu --batch 2 --max-steps 1 --log-every 0 --ckpt-out "$CK" >/dev/null
}

# max |a - b| over two PNGs, in 1/255 steps
png_diff() {
    "$PY" - "$1" "$2" <<'PY'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert("RGB"), dtype=np.int32) for p in sys.argv[1:3])
assert a.shape == b.shape, (a.shape, b.shape)
print(int(np.abs(a - b).max()))
PY
}

@test "translate --device $DEV equals --device cpu (PNG, at most 2/255)" {
    face=$(ls "$FACES"/*.jpg.chip.jpg | head -1)
    for dir in y2o o2y; do
        translate --$dir --ckpt "$CK" --size 128 --device "$DEV" -i "$face" -o "$BATS_TEST_TMPDIR/dev.png"
        translate --$dir --ckpt "$CK" --size 128 --device cpu -i "$face" -o "$BATS_TEST_TMPDIR/cpu.png"
        d=$(png_diff "$BATS_TEST_TMPDIR/dev.png" "$BATS_TEST_TMPDIR/cpu.png")
        echo "# translate --$dir 128 px, $DEV vs cpu: max |d| = $d / 255" >&3
        [ "$d" -le 2 ]
    done
}

@test "translate --stream --device $DEV equals --device cpu (tensors, at most 1e-3)" {
    utk-split --split all -q "$FACES" | aug --eval --size 64 > "$BATS_TEST_TMPDIR/t"
    translate --y2o --stream --only --ckpt "$CK" --device "$DEV" < "$BATS_TEST_TMPDIR/t" > "$BATS_TEST_TMPDIR/dev"
    translate --y2o --stream --only --ckpt "$CK" --device cpu < "$BATS_TEST_TMPDIR/t" > "$BATS_TEST_TMPDIR/cpu"
    # (prints a TAP comment line to the log: >&3)
    "$PY" - "$BATS_TEST_TMPDIR/dev" "$BATS_TEST_TMPDIR/cpu" <<'PY' >&3
import sys
import msgpack, numpy as np
def tensors(p):
    return [np.frombuffer(r["data"], np.float32) for r in msgpack.Unpacker(open(p, "rb"), raw=False)
            if r.get("kind") == "tensor"]
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert len(a) == len(b) > 0, (len(a), len(b))
d = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
print("# translate --stream, %d images of 64 px: max |d| = %.3g" % (len(a), d))
sys.exit(0 if d <= 1e-3 else 1)
PY
}

# A few steps at 64 px on augmented faces; cyclegan-step itself stops on a
# non-finite loss, the check below reads every record.
step_run() {  # precision
    utk-split --split train --epochs 2 -q "$FACES" | aug --train --size 64 --seed 3 \
        | cyclegan-step --device "$DEV" --precision "$1" --ngf 16 --ndf 16 --blocks 3 --batch 2 \
          --log-every 1 --json --ckpt-out "$BATS_TEST_TMPDIR/c.safetensors" > "$BATS_TEST_TMPDIR/m.jsonl"
    "$PY" - "$BATS_TEST_TMPDIR/m.jsonl" "$1" <<'PY' >&3
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in recs if r["phase"] == "step"]
keys = ("loss_DX", "loss_DY", "loss_f_adv", "loss_g_adv", "loss_cyc", "loss_id", "loss_gen_total")
assert len(steps) >= 4, len(steps)
for r in recs:
    assert all(math.isfinite(r[k]) for k in keys), r
if sys.argv[2] == "fp16":
    assert all("loss_scale" in r for r in steps), steps[0]
last = steps[-1]
print("# %s: %d steps, last gen %.4f DX %.4f DY %.4f%s" % (sys.argv[2], len(steps), last["loss_gen_total"],
      last["loss_DX"], last["loss_DY"], ", loss scale %g, %d skipped" % (last["loss_scale"], last["skipped_updates"])
      if "loss_scale" in last else ""))
PY
}

@test "cyclegan-step --device $DEV --precision fp32: finite losses" {
    step_run fp32
}

@test "cyclegan-step --device $DEV --precision bf16: finite losses" {
    step_run bf16
}

@test "cyclegan-step --device $DEV --precision fp16 (loss scaling): finite losses" {
    step_run fp16
}

# --precision auto: bf16 on a GPU, fp32 on the CPU
@test "pipelines/train.sh end to end on $DEV (2 epochs, 64 px, 2 aug workers)" {
    out=$BATS_TEST_TMPDIR/out
    bash "$ROOT/pipelines/train.sh" --num_train_epochs 2 --train_batch_size 2 --img_size 64 --ngf 8 --ndf 8 \
        --n_blocks 2 --num_workers 2 --limit 8 --num_sample_generations_to_save 4 --checkpoint_every 1 \
        --log_every 1 --data_dir "$FACES" --output_dir "$out" --device "$DEV" 2> "$BATS_TEST_TMPDIR/log" \
        || { cat "$BATS_TEST_TMPDIR/log"; false; }
    for f in checkpoints/last.safetensors checkpoints/best.safetensors checkpoints/epoch_0002.safetensors \
             images/epoch2.png metrics/test_metrics.json; do
        [ -s "$out/$f" ] || { echo "missing $f"; false; }
    done
    [ "$(wc -l < "$out/metrics/metrics.jsonl")" -eq 2 ]
    echo "# train.sh: $(tail -1 "$BATS_TEST_TMPDIR/log")" >&3
}
