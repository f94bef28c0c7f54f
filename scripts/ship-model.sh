#!/usr/bin/env bash
# ship-model.sh CKPT RUN_DIR: make the shipped model from a training run.
#   models/utkface-128.safetensors   G and F of CKPT as F16 (kind weights)
#   models/continue-128.safetensors  all four nets of the run's last state as F16, with
#                                    its epoch: `train.sh --init_from` continues from it
#                                    on any machine (fresh Adam moments)
#   models/test-grid-y2o.png, ...o2y young test faces aged, old ones de-aged (raw, model size)
#   models/test-grid-fullres.jpg     test faces, aged and de-aged, as translate returns them
#   models/curves.png, models/metrics.jsonl   the run's curves and validation metrics
#   tests/expected/astronaut_*.png   PyTorch's reference generator on the
#                                    portrait with the same weights (tests/model.bats)
# Needs the UTKFace images (UTKFACE_DIR) for the test grids, and PyTorch.
set -euo pipefail
source "$(dirname "$0")/../pipelines/common.sh"
[ $# -eq 2 ] || { echo "usage: scripts/ship-model.sh CKPT RUN_DIR" >&2; exit 2; }
ckpt=$1 run=$2
data=$(find_utkface)
m=$ROOT/models
mkdir -p "$m" "$ROOT/tests/expected"
ckpt extract --net G,F --dtype f16 "$ckpt" "$m/utkface-128.safetensors"
ckpt extract --net G,F,DX,DY --dtype f16 "$run/checkpoints/last.safetensors" "$m/continue-128.safetensors"
size=$(ckpt_size "$m/utkface-128.safetensors")
for d in y2o:young2old o2y:old2young; do
    utk-split "$data" --split test --limit 8 -q | aug --eval --size "$size" \
        | translate "--${d%%:*}" --ckpt "$m/utkface-128.safetensors" --grid 8 -o "$m/test-grid-${d%%:*}.png"
    /usr/bin/python3 "$ROOT/tests/py/ref_translate.py" run "$m/utkface-128.safetensors" "${d%%:*}" "$size" \
        "$ROOT/data/demo/astronaut.png" "$ROOT/tests/expected/astronaut_${d##*:}.png"
done
bash "$ROOT/scripts/fullres-grid.sh" "$m/utkface-128.safetensors" "$m/test-grid-fullres.jpg" 3
cp "$run/metrics/curves.png" "$m/curves.png"
grep '"phase": "val"' "$run/metrics/metrics.jsonl" > "$m/metrics.jsonl"
ls -la "$m"
