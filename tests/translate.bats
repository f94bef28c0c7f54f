#!/usr/bin/env bats
# translate: parity with the PyTorch reference's inference, stream and grid
# modes, and bad input.

load helpers

setup_file() {
    export CK="$BATS_FILE_TMPDIR/ck.safetensors"
    if has_torch; then
        "$PY" "$TESTS_DIR/py/ref_translate.py" ckpt "$CK" 8 2 3
    fi
}

setup() {
    common_setup
    FACES=$(faces_dir)
    FACE=$(ls "$FACES"/*.jpg.chip.jpg | head -1)
    [ -f "$CK" ] || skip "no torch to make a checkpoint"
}
teardown() { common_teardown; }
pixel_diff() { "$PY" "$TESTS_DIR/py/ref_translate.py" diff "$1" "$2"; }

@test "translate: --help exits 0; bad options exit 2" {
    run translate --help
    assert_success
    assert_output --partial "usage: translate"
    run translate --ckpt "$CK"
    assert_failure 2
    assert_output --partial "choose --y2o"
    run translate --y2o --o2y
    assert_failure 2
    run translate --y2o --size 30
    assert_failure 2
    run translate --y2o --stream --grid 3
    assert_failure 2
    run translate --y2o --device tpu
    assert_failure 2
    run translate --y2o --precision fp8
    assert_failure 2
    assert_output --partial "expected fp32, bf16 or fp16"
    AGING_DEVICE=tpu run translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/x.png"
    assert_failure 1
    assert_output --partial "AGING_DEVICE=tpu: unknown device"
    [ ! -e "$TMP/x.png" ]
    # without a GPU, --device cuda says why; auto falls back to the CPU
    if ! [ -e /dev/nvidia0 ]; then
        run translate --y2o --ckpt "$CK" --device cuda -i "$FACE" -o "$TMP/x.png"
        assert_failure 1
        assert_output --regexp "CUDA backend is not available|no GPU is visible|no usable GPU"
        AGING_DEVICE=auto run translate --y2o --ckpt "$CK" -i "$FACE" -o "$TMP/x.png"
        assert_success
    fi
}

@test "translate: --y2o and --o2y equal the reference model on the same weights" {
    for dir in y2o o2y; do
        translate --$dir --ckpt "$CK" --size 64 --raw -o "$TMP/ours.png" < "$FACE"
        "$PY" "$TESTS_DIR/py/ref_translate.py" run "$CK" $dir 64 "$FACE" "$TMP/ref.png"
        d=$("$PY" "$TESTS_DIR/py/ref_translate.py" diff "$TMP/ours.png" "$TMP/ref.png")
        echo "# translate --$dir vs PyTorch: max |d| = $d / 255" >&3
        [ "$d" -le 1 ]
    done
    run cmp -s "$TMP/ours.png" "$FACE"
    assert_failure
}

@test "translate: -i/-o files, and a real UTKFace face at 256 px (UTKFACE_DIR)" {
    translate --o2y --ckpt "$CK" --size 32 --raw -i "$FACE" -o "$TMP/out.png"
    "$PY" -c 'from PIL import Image; im = Image.open("'"$TMP"'/out.png"); assert im.size == (32, 32) and im.mode == "RGB", im'
    [ -n "${UTKFACE_DIR:-}" ] && [ -d "$UTKFACE_DIR" ] || skip "UTKFACE_DIR not set"
    real=$(ls "$UTKFACE_DIR" | head -50 | tail -1)
    translate --y2o --ckpt "$CK" --raw -i "$UTKFACE_DIR/$real" -o "$TMP/ours.png"
    "$PY" "$TESTS_DIR/py/ref_translate.py" run "$CK" y2o 256 "$UTKFACE_DIR/$real" "$TMP/ref.png"
    d=$("$PY" "$TESTS_DIR/py/ref_translate.py" diff "$TMP/ours.png" "$TMP/ref.png")
    echo "# real face 256 px vs PyTorch: max |d| = $d / 255" >&3
    [ "$d" -le 1 ]
}

@test "translate: grey, RGBA and 16-bit PNG inputs are converted" {
    "$PY" - "$TMP" <<'PY'
import sys
import numpy as np
from PIL import Image
d = sys.argv[1]
Image.new("L", (40, 50), 100).save(d + "/grey.png")
Image.new("RGBA", (40, 40), (10, 200, 30, 128)).save(d + "/rgba.png")
Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(d + "/g16.png")
PY
    for f in grey rgba g16; do
        translate --y2o --ckpt "$CK" --size 32 -i "$TMP/$f.png" -o "$TMP/$f.out.png"
        [ -s "$TMP/$f.out.png" ]
    done
}

@test "translate: --stream turns source-domain tensors into target-domain tensors" {
    utk-split --split all -q "$FACES" | aug --eval --size 32 > "$TMP/t"
    AGING_PROGRESS=1 translate --y2o --ckpt "$CK" --stream < "$TMP/t" 2> "$TMP/err" | summary > "$TMP/s"
    [ "$(grep -c '"generated": true' "$TMP/s")" -eq 13 ]
    # the progress line: utk-split's records announce 13 young faces
    tr '\r' '\n' < "$TMP/err" | grep -q "translate: translating 13/13 faces"
    [ "$(grep -c '"kind": "tensor"' "$TMP/s")" -eq 26 ]
    grep '"generated": true' "$TMP/s" | grep -q '"domain": "old"'
    [ "$(grep '"generated": true' "$TMP/s" | grep -c '"shape": \[3, 32, 32\]')" -eq 13 ]
    [ "$(translate --y2o --ckpt "$CK" --stream --only < "$TMP/t" | summary | wc -l)" -eq 13 ]
    translate --o2y --ckpt "$CK" --stream --all --dtype bf16 < "$TMP/t" | summary > "$TMP/s2"
    [ "$(grep -c '"dtype": "bf16"' "$TMP/s2")" -eq 26 ]
    # image records are preprocessed like the image mode
    utk-split --split val -q "$FACES" | translate --y2o --ckpt "$CK" --stream --size 32 | summary > "$TMP/s3"
    grep -q '"shape": \[3, 32, 32\]' "$TMP/s3"
}

@test "translate: --grid N writes inputs over outputs in one PNG" {
    utk-split --split train --limit 4 -q "$FACES" | aug --eval --size 32 \
        | AGING_PROGRESS=1 translate --y2o --ckpt "$CK" --grid 3 > "$TMP/grid.png" 2> "$TMP/err"
    tr '\r' '\n' < "$TMP/err" | grep -q "translate: grid 3/3 faces"
    "$PY" -c 'from PIL import Image; im = Image.open("'"$TMP"'/grid.png"); assert im.size == (3 * 34 + 2, 2 * 34 + 2), im.size'
    utk-split --split val -q "$FACES" | aug --eval --size 32 | translate --y2o --ckpt "$CK" --grid 5 > "$TMP/g2.png"
    "$PY" -c 'from PIL import Image; im = Image.open("'"$TMP"'/g2.png"); assert im.size == (1 * 34 + 2, 70), im.size'
}

@test "translate: bad checkpoints exit 1 with a message" {
    run translate --y2o --ckpt "$TMP/missing.safetensors" < "$FACE"
    assert_failure 1
    assert_output --partial "missing.safetensors"
    head -c 1000 "$CK" > "$TMP/trunc.safetensors"
    run translate --y2o --ckpt "$TMP/trunc.safetensors" < "$FACE"
    assert_failure 1
    assert_output --partial "translate: "
    "$PY" - "$CK" "$TMP/bad.safetensors" <<'PY'
import sys, os
sys.path.insert(0, os.environ["TESTS_DIR"] + "/py")
from ref_translate import load_safetensors
from reference import save_safetensors
import torch
sd = load_safetensors(sys.argv[1])
del sd["G.model.5.weight"]
sd["G.model.4.weight"] = torch.zeros(3, 3)
save_safetensors(sys.argv[2], sd)
PY
    run translate --y2o --ckpt "$TMP/bad.safetensors" < "$FACE"
    assert_failure 1
    assert_output --partial "model.4.weight"
    echo "not a checkpoint" > "$TMP/junk.safetensors"
    run translate --y2o --ckpt "$TMP/junk.safetensors" < "$FACE"
    assert_failure 1
}

@test "translate: non-image input, tiny image and wrong tensors exit 1" {
    run bash -c "echo 'hello' | translate --y2o --ckpt '$CK' > '$TMP/o.png'"
    assert_failure 1
    assert_output --partial "translate: stdin:"
    "$PY" -c 'from PIL import Image; Image.new("RGB", (1, 1)).save("'"$TMP"'/tiny.png")'
    run translate --y2o --ckpt "$CK" --size 32 -i "$TMP/tiny.png" -o "$TMP/o.png"
    assert_success
    for k in shape dtype length; do
        "$PY" "$TESTS_DIR/py/streamtool.py" bad-tensor $k > "$TMP/s"
        run translate --y2o --ckpt "$CK" --stream --all < "$TMP/s"
        assert_failure 1
        assert_output --partial "translate: record 1 x:"
    done
    run bash -c "head -c 3000 /dev/urandom | translate --y2o --ckpt '$CK' --stream"
    assert_failure 1
    assert_output --partial "translate: record 1"
}

@test "translate --precision bf16/fp16: 16-bit convolutions stay within 3/255 of fp32" {
    translate --y2o --ckpt "$CK" --size 64 --device cpu -i "$FACE" -o "$TMP/f32.png"
    for p in bf16 fp16; do
        translate --y2o --ckpt "$CK" --size 64 --device cpu --precision $p -i "$FACE" -o "$TMP/$p.png"
        run "$PY" -c "
import sys; from PIL import Image; import numpy as np
a, b = (np.asarray(Image.open(f), dtype=int) for f in sys.argv[1:])
print('max', abs(a - b).max()); sys.exit(int(abs(a - b).max() > 3))" "$TMP/f32.png" "$TMP/$p.png"
        echo "# $p: $output" >&3
        assert_success
    done
}

# 1 when the CPU has bf16 units (AVX512-BF16 or AMX) that oneDNN will use
cpu_has_bf16() {
    grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo
}

@test "translate --precision bf16 on the CPU: its bf16 units, or the emulation, which says so once" {
    translate --y2o --ckpt "$CK" --size 64 --device cpu -i "$FACE" -o "$TMP/f32.png"
    run translate --y2o --ckpt "$CK" --size 64 --device cpu --precision bf16 -i "$FACE" -o "$TMP/hw.png"
    assert_success
    if cpu_has_bf16; then
        refute_output --partial "emulated"
    else
        assert_output "translate: this CPU has no bf16 units; bf16 is emulated (slow)"
    fi
    AGING_CPU_BF16=0 run translate --y2o --ckpt "$CK" --size 64 --device cpu --precision bf16 \
        -i "$FACE" -o "$TMP/emu.png"
    assert_success
    assert_output "translate: AGING_CPU_BF16=0: bf16 is emulated (slow)"
    ONEDNN_MAX_CPU_ISA=AVX2 run translate --y2o --ckpt "$CK" --size 64 --device cpu --precision bf16 \
        -i "$FACE" -o "$TMP/avx2.png"
    assert_success
    assert_output "translate: this CPU has no bf16 units; bf16 is emulated (slow)"
    cmp "$TMP/emu.png" "$TMP/avx2.png"
    # the units and the emulation differ only in the order of the float sums
    run "$PY" -c "
import sys; from PIL import Image; import numpy as np
f32, hw, emu = (np.asarray(Image.open(f), dtype=int) for f in sys.argv[1:])
print('hw-f32', abs(hw - f32).max(), 'hw-emu', abs(hw - emu).max())
sys.exit(int(abs(hw - f32).max() > 3 or abs(hw - emu).max() > 1))" "$TMP/f32.png" "$TMP/hw.png" "$TMP/emu.png"
    echo "# $output" >&3
    assert_success
}

@test "translate --precision auto: fp32 on the CPU, bf16 units or not" {
    for p in fp32 auto; do
        translate --y2o --ckpt "$CK" --size 64 --device cpu --precision $p -i "$FACE" -o "$TMP/$p.png"
    done
    cmp "$TMP/auto.png" "$TMP/fp32.png"
    AGING_CPU_BF16=0 run translate --y2o --ckpt "$CK" --size 64 --device cpu --precision auto -i "$FACE" \
        -o "$TMP/auto0.png"
    assert_success
    refute_output --partial "emulated"
    cmp "$TMP/auto0.png" "$TMP/fp32.png"
    run translate --y2o --precision fp8
    assert_failure 2
    assert_output --partial "(or auto)"
}

@test "translate: a face comes back at its own size and format; a non-square one keeps its aspect" {
    "$PY" -c "from PIL import Image; im = Image.open('$FACE').convert('RGB'); im.resize((60, 80)).save('$TMP/tall.png'); im.save('$TMP/face.png')"
    translate --y2o --ckpt "$CK" --size 32 -i "$FACE" > "$TMP/stdout.out"
    translate --y2o --ckpt "$CK" --size 32 -i "$TMP/tall.png" -o "$TMP/tall.out.png"
    "$PY" - "$TMP" "$FACE" <<'PY'
import sys
from PIL import Image
t, face = sys.argv[1], sys.argv[2]
a = Image.open(t + "/stdout.out")
assert a.format == "JPEG" and a.size == Image.open(face).size, (a.format, a.size)  # JPEG in, JPEG out
b = Image.open(t + "/tall.out.png")
assert b.format == "PNG" and b.size == (60, 80), (b.format, b.size)
PY
    # the framing of a non-square picture is its central square: --raw gives the same image for both
    "$PY" -c "from PIL import Image; Image.open('$TMP/tall.png').crop((0, 10, 60, 70)).save('$TMP/sq.png')"
    translate --y2o --ckpt "$CK" --size 32 --raw -i "$TMP/tall.png" -o "$TMP/r1.png"
    translate --y2o --ckpt "$CK" --size 32 --raw -i "$TMP/sq.png" -o "$TMP/r2.png"
    cmp "$TMP/r1.png" "$TMP/r2.png"
    # an identity generator leaves every pixel as it was: the paste itself loses nothing
    AGING_FACE_TEST_GENERATOR=identity translate --y2o --ckpt "$CK" --size 32 -i "$TMP/face.png" -o "$TMP/id.png"
    [ "$(pixel_diff "$TMP/face.png" "$TMP/id.png")" -eq 0 ]
}

@test "translate --strength: 0 is the input exactly, 2 changes more than 1, out of range exits 2" {
    "$PY" -c "from PIL import Image; Image.open('$FACE').convert('RGB').save('$TMP/face.png')"
    translate --y2o --ckpt "$CK" --size 32 --strength 0 -i "$FACE" -o "$TMP/s0.jpg"
    cmp "$FACE" "$TMP/s0.jpg"
    translate --y2o --ckpt "$CK" --size 32 --strength 0 -i "$TMP/face.png" -o "$TMP/s0.png"
    [ "$(pixel_diff "$TMP/face.png" "$TMP/s0.png")" -eq 0 ]
    translate --y2o --ckpt "$CK" --size 32 -i "$TMP/face.png" -o "$TMP/s1.png"
    translate --y2o --ckpt "$CK" --size 32 --strength 2 -i "$TMP/face.png" -o "$TMP/s2.png"
    d1=$(pixel_diff "$TMP/face.png" "$TMP/s1.png") d2=$(pixel_diff "$TMP/face.png" "$TMP/s2.png")
    echo "# max |change| at strength 1: $d1, at 2: $d2" >&3
    [ "$d1" -gt 0 ] && [ "$d2" -gt "$d1" ]
    run translate --y2o --ckpt "$CK" --strength 2.5 -i "$FACE" -o "$TMP/x.png"
    [ "$status" -eq 2 ]
    assert_output --partial "--strength: 2.5 is out of range [0, 2]"
    run translate --y2o --ckpt "$CK" --strength 0.5 --raw -i "$FACE" -o "$TMP/x.png"
    [ "$status" -eq 2 ]
}

@test "translate: the output's extension picks the format; one it cannot write exits 2 before any work" {
    "$PY" -c "from PIL import Image; Image.open('$FACE').convert('RGB').save('$TMP/face.png')"
    translate --y2o --ckpt "$CK" --size 32 -i "$TMP/face.png" -o "$TMP/a.JPG"
    translate --y2o --ckpt "$CK" --size 32 -i "$FACE" -o "$TMP/b.Png"
    translate --y2o --ckpt "$CK" --size 32 -i "$FACE" -o "$TMP/noext"
    "$PY" -c "
from PIL import Image
t = '$TMP'
assert [Image.open(t + f).format for f in ('/a.JPG', '/b.Png', '/noext')] == ['JPEG', 'PNG', 'JPEG']"
    for o in x.gif x.webp; do
        run translate --y2o --ckpt "$TMP/missing.safetensors" -i "$FACE" -o "$TMP/$o"
        [ "$status" -eq 2 ]
        assert_output --partial "cannot write"
        [ ! -e "$TMP/$o" ]
    done
    run translate --y2o --face -i "$FACE" -o "$TMP/out.gif"
    [ "$status" -eq 2 ]
}

@test "translate -o FOLDER FILE...: each into the folder, non-pictures skipped, counted and exit 1" {
    mkdir "$TMP/out"
    "$PY" -c "from PIL import Image; Image.open('$FACE').convert('RGB').save('$TMP/p.png')"
    echo "not a picture" > "$TMP/notes.jpg"
    base=$(basename "$FACE" .jpg.chip.jpg)
    run translate --o2y --ckpt "$CK" --size 32 -o "$TMP/out" "$FACE" "$TMP/notes.jpg" "$TMP/p.png"
    [ "$status" -eq 1 ]
    assert_output --partial "translate: 1/3: $FACE -> $TMP/out/${base}_old2young.jpg"
    assert_output --partial "translate: 2/3: $TMP/notes.jpg: skipped"
    assert_output --partial "translate: 1 of 3 files skipped"
    [ -s "$TMP/out/${base}_old2young.jpg" ] && [ -s "$TMP/out/p_old2young.png" ]
    [ ! -e "$TMP/out/notes_old2young.png" ]
    run translate --y2o --ckpt "$CK" --size 32 -o "$TMP/out" "$FACE" "$TMP/p.png"
    assert_success
    run translate --y2o --o2y --ckpt "$CK" -o "$TMP/out" "$FACE" "$TMP/p.png"
    [ "$status" -eq 2 ]
}
