#!/usr/bin/env bash
# Where a training step or a generator forward spends its CPU time, by op
# class (convolutions, batch norm, activations, Adam, ...): perf record with
# call chains, then bench/profile_ops.py.  Not part of make bench (perf may
# be missing or restricted); for checking what is worth optimising.
#   bench/profile.sh train [size=128] [batch=4]    one warm-up + 1 step
#   bench/profile.sh forward [size=256] [batch=1]  2 warm-ups + 3 forwards
# OMP_NUM_THREADS (default 1: no OpenMP waits on a shared machine), PRECISION
# (default fp32), HZ (sampling rate, default 199).
#
# Measured 2026-12-06 on the 2-core AMD EPYC VM (AVX-512, loaded by other
# jobs), train 128 4, 1 thread, ms of CPU per step (perf at 999 Hz, per
# function), before -> after vectorising the norms and activations
# (lib/cpu/backend-cpu.c): ReLU backward 379 -> 32, ReLU/tanh forward 28 -> 11,
# leaky ReLU 71 -> 68, batch/instance norm forward 246 -> 74, their backward
# 198 -> 86, conv bias sums 80, reflection padding 54 -> 46, Adam 42 -> 46,
# axpy 28 -> 9, losses 7: in all 1131 -> 458 ms next to ~5000 ms of
# convolutions.  The generator forward at 256 (eval): 18 -> 11 ms of ~200.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH_DIR:-$here/../build/bench}
what=${1:-train} hz=${HZ:-199} prec=${PRECISION:-fp32}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
command -v perf >/dev/null || { echo "profile.sh: needs perf (linux-perf)" >&2; exit 1; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
case $what in
train)
    cmd=("$bench/train_step" "${2:-128}" 32 9 32 "${3:-4}" 1 "$prec") root=cyclegan_train_step calls=2 ;;
forward)
    cmd=("$bench/gen_forward" "${2:-256}" 32 9 "${3:-1}" 3 "$prec") root=net_forward calls=5 ;;
*)
    echo "usage: bench/profile.sh train|forward [size] [batch]" >&2
    exit 2 ;;
esac
perf record -q -F "$hz" --call-graph dwarf,16384 -o "$data" "${cmd[@]}"
perf script -i "$data" -F time,ip,sym 2>/dev/null | python3 "$here/profile_ops.py" "$root" "$hz" "$calls"
