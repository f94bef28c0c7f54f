#!/usr/bin/env bash
# translate --face alignment recovery: N UTKFace crops (spread through the
# folder in name order) pasted into larger scenes at a random scale
# (0.5-2x), rotation (+-30 degrees) and place (tests/py/face_scenes.py,
# seed 11); translate --face-crop must find each and give back the crop as
# it aligns the plain crop itself.  Prints the detection rate and the mean
# |difference| over the central 140x140 of the 200x200 aligned crops.
# Needs UTKFACE_DIR and a build with dlib.
#   bench/face_align.sh [N]
# Measured 2026-12-06 with N=200 (every 48th file of the 9720 in
# ../shared/data/utkface/UTKFace): dlib found 196 of the 200 plain crops;
# of those 196 scenes, 194 found (99.0%), mean |d| 4.08/255 (median 2.45,
# 90th percentile 7.5, 14 over 10/255: mostly faces whose landmarks differ
# between the two sizes, babies and strong tilts).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-200}
dir=${UTKFACE_DIR:-}
[ -n "$dir" ] && [ -d "$dir" ] || { echo "face_align: set UTKFACE_DIR to the UTKFace images; skipped"; exit 0; }
bin=${BIN_DIR:-$here/../bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total=$(ls "$dir" | grep -c '\.jpg$')
step=$(( total / n > 0 ? total / n : 1 ))
mapfile -t crops < <(ls "$dir" | grep '\.jpg$' | awk -v s="$step" 'NR % s == 11 % s' | head -"$n" | sed "s|^|$dir/|")
/usr/bin/python3 "$here/../tests/py/face_scenes.py" scenes "$tmp/sc" "${#crops[@]}" 11 "${crops[@]}"
export AGING_FACE_TEST_GENERATOR=identity  # the alignment alone: no generator
ck=${AGING_MODEL:-$here/../models/utkface-128.safetensors}
t0=$(date +%s.%N)
"$bin/translate" --y2o --ckpt "$ck" --face-crop --max-faces 1 --no-face ok -o "$tmp/ref.png" "$tmp"/sc/crop-*.png 2>/dev/null
"$bin/translate" --y2o --ckpt "$ck" --face-crop --max-faces 1 --no-face ok -o "$tmp/got.png" "$tmp"/sc/scene-*.png 2>/dev/null
t1=$(date +%s.%N)
/usr/bin/python3 "$here/../tests/py/face_scenes.py" compare "$tmp/ref.png" "$tmp/got.png" | head -1
awk -v a="$t0" -v b="$t1" -v n="${#crops[@]}" 'BEGIN { printf "%d crops and %d scenes in %.1f s\n", n, n, b - a }'
