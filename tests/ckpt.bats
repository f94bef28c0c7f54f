#!/usr/bin/env bats
# ckpt: torch.save checkpoints (zip and legacy, written by the local PyTorch)
# imported, used by translate, exported back to torch.load; extract, diff,
# info; hostile and broken inputs.

load helpers

setup_file() {
    export CK="$BATS_FILE_TMPDIR/ck"
    if has_torch; then
        "$PY" "$TESTS_DIR/py/ref_ckpt.py" make "$CK"
        "$PY" "$TESTS_DIR/py/ref_ckpt.py" evil "$CK"
    fi
}

setup() {
    common_setup
    [ -f "$CK/ref.pth" ] || skip "no torch to make checkpoints"
}
teardown() { common_teardown; }

@test "ckpt: --help exits 0; bad usage exits 2" {
    run ckpt --help
    assert_success
    assert_output --partial "usage: ckpt info"
    run ckpt
    assert_failure 2
    run ckpt frobnicate a b
    assert_failure 2
    run ckpt import only-one.pth
    assert_failure 2
    run ckpt extract a.safetensors b.safetensors
    assert_failure 2
    assert_output --partial "--net"
    run ckpt diff --tol -1 a b
    assert_failure 2
    run ckpt --bogus info x
    assert_failure 2
}

@test "ckpt import: zip and legacy .pth give every tensor bit for bit, with optimiser and scheduler state" {
    for f in ref ref_legacy; do
        ckpt import "$CK/$f.pth" "$TMP/$f.safetensors"
        "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-st "$TMP/$f.safetensors" "$CK/$f.pth" >&3
    done
    run ckpt info --summary "$TMP/ref.safetensors"
    assert_success
    assert_output --partial "epoch = 3"
    assert_output --partial "sched_epoch = 3"
    assert_output --partial "kind = train"
    assert_output --partial '"betas":[0.5,0.999]'
    assert_output --partial "opt_DY.param_groups"
    assert_line --regexp '^  G +65 tensors +51788 values, 38 parameters \(51363 values\)$'
    assert_line --regexp '^  DX +15 tensors'
    # the same file read as .pth and as safetensors: identical
    run ckpt diff "$CK/ref_legacy.pth" "$TMP/ref.safetensors"
    assert_success
    assert_output --partial "460 tensors compared, 0 differ"
}

@test "ckpt import: fp16, bf16, f64, ints, bool, views with offsets and strides, shared storages" {
    for f in halves halves_legacy; do
        ckpt import --no-check "$CK/$f.pth" "$TMP/$f.safetensors"
        "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-st "$TMP/$f.safetensors" "$CK/$f.pth" >&3
    done
    run ckpt info "$TMP/halves.safetensors"
    assert_line "  net.bf16 BF16 [5]"
    assert_line "  net.half_view F16 [4,3]"
    assert_line "  net.sliced F32 [2,2]"
    assert_line "  opt_net.state.0.step F32 []"
}

