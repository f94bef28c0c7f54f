#!/usr/bin/env bash
# demo-train: the training pipeline end to end in minutes on a CPU: a short run
# on UTKFace (or, when there are no UTKFace images, on a small generated
# sample, saying so), then a grid of translated validation faces and an
# aged face from the command line.
set -euo pipefail
source "$(dirname "$0")/common.sh"
export OUTPUTS_DIR=${OUTPUTS_DIR:-$DEFAULT_OUTPUTS/demo-train}
if data=$(find_utkface 2>/dev/null); then
    echo "demo-train: training on the UTKFace images in $data"
    limit=48
else
    data=$DEFAULT_OUTPUTS/demo-sample
    echo "demo-train: no UTKFace images found (see data/README.md); using a small generated sample in $data instead"
    echo "demo-train: (synthetic pictures: the pipeline runs end to end, but the model learns nothing about faces)"
    [ -d "$data" ] || /usr/bin/python3 "$ROOT/tests/py/faces.py" "$data" 40 96 >/dev/null
    limit=32
fi
t0=$(date +%s)
bash "$ROOT/pipelines/train.sh" --data_dir "$data" --output_dir "$OUTPUTS_DIR" --overwrite --num_train_epochs 3 \
    --img_size 64 --ngf 16 --ndf 16 --n_blocks 3 --train_batch_size 4 --limit "$limit" \
    --num_sample_generations_to_save 8 --gen_lr 0.0005 --disc_lr 0.00025
ck=$OUTPUTS_DIR/checkpoints/best.safetensors
utk-split "$data" --split test --limit 8 -q | aug --eval --size 64 | translate --y2o --ckpt "$ck" --grid 8 \
    -o "$OUTPUTS_DIR/images/test_grid.png"
face=$(utk-split "$data" --split test --limit 1 --list -q | head -1 | cut -f1)
translate --y2o --ckpt "$ck" --size 64 -i "$data/$face" -o "$OUTPUTS_DIR/images/aged.png"
cat <<MSG

demo-train: done in $(( $(date +%s) - t0 )) s.
  checkpoints     $OUTPUTS_DIR/checkpoints/ (best.safetensors, last.safetensors)
  sample grids    $OUTPUTS_DIR/images/epoch{1,2,3}.png, test_grid.png (inputs over outputs)
  one aged face   $OUTPUTS_DIR/images/aged.png (from $face)
  metrics         $OUTPUTS_DIR/metrics/ (metrics.jsonl, test_metrics.json, curves.png)
  TensorBoard     tensorboard --logdir $OUTPUTS_DIR/logs
This toy model (64 px, 3 epochs) learns little; to use its checkpoint:
  bin/translate --y2o --ckpt $ck -o old.png FACE.jpg
A real run: pipelines/train.sh --img_size 128 --num_train_epochs 15 (see models/README.md).
MSG
