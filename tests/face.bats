#!/usr/bin/env bats
# translate --face: faces found in whole photos (dlib), aligned like UTKFace
# crops, translated and blended back.  The portrait is the public-domain
# data/demo/astronaut-full.png; UTKFace crops (REAL_UTKFACE_DIR) feed the
# alignment-recovery test when they are there, the portrait's crop otherwise.

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
    MODEL=$ROOT/models/utkface-128.safetensors
    PHOTO=$ROOT/data/demo/astronaut-full.png
    CROP=$ROOT/data/demo/astronaut.png
    SC="$TESTS_DIR/py/face_scenes.py"
    unset AGING_MODEL AGING_FACE_TEST_GENERATOR
}

# The tests that find faces need dlib; the first two do not.
need_dlib() {
    local d
    d=$(dirname "$(command -v translate)")
    [ -f "$d/../build/libaging-face.so" ] || [ -f "$d/../libaging-face.so" ] || [ -n "${AGING_FACE_LIB:-}" ] ||
        skip "built without dlib (libdlib-dev)"
    [ -f /usr/share/dlib/shape_predictor_68_face_landmarks.dat ] || skip "no libdlib-data"
}
teardown() { common_teardown; }

# Run translate --face on $1 with the shipped model, into $2 (extra options after).
face() {
    local in=$1 out=$2
    shift 2
    run translate --y2o --ckpt "$MODEL" --face "$@" -i "$in" -o "$out"
}

@test "face: usage errors exit 2" {
    run translate --y2o --face --stream
    assert_failure 2
    assert_output --partial "take one photo"
    run translate --y2o --o2y --face -i "$PHOTO" -o "$TMP/x.png"
    assert_failure 2
    run translate --y2o --face --no-face maybe -i "$PHOTO" -o "$TMP/x.png"
    assert_failure 2
    assert_output --partial "expected ok or fail"
    run translate --y2o --face --max-faces 0 -i "$PHOTO" -o "$TMP/x.png"
    assert_failure 2
    run translate --y2o --face -o "$TMP/x.png" "$PHOTO" "$PHOTO"
    assert_failure 2
}

@test "face: without the dlib library it says so, before anything is written" {
    AGING_FACE_LIB=$TMP/none.so run translate --y2o --ckpt "$MODEL" --face -i "$PHOTO" -o "$TMP/x.png"
    assert_failure 1
    assert_output --partial "translate: --face: face detection needs dlib"
    assert_output --partial "libdlib-dev"
    [ ! -e "$TMP/x.png" ]
}

@test "face: without dlib's landmark model it says so" {
    need_dlib
    AGING_FACE_MODEL=$TMP/none.dat run translate --y2o --ckpt "$MODEL" --face -i "$PHOTO" -o "$TMP/x.png"
    assert_failure 1
    assert_output --partial "the landmark model is missing"
}

@test "face: the portrait comes back the same size and format with only the face changed" {
    need_dlib
    face "$PHOTO" "$TMP/old.png"
    assert_success
    assert_output --partial "face 1 of 1"
    run "$PY" -c "from PIL import Image; i = Image.open('$TMP/old.png'); print(i.format, i.size, i.mode)"
    assert_output "PNG (512, 512) RGB"
    # the face lies around (225, 123), ~107 px wide: far from it nothing moved,
    # on it the model changed something
    run "$PY" "$SC" diff "$PHOTO" "$TMP/old.png" 120,0,340,260
    assert_success
    echo "# $output"
    [[ $output =~ ^outside\ max\ 0\ .*inside\ max\ ([0-9]+)\ mean\ ([0-9.]+)$ ]]
    [ "${BASH_REMATCH[1]}" -ge 8 ]
    # JPEG in, JPEG out (stdout too), unless -o says .png
    "$PY" -c "from PIL import Image; Image.open('$PHOTO').save('$TMP/p.jpg', quality=95)"
    run bash -c "translate --y2o --ckpt '$MODEL' --face < '$TMP/p.jpg' > '$TMP/o.out'"
    assert_success
    # in the JPEG the detector alone also takes the mission patch for a face;
    # its aligned crop fails the second look
    assert_output --partial "face 1 of 1"
    run "$PY" -c "from PIL import Image; print(Image.open('$TMP/o.out').format)"
    assert_output "JPEG"
}

