#!/usr/bin/env bats
# aug: transforms against torchvision, pipes, files, ZeroMQ fan-in, bad input.

load helpers

setup() { common_setup; FACES=$(faces_dir); }
teardown() { common_teardown; }

@test "aug: --help exits 0, bad options exit 2" {
    run aug --help
    assert_success
    assert_output --partial "usage: aug"
    run aug
    assert_failure 2
    assert_output --partial "choose --train or --eval"
    run aug --eval --dtype f64
    assert_failure 2
    run aug --eval --size 3
    assert_failure 2
}

@test "aug: --eval through pipes gives 3xSxS tensors in [-1,1] with metadata kept" {
    utk-split --split all -q "$FACES" | aug --eval --size 32 | summary > "$TMP/s"
    [ "$(grep -c '"kind": "tensor"' "$TMP/s")" -eq 26 ]
    grep -q '"kind": "epoch"' "$TMP/s"
    "$PY" - "$TMP/s" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] != "tensor": continue
    assert r["shape"] == [3, 32, 32] and r["dtype"] == "f32", r
    assert -1 <= r["min"] <= r["max"] <= 1, r
    assert {"id", "age", "domain", "split"} <= set(r), r
    assert "bytes" not in r and "encoding" not in r, r
PY
}

@test "aug: --eval equals torchvision Resize+CenterCrop+Normalize" {
    has_torch || skip "no torch"
    utk-split --split all -q "$FACES" > "$TMP/img"
    aug --eval --size 40 < "$TMP/img" > "$TMP/out"
    run "$PY" "$TESTS_DIR/py/aug_ref.py" eval 40 0 "$TMP/img" "$TMP/out"
    echo "# $output" >&3
    assert_success
}

@test "aug: non-square images are squashed to a square as the reference's Resize((R, R)); --keep-aspect keeps the ratio" {
    has_torch || skip "no torch"
    "$PY" - "$TMP/wide" "$FACES" <<'PY'
import glob, os, sys
from PIL import Image
os.makedirs(sys.argv[1])
for i, f in enumerate(sorted(glob.glob(sys.argv[2] + "/*.chip.jpg"))):
    w, h = [(90, 40), (40, 90), (61, 47), (48, 48)][i % 4]
    Image.open(f).resize((w, h)).save(sys.argv[1] + "/" + os.path.basename(f))
PY
    utk-split --split all -q "$TMP/wide" > "$TMP/img"
    aug --eval --size 32 < "$TMP/img" > "$TMP/out"
    run "$PY" "$TESTS_DIR/py/aug_ref.py" eval 32 0 "$TMP/img" "$TMP/out"
    echo "# $output" >&3
    assert_success
    aug --train --size 32 --seed 3 < "$TMP/img" > "$TMP/out"
    run "$PY" "$TESTS_DIR/py/aug_ref.py" train 32 3 "$TMP/img" "$TMP/out"
    assert_success
    aug --eval --size 32 --keep-aspect < "$TMP/img" > "$TMP/out"
    KEEP_ASPECT=1 run "$PY" "$TESTS_DIR/py/aug_ref.py" eval 32 0 "$TMP/img" "$TMP/out"
    assert_success
    run "$PY" "$TESTS_DIR/py/aug_ref.py" eval 32 0 "$TMP/img" "$TMP/out"
    assert_failure # the two framings differ on these images
}

@test "aug: --train equals torchvision's random transforms under the same seed" {
    has_torch || skip "no torch"
    utk-split --split train -q "$FACES" > "$TMP/img"
    aug --train --size 32 --seed 7 < "$TMP/img" > "$TMP/out"
    run "$PY" "$TESTS_DIR/py/aug_ref.py" train 32 7 "$TMP/img" "$TMP/out"
    echo "# $output" >&3
    assert_success
}

@test "aug: same seed same output, another seed another output" {
    utk-split --split train -q "$FACES" > "$TMP/img"
    aug --train --size 32 --seed 1 < "$TMP/img" > "$TMP/a"
    aug --train --size 32 --seed 1 < "$TMP/img" > "$TMP/b"
    aug --train --size 32 --seed 2 < "$TMP/img" > "$TMP/c"
    cmp "$TMP/a" "$TMP/b"
    run cmp -s "$TMP/a" "$TMP/c"
    assert_failure
}

