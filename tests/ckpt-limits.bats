#!/usr/bin/env bats
# Checkpoint readers (ckpt, translate, cyclegan-step) on small hostile or
# damaged files: bounded time and memory, and no silent partial load.  The
# files are made by tests/py/st_hostile.py, some from a real checkpoint of a
# small run.

load helpers

setup_file() {
    export CK="$BATS_FILE_TMPDIR/ck" HOSTILE="$TESTS_DIR/py/st_hostile.py"
    mkdir -p "$CK"
    local faces
    faces=$(faces_dir)
    utk-split --split train -q "$faces" | aug --train --size 32 --seed 3 > "$CK/s1"
    cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt-out "$CK/run.safetensors" \
        --log-every 0 < "$CK/s1" > /dev/null
    ckpt extract --net G,F "$CK/run.safetensors" "$CK/gf.safetensors"
}

setup() {
    common_setup
    FACE=$(ls "$(faces_dir)"/*.chip.jpg | head -1)
}
teardown() { common_teardown; }

# Run a command with its address space capped, so that a reader that
# allocates what a file claims fails fast instead of taking the machine's
# memory, and put its peak resident size in KB in $TMP/rss.  (Sanitizer
# builds reserve terabytes of address space: no cap there.)
capped() {
    [ -n "${AGING_SANITIZED:-}" ] || ulimit -v 2000000
    /usr/bin/time -f %M -o "$TMP/rss.out" "$@"
    local rc=$?
    tail -1 "$TMP/rss.out" > "$TMP/rss"
    return $rc
}

# Peak RSS of the last capped command, in MB.
rss_mb() { echo $(($(cat "$TMP/rss") / 1024)); }

@test "ckpt limits: 60k metadata keys or tensors are refused at once; 16k tensors stay fast" {
    "$PY" "$HOSTILE" many-meta "$TMP/meta.safetensors" 60000
    run timeout 20 translate --y2o --ckpt "$TMP/meta.safetensors" -i "$FACE" -o "$TMP/o.png"
    assert_failure 1
    assert_output "translate: $TMP/meta.safetensors: __metadata__ has more than 1024 keys (a checkpoint has tens)"
    "$PY" "$HOSTILE" many-tensors "$TMP/many.safetensors" 60000
    run timeout 20 ckpt info --summary "$TMP/many.safetensors"
    assert_failure 1
    assert_output "ckpt: $TMP/many.safetensors: more than 16384 tensors (a training checkpoint has about 1000)"
    # counted on the header's text: a million entries (59 MB) never become 830 MB of JSON nodes
    "$PY" "$HOSTILE" many-tensors "$TMP/many.safetensors" 1000000
    run capped ckpt info --summary "$TMP/many.safetensors"
    assert_failure 1
    assert_output "ckpt: $TMP/many.safetensors: more than 16384 tensors (a training checkpoint has about 1000)"
    echo "# 1M tensors: $(rss_mb) MB peak" >&3
    [ "$(rss_mb)" -lt 150 ]
    # below the cap, one line per group: hashed, not a scan per tensor
    "$PY" "$HOSTILE" many-tensors "$TMP/16k.safetensors" 16000
    SECONDS=0
    run timeout 20 ckpt info --summary "$TMP/16k.safetensors"
    assert_success
    assert_line --index 0 "$TMP/16k.safetensors: safetensors, 16000 tensors, 0 values, 0 bytes"
    echo "# ckpt info on 16000 tensors: ${SECONDS}s" >&3
    [ "$SECONDS" -le 5 ]
}

@test "ckpt limits: a 300 KB file claiming ngf 1024 is refused before the network is built" {
    "$PY" "$HOSTILE" stub "$TMP/stub.safetensors" 1024 9
    run capped translate --y2o --ckpt "$TMP/stub.safetensors" --size 32 -i "$FACE" -o "$TMP/o.png"
    assert_failure 1
    assert_output "translate: $TMP/stub.safetensors: missing tensor 'G.model.1.bias'"
    echo "# translate on the stub: $(rss_mb) MB" >&3
    [ "$(rss_mb)" -lt 200 ]
    [ ! -e "$TMP/o.png" ]
    run capped cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt "$TMP/stub.safetensors" \
        --ckpt-out "$TMP/c.safetensors" < "$CK/s1"
    assert_failure 1
    assert_output --partial "$TMP/stub.safetensors: missing tensor 'G.model.1.bias'"
    echo "# cyclegan-step on the stub: $(rss_mb) MB" >&3
    [ "$(rss_mb)" -lt 200 ]
    run capped ckpt export "$TMP/stub.safetensors" "$TMP/o.pth"
    assert_failure 1
    assert_output "ckpt: $TMP/stub.safetensors: missing tensor 'G.model.1.bias'"
}

@test "ckpt limits: every tensor of a net is checked by name, shape and dtype; nothing extra" {
    # a tensor the network does not have
    "$PY" - "$CK/gf.safetensors" "$TMP/extra.safetensors" <<'PY'
import sys, os
sys.path.insert(0, os.environ["TESTS_DIR"] + "/py")
from st_hostile import read, write
t, meta = read(sys.argv[1])
t["G.model.10.conv_block.9.weight"] = ("F32", [2], bytes(8))
write(sys.argv[2], t, meta)
PY
    run translate --y2o --ckpt "$TMP/extra.safetensors" --size 32 -i "$FACE" -o "$TMP/o.png"
    assert_failure 1
    assert_output "translate: $TMP/extra.safetensors: tensor 'G.model.10.conv_block.9.weight' is not part of the generator (ngf 8, 2 blocks) its other tensors describe"
    # a wrong dtype
    "$PY" - "$CK/gf.safetensors" "$TMP/dtype.safetensors" <<'PY'
import sys, os
sys.path.insert(0, os.environ["TESTS_DIR"] + "/py")
from st_hostile import read, write
t, meta = read(sys.argv[1])
d, s, raw = t["F.model.4.bias"]
t["F.model.4.bias"] = ("I32", s, raw)
write(sys.argv[2], t, meta)
PY
    run translate --o2y --ckpt "$TMP/dtype.safetensors" --size 32 -i "$FACE" -o "$TMP/o.png"
    assert_failure 1
    assert_output "translate: $TMP/dtype.safetensors: tensor 'F.model.4.bias' is I32 but F32 (or F16, BF16, F64) is expected"
    run ckpt export "$TMP/dtype.safetensors" "$TMP/o.pth"
    assert_failure 1
    [ ! -e "$TMP/o.pth" ]
}

@test "ckpt limits: a 600-byte .pth with a zero-stride view is not expanded to 1 GiB" {
    "$PY" -c 'import torch' 2>/dev/null || skip "no torch"
    "$PY" "$HOSTILE" zero-stride "$TMP/z.pth" $((1 << 28))
    echo "# the .pth: $(stat -c %s "$TMP/z.pth") bytes" >&3
    for cmd in "info" "import --no-check"; do
        out=; [ "$cmd" = info ] || out="$TMP/z.safetensors"
        # shellcheck disable=SC2086
        run capped ckpt $cmd "$TMP/z.pth" $out
        assert_failure 1
        assert_output "ckpt: $TMP/z.pth: tensor 'w' (268435456 elements from a 1-element storage) would bring the tensors to more than 4 times the file's size (a view repeating its storage?)"
        echo "# ckpt $cmd: $(rss_mb) MB" >&3
        [ "$(rss_mb)" -lt 200 ]
    done
    [ ! -e "$TMP/z.safetensors" ]
    # a view that stays within the bound is still copied out
    "$PY" "$HOSTILE" zero-stride "$TMP/small.pth" 100
    run ckpt info "$TMP/small.pth"
    assert_success
    assert_line "  w F32 [100]"
}

@test "ckpt limits: a training checkpoint missing one optimiser tensor is refused, not reset" {
    "$PY" "$HOSTILE" drop "$CK/run.safetensors" "$TMP/noopt.safetensors" opt_G.state.0.exp_avg
    run cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt "$TMP/noopt.safetensors" \
        --ckpt-out "$TMP/c.safetensors" --log-every 0 < "$CK/s1"
    assert_failure 1
    assert_output "cyclegan-step: $TMP/noopt.safetensors: missing tensor 'opt_G.state.0.exp_avg'"
    [ ! -e "$TMP/c.safetensors" ]
    run cyclegan-step --eval --ckpt "$TMP/noopt.safetensors" --batch 2 < "$CK/s1"
    assert_failure 1
    assert_output --partial "missing tensor 'opt_G.state.0.exp_avg'"
    # one more than the optimiser has
    "$PY" - "$CK/run.safetensors" "$TMP/moreopt.safetensors" <<'PY'
import sys, os
sys.path.insert(0, os.environ["TESTS_DIR"] + "/py")
from st_hostile import read, write
t, meta = read(sys.argv[1])
t["opt_DX.state.99.exp_avg"] = ("F32", [1], bytes(4))
write(sys.argv[2], t, meta)
PY
    run cyclegan-step --eval --ckpt "$TMP/moreopt.safetensors" --batch 2 < "$CK/s1"
    assert_failure 1
    assert_output --partial "$TMP/moreopt.safetensors: 37 tensors under 'opt_DX.', but Adam over 12 parameters has 36"
}

@test "ckpt limits: import and export refuse a net without its first weight" {
    "$PY" "$HOSTILE" drop "$CK/run.safetensors" "$TMP/nofirst.safetensors" G.model.1.weight
    run ckpt export "$TMP/nofirst.safetensors" "$TMP/o.pth"
    assert_failure 1
    assert_output "ckpt: $TMP/nofirst.safetensors: missing tensor 'G.model.1.weight'"
    [ ! -e "$TMP/o.pth" ]
    # the same net in a .pth (written unchecked), imported and exported
    ckpt export --no-check "$TMP/nofirst.safetensors" "$TMP/nofirst.pth"
    run ckpt import "$TMP/nofirst.pth" "$TMP/o.safetensors"
    assert_failure 1
    assert_output "ckpt: $TMP/nofirst.pth: missing tensor 'G.model.1.weight'"
    [ ! -e "$TMP/o.safetensors" ]
    run ckpt export "$TMP/nofirst.pth" "$TMP/o.pth"
    assert_failure 1
    assert_output "ckpt: $TMP/nofirst.pth: missing tensor 'G.model.1.weight'"
    [ ! -e "$TMP/o.pth" ]
}

@test "ckpt limits: epoch, step and the other counters are range-checked integers" {
    for kv in epoch=12345678901234567890123 step=-5 epoch_step=' 3' sched_epoch=1e3 epoch=1000001; do
        "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/bad.safetensors" "$kv"
        key=${kv%%=*}
        run cyclegan-step --ckpt "$TMP/bad.safetensors" --state
        assert_failure 1
        assert_output --regexp "^cyclegan-step: $TMP/bad.safetensors: metadata '$key': '.*' is (not an integer|out of range \[0, [0-9]+\])\$"
        run cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt-out "$TMP/bad.safetensors" --resume \
            --log-every 0 < "$CK/s1"
        assert_failure 1
        assert_output --partial "metadata '$key'"
    done
    "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/bad.safetensors" epoch_step=6
    run cyclegan-step --ckpt "$TMP/bad.safetensors" --state
    assert_failure 1
    assert_output "cyclegan-step: $TMP/bad.safetensors: metadata 'epoch_step' = 6 is more than 'step' = 5"
    run cyclegan-step --ckpt "$CK/run.safetensors" --state
    assert_output "epoch=1 step=5 epoch_step=0"
}

@test "ckpt limits: format and format_version are checked by every reader" {
    for kv in format=other-project format_version=2; do
        "$PY" "$HOSTILE" meta "$CK/gf.safetensors" "$TMP/f.safetensors" "$kv"
        key=${kv%%=*}
        for tool in "translate --y2o --size 32 -i $FACE -o $TMP/o.png --ckpt" "ckpt info" "ckpt export" \
            "cyclegan-step --state --ckpt"; do
            out=; [ "$tool" = "ckpt export" ] && out="$TMP/o.pth"
            # shellcheck disable=SC2086
            run $tool "$TMP/f.safetensors" $out
            assert_failure 1
            assert_output --regexp "^[a-z-]+: $TMP/f.safetensors: metadata '$key' is '${kv#*=}'"
        done
        [ ! -e "$TMP/o.png" ] && [ ! -e "$TMP/o.pth" ]
    done
}

@test "ckpt limits: a malformed opt_*.param_groups stops the resume with the key named, never replaced" {
    for v in 'not json' '[1]' '{"lr":0,"initial_lr":0.0002,"betas":[0.5,0.999],"eps":1e-08}' \
             '{"lr":"0","initial_lr":0.0002,"betas":[0.5,0.999],"eps":1e-08,"weight_decay":0.0001}' \
             '{"lr":0,"initial_lr":0.0002,"betas":[0.5],"eps":1e-08,"weight_decay":0.0001}' \
             '{"lr":0,"initial_lr":0.0002,"betas":[0.5,1.5],"eps":1e-08,"weight_decay":0.0001}' \
             '{"lr":0,"initial_lr":-1,"betas":[0.5,0.999],"eps":1e-08,"weight_decay":0.0001}'; do
        "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/bad.safetensors" "opt_DX.param_groups=$v"
        run cyclegan-step --ngf 8 --ndf 8 --blocks 2 --batch 2 --ckpt "$TMP/bad.safetensors" \
            --ckpt-out "$TMP/c.safetensors" --log-every 0 < "$CK/s1"
        assert_failure 1
        assert_output --partial "$TMP/bad.safetensors: metadata 'opt_DX.param_groups'"
        [ ! -e "$TMP/c.safetensors" ]
    done
}

@test "ckpt meta and info escape control bytes: a hostile value forges no line; --json for scripts" {
    "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/forged.safetensors" \
        $'note=x\nformat=evil\n  G 1 tensors' $'config={"size":32}\nsize=64' 'path=C:\temp\new'
    run ckpt meta "$TMP/forged.safetensors"
    assert_success
    [ "${#lines[@]}" -eq "$("$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(len(json.loads(f.read(n))["__metadata__"]))' "$TMP/forged.safetensors")" ]
    assert_line 'note=x\nformat=evil\n  G 1 tensors'
    assert_line 'path=C:\\temp\\new'
    refute_line --regexp '^format=evil'
    run ckpt meta "$TMP/forged.safetensors" config
    assert_output '{"size":32}\nsize=64'
    run ckpt info --summary "$TMP/forged.safetensors"
    refute_line --regexp '^(format=evil|  G 1 tensors)'
    assert_line '  note = x\nformat=evil\n  G 1 tensors'
    # --json: what was stored, exactly, for any JSON reader
    ckpt meta --json "$TMP/forged.safetensors" > "$TMP/all.json"
    ckpt meta --json "$TMP/forged.safetensors" note > "$TMP/note.json"
    "$PY" - "$TMP/all.json" "$TMP/note.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["note"] == "x\nformat=evil\n  G 1 tensors" and m["path"] == "C:\\temp\\new", m
assert m["format"] == "aging-cyclegan"
assert json.load(open(sys.argv[2])) == m["note"]
PY
    # the pipelines' size lookup reads one number, from a key of the config itself
    source "$TESTS_DIR/../pipelines/common.sh"
    [ "$(ckpt_size "$CK/run.safetensors")" = 32 ]
    "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/forged.safetensors" \
        'config={"note":"\"size\":64,","size":32}'
    [ "$(ckpt_size "$TMP/forged.safetensors")" = 32 ]
    "$PY" "$HOSTILE" meta "$CK/run.safetensors" "$TMP/forged.safetensors" $'config={"size":32}\n"size":64}'
    [ "$(ckpt_size "$TMP/forged.safetensors" | wc -l)" -le 1 ]
}

@test "ckpt limits: a file that is no checkpoint is named for what it is, by every reader" {
    echo "lr = 2e-4" > "$TMP/config.txt"
    for tool in "ckpt info" "translate --y2o $FACE --ckpt" "cyclegan-step --state --ckpt"; do
        run $tool "$FACE"
        assert_failure
        assert_output --partial "$FACE: not a checkpoint: this is a 48x48 JPEG image, not a safetensors file"
        run $tool "$TMP/config.txt"
        assert_failure
        assert_output --partial "config.txt: not a checkpoint: this is text, not a safetensors file"
    done
    run ckpt info "$TESTS_DIR/../data/demo/astronaut.png"
    assert_output --partial "not a checkpoint: this is a 200x200 PNG image"
}