@test "face: with an identity generator the warps and the blend give the photo back within 2/255" {
    need_dlib
    AGING_FACE_TEST_GENERATOR=identity face "$PHOTO" "$TMP/same.png"
    assert_success
    run "$PY" "$SC" diff "$PHOTO" "$TMP/same.png"
    echo "# $output"
    [[ $output =~ ^max\ ([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -le 2 ]
}

@test "face: alignment recovers crops pasted at random scales, angles and places" {
    need_dlib
    local crops=() n
    if [ -n "${REAL_UTKFACE_DIR:-}" ] && [ -d "$REAL_UTKFACE_DIR" ]; then
        # 24 crops spread through the folder (name order)
        mapfile -t crops < <(ls "$REAL_UTKFACE_DIR" | grep '\.jpg$' | awk 'NR % 331 == 7' | head -24 |
                             sed "s|^|$REAL_UTKFACE_DIR/|")
        n=24
    else
        echo "# REAL_UTKFACE_DIR unset: the portrait's crop only" >&3
        crops=("$CROP")
        n=10
    fi
    "$PY" "$SC" scenes "$TMP/sc" "$n" 3 "${crops[@]}"
    export AGING_FACE_TEST_GENERATOR=identity
    run translate --y2o --ckpt "$MODEL" --face-crop --max-faces 1 --no-face ok -o "$TMP/ref.png" "$TMP"/sc/crop-*.png
    assert_success
    run translate --y2o --ckpt "$MODEL" --face-crop --max-faces 1 --no-face ok -o "$TMP/got.png" "$TMP"/sc/scene-*.png
    assert_success
    run "$PY" "$SC" compare "$TMP/ref.png" "$TMP/got.png"
    assert_success
    echo "# ${lines[0]}" >&3
    [[ ${lines[0]} =~ ^detected\ ([0-9]+)\ of\ ([0-9]+),\ mean\ \|d\|\ ([0-9.]+)/255 ]]
    local det=${BASH_REMATCH[1]} tot=${BASH_REMATCH[2]} mean=${BASH_REMATCH[3]}
    [ "$tot" -ge $((n * 9 / 10)) ]       # the plain crops themselves are found
    [ $((det * 100)) -ge $((tot * 95)) ] # >= 95% detected
    "$PY" -c "import sys; sys.exit(0 if $mean <= 6 else 1)"
}

@test "face: several faces, largest first; --max-faces" {
    need_dlib
    "$PY" "$SC" group "$TMP/two.png" "$CROP"
    AGING_FACE_TEST_GENERATOR=identity face "$TMP/two.png" "$TMP/o.png"
    assert_success
    assert_output --partial "face 2 of 2"
    # largest first: the 200 px face at (60, 110) before the 120 px one
    [[ $output =~ face\ 1\ of\ 2:\ ([0-9]+)\ px\ wide\ at\ \(([0-9]+), ]]
    local big=${BASH_REMATCH[1]}
    [ "${BASH_REMATCH[2]}" -lt 330 ]
    [[ $output =~ face\ 2\ of\ 2:\ ([0-9]+)\ px ]]
    [ "$big" -gt "${BASH_REMATCH[1]}" ]
    # with the model and one face, the small face's side is untouched
    face "$TMP/two.png" "$TMP/one.png" --max-faces 1
    assert_success
    assert_output --partial "face 1 of 1"
    run "$PY" "$SC" diff "$TMP/two.png" "$TMP/one.png" 0,0,330,420
    echo "# $output"
    [[ $output =~ ^outside\ max\ 0\ .*inside\ max\ ([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 8 ]
}

@test "face: no face, a face too small to detect: exit 1, nothing written; --no-face ok passes it through" {
    need_dlib
    "$PY" "$SC" tiny "$TMP/tiny.png" "$CROP" 16
    face "$TMP/tiny.png" "$TMP/o.png"
    assert_failure 1
    assert_output --partial "translate: no face found in $TMP/tiny.png"
    [ ! -e "$TMP/o.png" ]
    face "$TMP/tiny.png" "$TMP/o.png" --no-face ok
    assert_success
    cmp "$TMP/tiny.png" "$TMP/o.png"
    # the same face at 60 px is found (in the upsampled copy)
    "$PY" "$SC" tiny "$TMP/small.png" "$CROP" 60
    AGING_FACE_TEST_GENERATOR=identity face "$TMP/small.png" "$TMP/o.png"
    assert_success
    assert_output --partial "face 1 of 1"
}

@test "face: huge photos are refused from their header; corrupt ones fail cleanly" {
    need_dlib
    "$PY" -c "from PIL import Image; Image.new('L', (8000, 7000)).save('$TMP/huge.png')"
    face "$TMP/huge.png" "$TMP/o.png"
    assert_failure 1
    assert_output --partial "over the limit of 50"
    [ ! -e "$TMP/o.png" ]
    head -c 5000 "$PHOTO" > "$TMP/cut.png"
    face "$TMP/cut.png" "$TMP/o.png"
    assert_failure 1
    assert_output --regexp "translate: .*cut.png: "
    [ ! -e "$TMP/o.png" ]
}

@test "face: grey photos stay grey, RGBA keeps its alpha" {
    need_dlib
    "$PY" -c "
from PIL import Image
i = Image.open('$PHOTO')
i.convert('L').save('$TMP/grey.png'); i.convert('L').save('$TMP/grey.jpg', quality=95)
a = i.convert('RGBA'); a.putalpha(Image.linear_gradient('L').resize(i.size)); a.save('$TMP/rgba.png')"
    face "$TMP/grey.png" "$TMP/g.png"
    assert_success
    face "$TMP/grey.jpg" "$TMP/g.jpg"
    assert_success
    face "$TMP/rgba.png" "$TMP/a.png"
    assert_success
    run "$PY" -c "
from PIL import Image, ImageChops
print(Image.open('$TMP/g.png').mode, Image.open('$TMP/g.jpg').mode, Image.open('$TMP/a.png').mode)
print(ImageChops.difference(Image.open('$TMP/a.png').getchannel('A'), Image.open('$TMP/rgba.png').getchannel('A')).getbbox())"
    assert_output "L L RGBA
None"
}

@test "face: EXIF orientation is applied (a face stored turned by 90 degrees is found)" {
    need_dlib
    "$PY" -c "from PIL import Image; Image.open('$PHOTO').convert('RGB').crop((0, 0, 512, 400)).save('$TMP/up.png')"
    for o in 6 8 3; do
        "$PY" "$SC" exif "$TMP/turned$o.jpg" "$TMP/up.png" $o
        AGING_FACE_TEST_GENERATOR=identity face "$TMP/turned$o.jpg" "$TMP/o$o.jpg"
        assert_success
        assert_output --partial "face 1 of 1"
        # upright, as a viewer shows it, and the same picture as the upright PNG
        run "$PY" "$SC" diff "$TMP/up.png" "$TMP/o$o.jpg"
        echo "# $o: $output"
        [[ $output =~ ^max\ [0-9]+\ mean\ ([0-9.]+)$ ]]
        "$PY" -c "import sys; sys.exit(0 if ${BASH_REMATCH[1]} < 3 else 1)"
    done
}

@test "face: --face-crop and --landmarks" {
    need_dlib
    face "$PHOTO" "$TMP/crop.png" --face-crop
    assert_success
    run "$PY" -c "from PIL import Image; i = Image.open('$TMP/crop.png'); print(i.format, i.size)"
    assert_output "PNG (400, 200)"
    run translate --y2o --landmarks -i "$PHOTO" -o "$TMP/lm.png"
    assert_success
    run "$PY" "$SC" diff "$PHOTO" "$TMP/lm.png" 120,0,340,260
    echo "# $output"
    [[ $output =~ ^outside\ max\ 0\ .*inside\ max\ ([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 100 ]
}

@test "face: serve answers a photo whole, as translate --face does; face crops and face=off go the crop way" {
    need_dlib
    command -v curl >/dev/null || skip "no curl"
    start_server "$TMP/serve.log" --ckpt "$MODEL" --threads 1
    local url="$URL/api/translate?direction=young2old"
    curl -sS --max-time 10 "$URL/api/health" > "$TMP/health"
    post() { curl -sS --max-time 120 -o "$TMP/body" -w '%{http_code}' --data-binary @"$1" "$url$2"; }
    local c1 c2 c3 c4 c5
    c1=$(post "$PHOTO" "") ; cp "$TMP/body" "$TMP/photo.png"
    c2=$(post "$CROP" "") ; cp "$TMP/body" "$TMP/crop.png"
    c3=$(post "$PHOTO" "&face=off"); cp "$TMP/body" "$TMP/off.png"
    "$PY" "$SC" tiny "$TMP/tiny.png" "$CROP" 16
    c4=$(post "$TMP/tiny.png" "&face=on"); cp "$TMP/body" "$TMP/none.json"
    c5=$(post "$PHOTO" "&face=maybe")
    stop_server "$SERVER_PID"
    grep -q '"face":"auto"' "$TMP/health"
    [ "$c1 $c2 $c3 $c4 $c5" = "200 200 200 422 400" ]
    grep -q "no face found" "$TMP/none.json"
    translate --y2o --ckpt "$MODEL" --face -i "$PHOTO" -o "$TMP/t-photo.png" 2>/dev/null
    cmp "$TMP/photo.png" "$TMP/t-photo.png"
    translate --y2o --ckpt "$MODEL" -i "$CROP" -o "$TMP/t-crop.png" 2>/dev/null
    cmp "$TMP/crop.png" "$TMP/t-crop.png"
    translate --y2o --ckpt "$MODEL" -i "$PHOTO" -o "$TMP/t-off.png" 2>/dev/null
    cmp "$TMP/off.png" "$TMP/t-off.png"
}

@test "face: infer.sh --face writes NAME_young2old.jpg beside a JPEG photo" {
    need_dlib
    "$PY" -c "from PIL import Image; Image.open('$PHOTO').convert('RGB').save('$TMP/me.jpg', quality=95)"
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/me.jpg" --face --max_faces 1 --ckpt "$MODEL"
    assert_success
    assert_output --partial "infer.sh: wrote $TMP/me_young2old.jpg"
    run "$PY" -c "from PIL import Image; i = Image.open('$TMP/me_young2old.jpg'); print(i.format, i.size)"
    assert_output "JPEG (512, 512)"
    run bash "$ROOT/pipelines/infer.sh" --input "$TMP/me.jpg" --max_faces 1
    assert_failure 2
}

@test "face: a crowd of over 64 faces has every face changed; --max-faces N says how many it left; serve changes 16 and says how many it skipped, and its search keeps to --face-time" {
    need_dlib
    "$PY" - "$CROP" "$TMP/crowd.png" "$TMP/noise.png" <<'PY'
import os, sys
from PIL import Image
crop = Image.open(sys.argv[1]).convert("RGB").resize((120, 120))
im = Image.new("RGB", (9 * 120, 9 * 120), (128, 128, 128))
for i in range(81):
    im.paste(crop, ((i % 9) * 120, (i // 9) * 120))
im.save(sys.argv[2])
Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3)).save(sys.argv[3])
PY
    export AGING_FACE_TEST_GENERATOR=identity
    run translate --y2o --ckpt "$MODEL" --face -i "$TMP/crowd.png" -o "$TMP/crowd-out.png"
    assert_success
    [[ ${lines[-1]} =~ face\ ([0-9]+)\ of\ ([0-9]+) ]]
    echo "# translate --face: ${BASH_REMATCH[2]} of 81 faces found and changed" >&3
    [ "${BASH_REMATCH[2]}" -gt 64 ] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
    local found=${BASH_REMATCH[2]}
    run translate --y2o --ckpt "$MODEL" --face --max-faces 3 -i "$TMP/crowd.png" -o "$TMP/crowd-3.png"
    assert_success
    assert_output --partial "$found faces found, the 3 largest changed (--max-faces 3)"
    unset AGING_FACE_TEST_GENERATOR
    start_server "$TMP/serve.log" --ckpt "$MODEL" --threads 1 --face-time 0.05
    curl -sS --max-time 300 -D "$TMP/h" -o "$TMP/crowd.out" --data-binary @"$TMP/crowd.png" \
        "$URL/api/translate?direction=young2old&face=on"
    code=$(curl -sS --max-time 120 -o "$TMP/noise.json" -w '%{http_code}' --data-binary @"$TMP/noise.png" \
        "$URL/api/translate?direction=young2old&face=on")
    stop_server "$SERVER_PID"
    grep -q '^HTTP/1.1 200' "$TMP/h"
    grep -qi "^X-Faces-Skipped: $((found - 16))" "$TMP/h"
    [ "$code" = 422 ]
    grep -q "within the search's time limit" "$TMP/noise.json"
}
