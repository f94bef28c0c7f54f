#!/usr/bin/env bash
# cyclegan-step's work: one CycleGAN training step (generators, then DX,
# then DY, with Adam; ngf 32, 9 blocks, ndf 32) at the shipped model's
# training shape, 128x128 batch 4, with our convolutions in fp32 and in
# bf16, against PyTorch 1.13's fp32 and bf16 autocast
# (torch_cyclegan_bench.py --mode train) at 1 thread and at every core,
# alternating in each round (see bench/common.sh).  Prints a table row per
# precision and thread count and the speed-up from 1 thread to all (fp32
# only: PRECISIONS_1T="fp32 bf16" adds bf16 at 1 thread).  A step takes
# seconds, so each side runs a warm-up step and one timed step per round;
# two rounds, since one round on a loaded machine can be off by 4x.
# BASE_BIN=path/to/another/train_step adds its fp32 times as "base" rows
# (e.g. a build of an older commit).
#   bench/train_step.sh [size=128] [batch=4] [steps=1] [rounds=2]
# PRECISIONS="fp32 bf16" and THREADS="1 2" choose the rows.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
size=${1:-128} batch=${2:-4} steps=${3:-1} rounds=${4:-2}
# shellcheck disable=SC2034  # read by compare and report (common.sh)
precs=${PRECISIONS:-fp32 bf16} threads=${THREADS:-$(bench_threads)} precs1=${PRECISIONS_1T:-fp32}
ours_run() { OMP_NUM_THREADS=$1 "$BENCH_DIR/train_step" "$size" 32 9 32 "$batch" "$steps" "$2"; }
base_run() { OMP_NUM_THREADS=$1 "$BASE_BIN" "$size" 32 9 32 "$batch" "$steps"; }
torch_run() { torch_ms "$1" "$2" --mode train --batch "$batch" --img "$size" --warmup 1 --steps "$steps"; }
compare "$rounds"
report "train step ${size}² batch $batch"