@test "aug: f16, bf16 and u8 outputs agree with f32" {
    utk-split --split val -q "$FACES" > "$TMP/img"
    for dt in f32 f16 bf16 u8; do aug --eval --size 24 --dtype $dt < "$TMP/img" | summary > "$TMP/$dt"; done
    grep -q '"dtype": "bf16"' "$TMP/bf16"
    "$PY" - "$TMP" <<'PY'
import json, sys
load = lambda n: [r for r in map(json.loads, open(sys.argv[1] + "/" + n)) if r["kind"] == "tensor"]
f32, f16, bf16, u8 = load("f32"), load("f16"), load("bf16"), load("u8")
for a, b, c, d in zip(f32, f16, bf16, u8):
    assert abs(a["mean"] - b["mean"]) < 1e-3 and abs(a["mean"] - c["mean"]) < 1e-2, (a, b, c)
    assert abs((a["mean"] + 1) * 127.5 - d["mean"]) < 0.01, (a, d)
PY
}

@test "aug: reads a stream written by Python and writes files atomically" {
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$FACES"/*.jpg.chip.jpg > "$TMP/py.msgpack"
    aug --eval --size 16 --in "$TMP/py.msgpack" --out "$TMP/out.msgpack"
    run summary < "$TMP/out.msgpack"
    assert_output --partial '"note": {"from": "python"}'
    [ "$(summary < "$TMP/out.msgpack" | wc -l)" -eq "$(ls "$FACES"/*.jpg.chip.jpg | wc -l)" ]
    [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]
}

@test "aug: two producers feed one consumer over ZeroMQ" {
    utk-split --split train -q "$FACES" > "$TMP/img"
    ep="ipc://$TMP/feed"
    # the consumer binds and counts two end records; it accepts u8 tensors
    aug --eval --size 16 --in "@$ep" --producers 2 > "$TMP/out" &
    cons=$!
    aug --train --size 24 --seed 1 --dtype u8 --out "$ep" < "$TMP/img" &
    p1=$!
    aug --train --size 24 --seed 2 --dtype u8 --out "$ep" < "$TMP/img"
    wait $p1
    wait $cons
    [ "$(summary < "$TMP/out" | grep -c '"kind": "tensor"')" -eq 40 ]
    [ "$(summary < "$TMP/out" | grep -c '"shape": \[3, 16, 16\]')" -eq 40 ]
}

@test "aug: over tcp with a bound consumer" {
    port=$(( 20000 + RANDOM % 20000 ))
    utk-split --split val -q "$FACES" > "$TMP/img"
    aug --eval --size 16 --in "tcp://*:$port" > "$TMP/out" &
    cons=$!
    aug --eval --size 20 --dtype u8 --out "tcp://127.0.0.1:$port" < "$TMP/img"
    wait $cons
    [ "$(summary < "$TMP/out" | grep -c '"kind": "tensor"')" -eq 2 ]
}

@test "aug: a corrupt JPEG exits 1 naming the record" {
    head -c 300 "$(ls "$FACES"/*.chip.jpg | head -1)" > "$TMP/bad.jpg"
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$TMP/bad.jpg" > "$TMP/s"
    run timeout 10 aug --eval < "$TMP/s"
    assert_failure 1
    assert_output --regexp "^aug: record 1 bad.jpg: .*JPEG"
}

@test "aug: a truncated PNG exits 1" {
    "$PY" -c 'from PIL import Image; Image.new("RGB",(30,30),(9,9,9)).save("'"$TMP"'/x.png")'
    head -c 60 "$TMP/x.png" > "$TMP/t.png"
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$TMP/t.png" > "$TMP/s"
    run timeout 10 aug --eval < "$TMP/s"
    assert_failure 1
    assert_output --partial "aug: record 1 t.png:"
}

