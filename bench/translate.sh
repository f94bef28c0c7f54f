#!/usr/bin/env bash
# translate's work: one generator forward (eval, batch 1, ngf 32, 9 blocks,
# 256x256 by default) with our convolutions in fp32 and in bf16, against
# PyTorch 1.13's fp32 and bf16 autocast (torch_cyclegan_bench.py --mode
# infer) at 1 thread and at every core, alternating in each round (see
# bench/common.sh).  Prints a table row per precision and thread count and
# the speed-up from 1 thread to all.
#   bench/translate.sh [size=256] [runs=3] [rounds=2]
# PRECISIONS="fp32 bf16" and THREADS="1 2" choose the rows.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
size=${1:-256} runs=${2:-3} rounds=${3:-2}
# shellcheck disable=SC2034  # read by compare and report (common.sh)
precs=${PRECISIONS:-fp32 bf16} threads=${THREADS:-$(bench_threads)}
ours_run() { OMP_NUM_THREADS=$1 "$BENCH_DIR/gen_forward" "$size" 32 9 1 "$runs" "$2"; }
torch_run() { torch_ms "$1" "$2" --mode infer --batch 1 --img "$size" --warmup 1 --steps "$runs"; }
compare "$rounds"
report "translate ${size}² batch 1"