@test "ckpt import + translate: the same image as PyTorch on the .pth weights" {
    FACE=$(ls "$(faces_dir)"/*.jpg.chip.jpg | head -1)
    ckpt import "$CK/ref.pth" "$TMP/ref.safetensors"
    ckpt extract --net F "$TMP/ref.safetensors" "$TMP/f.safetensors"
    for dir in y2o o2y; do
        ck="$TMP/ref.safetensors"
        [ $dir = o2y ] && ck="$TMP/f.safetensors"
        translate --$dir --raw --ckpt "$ck" --size 32 -i "$FACE" -o "$TMP/ours.png"
        # the reference: PyTorch inference on the weights Python read from the .pth itself
        "$PY" "$TESTS_DIR/py/ref_translate.py" run "$CK/ref_st.safetensors" $dir 32 "$FACE" "$TMP/ref.png"
        d=$("$PY" "$TESTS_DIR/py/ref_translate.py" diff "$TMP/ours.png" "$TMP/ref.png")
        echo "# imported .pth, translate --$dir vs PyTorch: max |d| = $d / 255" >&3
        [ "$d" -le 1 ]
    done
}

@test "ckpt export: torch.load reads it, tensors equal, nets/optimisers/schedulers load into the reference" {
    ckpt import "$CK/ref.pth" "$TMP/ref.safetensors"
    ckpt export "$TMP/ref.safetensors" "$TMP/out.pth"
    "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-pth "$TMP/out.pth" "$CK/ref.pth" >&3
    # straight from the legacy format too
    ckpt export "$CK/ref_legacy.pth" "$TMP/out2.pth"
    "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-pth "$TMP/out2.pth" "$CK/ref.pth" >&3
    # a weights-only file passes torch.load(weights_only=True)
    ckpt extract --net G "$TMP/ref.safetensors" "$TMP/g.safetensors"
    ckpt export "$TMP/g.safetensors" "$TMP/g.pth"
    "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-weights "$TMP/g.pth" G >&3
    # and back again: nothing lost
    ckpt import "$TMP/out.pth" "$TMP/back.safetensors"
    run ckpt diff "$TMP/ref.safetensors" "$TMP/back.safetensors"
    assert_success
}

@test "ckpt extract: one generator, prefix kept, works with translate" {
    FACE=$(ls "$(faces_dir)"/*.jpg.chip.jpg | head -1)
    ckpt import "$CK/ref.pth" "$TMP/ref.safetensors"
    ckpt extract --net G "$TMP/ref.safetensors" "$TMP/g.safetensors"
    run ckpt info --summary "$TMP/g.safetensors"
    assert_output --partial "kind = weights"
    assert_output --partial "65 tensors"
    refute_output --partial "opt_G"
    translate --y2o --ckpt "$TMP/g.safetensors" --size 32 < "$FACE" > "$TMP/a.png"
    translate --y2o --ckpt "$TMP/ref.safetensors" --size 32 < "$FACE" > "$TMP/b.png"
    cmp "$TMP/a.png" "$TMP/b.png"
    run ckpt extract --net Q "$TMP/ref.safetensors" "$TMP/q.safetensors"
    assert_failure 1
    assert_output --partial "no tensors under 'Q.'"
}

@test "ckpt diff: 0 when equal, 1 with the tensor when not; --tol" {
    ckpt import "$CK/ref.pth" "$TMP/a.safetensors"
    "$PY" - "$TMP/a.safetensors" "$TMP/b.safetensors" <<'PY'
import sys, os
sys.path.insert(0, os.environ["TESTS_DIR"] + "/py")
from ref_ckpt import load_st
from reference import save_safetensors
import numpy as np, torch
t, meta = load_st(sys.argv[1])
dt = {"F32": np.float32, "I64": np.int64}
sd = {k: torch.from_numpy(np.frombuffer(b, dt[d]).reshape(s).copy()) for k, (d, s, b) in t.items()}
sd["G.model.4.bias"][1] += 0.25
save_safetensors(sys.argv[2], sd, meta)
PY
    run ckpt diff "$TMP/a.safetensors" "$TMP/a.safetensors"
    assert_success
    run ckpt diff "$TMP/a.safetensors" "$TMP/b.safetensors"
    assert_failure 1
    assert_output --partial "G.model.4.bias: max abs 0.25"
    assert_output --partial "1 differ"
    run ckpt diff --tol 0.5 "$TMP/a.safetensors" "$TMP/b.safetensors"
    assert_success
    run ckpt diff "$TMP/a.safetensors" "$CK/ref_st.safetensors"
    assert_failure 1
    assert_output --partial "opt_G.state.0.exp_avg: only in"
}

@test "ckpt: hostile and broken files exit 1 with a message, nothing executed" {
    run ckpt import "$CK/system.pth" "$TMP/x.safetensors"
    assert_failure 1
    assert_output --partial "forbidden global 'posix.system'"
    [ ! -e "$CK/pwned" ]
    run ckpt info "$CK/truncated.pth"
    assert_failure 1
    assert_output --partial "ckpt: $CK/truncated.pth: not a readable zip archive"
    # the storages are in key order (memory addresses at save time), so the
    # cut may fall inside the last storage or before its data
    run ckpt info "$CK/truncated_legacy.pth"
    assert_failure 1
    assert_output --regexp "truncated (in|before) storage"
    run ckpt import "$CK/huge.pth" "$TMP/x.safetensors"
    assert_failure 1
    assert_output --partial "declares 3221225472 bytes, more than the"
    run ckpt import "$CK/overrun.pth" "$TMP/x.safetensors"
    assert_failure 1
    assert_output --partial "tensor 'w' reaches element 9 of a 4-element storage"
    run ckpt import "$CK/wrong_shape.pth" "$TMP/x.safetensors"
    assert_failure 1
    assert_output --partial "G.model.1.weight"
    run ckpt info "$CK/cycle.pth"
    assert_failure 1
    assert_output --partial "nested deeper than 64 levels"
    [ ! -e "$TMP/x.safetensors" ]
    ls "$TMP" | { ! grep -q ckpt-import; }
    head -c 3000 /dev/urandom > "$TMP/junk.pth"
    run ckpt info "$TMP/junk.pth"
    assert_failure 1
    run ckpt info "$TMP/missing.pth"
    assert_failure 1
    assert_output --partial "missing.pth"
    run ckpt export "$CK/ref.pth" /nonexistent-dir/out.pth
    assert_failure 1
    assert_output --partial "ckpt: /nonexistent-dir/out.pth"
}

@test "ckpt export: a checkpoint written by cyclegan-step loads into the reference PyTorch model" {
    FACES=$(faces_dir)
    utk-split --split train -q "$FACES" | aug --train --size 32 \
        | cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt-out "$TMP/run.safetensors" --log-every 0 > /dev/null
    ckpt export "$TMP/run.safetensors" "$TMP/run.pth"
    "$PY" "$TESTS_DIR/py/ref_ckpt.py" check-trained "$TMP/run.pth" "$TMP/run.safetensors" >&3
    ckpt import "$TMP/run.pth" "$TMP/back.safetensors"
    translate --y2o --ckpt "$TMP/back.safetensors" --size 32 -i "$(ls "$FACES"/*.chip.jpg | head -1)" -o "$TMP/a.png"
    translate --y2o --ckpt "$TMP/run.safetensors" --size 32 -i "$(ls "$FACES"/*.chip.jpg | head -1)" -o "$TMP/b.png"
    cmp "$TMP/a.png" "$TMP/b.png"
}

@test "ckpt meta --set: the metadata changes, the tensors stay the same bytes; extract records no folder" {
    m=$TESTS_DIR/../models/utkface-128.safetensors
    mkdir -p "$TMP/deep/er"
    ckpt extract --net G --dtype bf16 "$m" "$TMP/deep/er/g.safetensors"
    run ckpt meta "$TMP/deep/er/g.safetensors" source
    assert_output "ckpt extract --net G --dtype BF16 utkface-128.safetensors"
    ckpt meta --set source=elsewhere --set note="a b=c" --set kind= "$m" "$TMP/o.safetensors"
    run ckpt meta "$TMP/o.safetensors"
    assert_line "source=elsewhere"
    assert_line "note=a b=c"
    assert_line --partial "config={"
    refute_line --partial "kind="
    "$PY" - "$m" "$TMP/o.safetensors" <<'PY'
import json, struct, sys
def load(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    h.pop("__metadata__"); return h, raw[8 + n:]
(ha, da), (hb, db) = load(sys.argv[1]), load(sys.argv[2])
assert list(ha.items()) == list(hb.items()), "tensor entries differ"
assert da == db, "tensor bytes differ"
PY
    run ckpt meta --set novalue "$m" "$TMP/x.safetensors"
    assert_failure 2
    run ckpt meta --set a=b "$m"
    assert_failure 2
    assert_output --partial "needs IN and OUT"
    [ ! -e "$TMP/x.safetensors" ]
}