@test "aug: a truncated stream and non-msgpack bytes exit 1 with the record number" {
    utk-split --split val -q "$FACES" > "$TMP/img"
    head -c $(( $(stat -c %s "$TMP/img") - 100 )) "$TMP/img" > "$TMP/trunc"
    run timeout 10 aug --eval --size 16 --out "$TMP/o" < "$TMP/trunc"
    assert_failure 1
    assert_output --partial "aug: record 3: truncated" # a split record, a face, then the cut one
    [ ! -e "$TMP/o" ]
    [ -z "$(ls "$TMP" | grep '\.tmp\.')" ]
    run timeout 10 aug --eval <<< "hello, this is not msgpack"
    assert_failure 1
    assert_output --partial "aug: record 1: not a msgpack map"
    run bash -c "head -c 5000 /dev/urandom | timeout 10 aug --eval"
    assert_failure 1
    assert_output --partial "aug: record 1:"
}

@test "aug: tensor records with a wrong shape, dtype or length exit 1" {
    for k in shape dtype length; do
        "$PY" "$TESTS_DIR/py/streamtool.py" bad-tensor $k > "$TMP/s"
        run timeout 10 aug --eval --size 8 < "$TMP/s"
        assert_failure 1
        assert_output --partial "aug: record 1 x:"
    done
    run bash -c "'$PY' '$TESTS_DIR/py/streamtool.py' tensors 1 8 | aug --eval --size 8"
    assert_failure 1
    assert_output --partial "u8 tensors"
}

@test "aug: an unreachable endpoint fails within the timeout, no hang" {
    utk-split --split val -q "$FACES" > "$TMP/img"
    AGING_STREAM_TIMEOUT=1 run timeout 20 aug --eval --size 16 --out tcp://127.0.0.1:9 < "$TMP/img"
    assert_failure 1
    assert_output --partial "no consumer took the data within 1 s"
    AGING_STREAM_TIMEOUT=1 run timeout 20 aug --eval --in tcp://127.0.0.1:9
    assert_failure 1
    assert_output --partial "nothing received within 1 s"
    run timeout 20 aug --eval --in tcp://nohost.invalid:x
    assert_failure 1
    assert_output --partial "cannot connect"
}

@test "aug: real UTKFace images through the train pipeline (UTKFACE_DIR)" {
    [ -n "${UTKFACE_DIR:-}" ] && [ -d "$UTKFACE_DIR" ] || skip "UTKFACE_DIR not set"
    utk-split "$UTKFACE_DIR" --split val --limit 6 -q > "$TMP/img"
    aug --train --size 256 --seed 7 < "$TMP/img" > "$TMP/out"
    [ "$(summary < "$TMP/out" | grep -c '"shape": \[3, 256, 256\]')" -eq 12 ]
    if has_torch; then
        run "$PY" "$TESTS_DIR/py/aug_ref.py" train 256 7 "$TMP/img" "$TMP/out"
        echo "# real faces: $output" >&3
        assert_success
    fi
}

@test "aug: each epoch record reseeds, so a resumed stream repeats its draws" {
    utk-split --split train --epochs 3 -q "$FACES" | aug --train --size 24 --seed 5 > "$TMP/full"
    utk-split --split train --epochs 3 --start-epoch 3 -q "$FACES" | aug --train --size 24 --seed 5 > "$TMP/tail"
    cmp <(tail -c "$(stat -c %s "$TMP/tail")" "$TMP/full") "$TMP/tail"
}

@test "aug: --shard K/N splits the images among N workers without loss or overlap" {
    utk-split --split train -q "$FACES" > "$TMP/img"
    for k in 0 1 2; do aug --eval --size 16 --shard $k/3 < "$TMP/img" | summary; done \
        | grep '"kind": "tensor"' | "$PY" -c 'import json,sys; print(" ".join(sorted(json.loads(l)["id"] for l in sys.stdin)))' > "$TMP/sharded"
    aug --eval --size 16 < "$TMP/img" | summary | grep '"kind": "tensor"' \
        | "$PY" -c 'import json,sys; print(" ".join(sorted(json.loads(l)["id"] for l in sys.stdin)))' > "$TMP/whole"
    cmp "$TMP/sharded" "$TMP/whole"
    run aug --eval --shard 3/3
    assert_failure 2
}

