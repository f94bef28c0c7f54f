#!/usr/bin/env bash
# demo: the shipped model ages and de-ages faces, in seconds, with nothing
# but the tools: the public-domain portrait in data/demo/, plus a few faces
# of the UTKFace test split when UTKFACE_DIR (or data/) has the images.
# Writes one grid (faces on top, aged below, de-aged at the bottom; the
# model's own images) and the single results at the portrait's full size,
# then says where they are.  `make demo-train` is the short
# training run instead.
set -euo pipefail
source "$(dirname "$0")/common.sh"
out=${OUTPUTS_DIR:-$DEFAULT_OUTPUTS}/demo
model=${AGING_MODEL:-$ROOT/models/utkface-128.safetensors}
[ -f "$model" ] || [ -n "${AGING_MODEL:-}" ] || model=$ROOT/utkface-128.safetensors # installed
[ -f "$model" ] || { echo "demo: no model at $model (the repository ships models/utkface-128.safetensors)" >&2; exit 1; }
mkdir -p "$out"
t0=$(date +%s.%N)
faces=("$ROOT/data/demo/astronaut.png")
if data=$(find_utkface 2>/dev/null); then
    # three young and three old faces of the test split: never seen in training
    while IFS=$'\t' read -r id _ _ _; do faces+=("$data/$id"); done \
        < <(utk-split "$data" --split test --limit 3 --list -q)
    echo "demo: the portrait and $(( ${#faces[@]} - 1 )) UTKFace test faces from $data"
else
    echo "demo: the portrait in data/demo/ (set UTKFACE_DIR to add faces of the UTKFace test split)"
fi
translate --y2o --o2y --ckpt "$model" -o "$out/grid.png" "${faces[@]}"
translate --y2o --ckpt "$model" -o "$out/astronaut_young2old.png" "${faces[0]}"
translate --o2y --ckpt "$model" -o "$out/astronaut_old2young.png" "${faces[0]}"
# The whole photo: the face found, aligned, aged and put back (dlib).
photo=$ROOT/data/demo/astronaut-full.png
if translate --y2o --face --ckpt "$model" -o "$out/photo_young2old.png" "$photo" 2>"$out/face.log"; then
    face_line="whole photo     $out/photo_young2old.png  (translate --face on $photo)"
    rm -f "$out/face.log"
elif grep -q "needs dlib" "$out/face.log"; then
    face_line="whole photo     skipped: $(tail -1 "$out/face.log")"
else
    cat "$out/face.log" >&2
    exit 1
fi
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
cat <<MSG

demo: done in $secs s with the shipped model ($model).
  grid            $out/grid.png  (faces on top, aged below, de-aged at the bottom; 128 px)
  single results  $out/astronaut_young2old.png, $out/astronaut_old2young.png  (full size)
  $face_line
Your own face:    bin/translate --y2o -o old.jpg FACE.jpg   (a cropped, centred face, at its size; see models/README.md)
Any photo:        bin/translate --y2o --face -o old.jpg PHOTO.jpg   (finds, ages and pastes back every face)
MSG