# Peak RSS (KB) and seconds of aug --eval on one image record, in $cost_kb and $cost_s.
aug_cost() {  # file [aug options]
    local f=$1; shift
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$f" > "$TMP/one.rec"
    run /usr/bin/time -f "%M %e" -o "$TMP/cost" aug --eval --size 64 "$@" --out /dev/null < "$TMP/one.rec"
    read -r cost_kb cost_s < <(tail -1 "$TMP/cost") # after "Command exited with ..."
    echo "# $(basename "$f") $*: $cost_kb KB, $cost_s s: $output" >&3
}

@test "aug: a small JPEG that declares a large image, or repeats its scans, is refused at a small cost" {
    H=$TESTS_DIR/py/hostile_jpeg.py
    "$PY" "$H" huge "$TMP/huge.jpg" 8000 8000                # 631 bytes: 195 MB, 1.1 s before
    "$PY" "$H" huge "$TMP/huge-prog.jpg" 4000 4000 progressive   # 519 bytes
    "$PY" "$H" scans "$TMP/scans.jpg" 3000                    # 37 KB of empty AC scans
    "$PY" "$H" scans "$TMP/refine.jpg" 6000 refine            # 74 KB: 16 s before
    aug_cost "$TMP/huge.jpg"
    assert_failure 1
    assert_output --partial "8000x8000 exceeds the limit of 16777216 pixels"
    [ "$cost_kb" -lt 40000 ]
    aug_cost "$TMP/huge.jpg" --max-pixels 67108864   # allowed: the missing data stops it
    assert_failure 1
    assert_output --partial "premature end of data segment"
    [ "$cost_kb" -lt 40000 ]
    aug_cost "$TMP/huge-prog.jpg"
    assert_failure 1
    assert_output --partial "premature end of data segment"
    [ "$cost_kb" -lt 40000 ]
    aug_cost "$TMP/scans.jpg"
    assert_failure 1
    assert_output --partial "more than 100 scans"
    awk -v s="$cost_s" 'BEGIN { exit !(s < 1.5) }'
    aug_cost "$TMP/refine.jpg"
    assert_failure 1
    assert_output --partial "inconsistent progression"
    awk -v s="$cost_s" 'BEGIN { exit !(s < 1.5) }'
    run aug --eval --max-pixels 0
    assert_failure 2
}

@test "aug: a large JPEG is decoded at a reduced scale (DCT scaling): a fraction of the memory, the same picture" {
    "$PY" - "$TMP/big.jpg" <<'PY'
import sys
from PIL import Image
Image.linear_gradient("L").resize((3000, 2000)).convert("RGB").save(sys.argv[1], quality=90)
Image.linear_gradient("L").resize((200, 200)).convert("RGB").save(sys.argv[1] + ".small.jpg", quality=90)
PY
    # the memory over a 200x200 chip's (the tool's own, and a sanitizer's, whatever it is)
    aug_cost "$TMP/big.jpg.small.jpg"
    assert_success
    base_kb=$cost_kb
    aug_cost "$TMP/big.jpg"   # 3000x2000 x 3 bytes would be 18 MB of pixels alone
    assert_success
    echo "# big.jpg over a chip: $((cost_kb - base_kb)) KB" >&3
    [ $((cost_kb - base_kb)) -lt 9000 ]
    "$PY" "$TESTS_DIR/py/streamtool.py" images "$TMP/big.jpg" | aug --eval --size 64 --dtype u8 > "$TMP/t"
    "$PY" - "$TMP/big.jpg" "$TMP/t" <<'PY'
import sys, msgpack, numpy as np
from PIL import Image
rec = next(iter(msgpack.Unpacker(open(sys.argv[2], "rb"), raw=False)))
got = np.frombuffer(rec["data"], np.uint8).reshape(3, 64, 64).astype(int)
im = Image.open(sys.argv[1]).convert("RGB").resize((77, 77), Image.BILINEAR)  # the full decode, resized
want = np.asarray(im.crop((6, 6, 70, 70))).transpose(2, 0, 1).astype(int)
d = np.abs(got - want)
print("# reduced vs full decode: max |d| %d, mean %.3f" % (d.max(), d.mean()))
assert d.max() <= 6 and d.mean() < 1.5
PY
}
