#!/usr/bin/env bash
# One CycleGAN training step (generators + DX + DY with Adam; 256x256, batch
# 1, ngf 32, 9 blocks, ndf 32): ours (build/bench/train_step) vs PyTorch on
# the CPU (/usr/bin/python3 running /work/shared/bench/torch_cyclegan_bench.py,
# fp32, same thread count), measured in the same run.  The two alternate for
# a few rounds and each keeps its best round (a shared machine's other load
# shows up as slower rounds).  Prints both, images/s, the ratio ours/torch
# and our GFLOP/s.
# BASE_BIN=path/to/another/train_step adds a third contender (e.g. a build of
# an older commit) to every round, reported as before/after.
#   bench/train_step.sh [size=256] [steps=2] [rounds=2]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
size=${1:-256} steps=${2:-2} rounds=${3:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
bin=${BENCH_DIR:-$here/../build/bench}/train_step
ref=${TORCH_BENCH:-/work/shared/bench/torch_cyclegan_bench.py}
torch_step() {
    /usr/bin/python3 - "$ref" "$size" "$steps" "$OMP_NUM_THREADS" <<'PY'
import json, subprocess, sys
ref, size, steps, nt = sys.argv[1:5]
out = subprocess.run([sys.executable, "-c",
    "import sys, torch; torch.set_num_threads(%s); sys.argv = sys.argv[1:]; "
    "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')" % nt,
    ref, "--mode", "train", "--batch", "1", "--img", size, "--precision", "fp32",
    "--device", "cpu", "--steps", steps, "--warmup", "1"],
    check=True, capture_output=True, text=True).stdout
print(json.loads(out.strip().splitlines()[-1])["ms_per_step"])
PY
}
best_ours= best_torch= best_base= line=
for r in $(seq "$rounds"); do
    if [ -n "${BASE_BIN:-}" ]; then
        set -- $("$BASE_BIN" "$size" 32 9 32 1 "$steps")
        echo "# round $r: base $2 ms" >&2
        if [ -z "$best_base" ] || awk "BEGIN{exit !($2 < $best_base)}"; then best_base=$2; fi
    fi
    o=$("$bin" "$size" 32 9 32 1 "$steps")
    t=$(torch_step)
    set -- $o
    echo "# round $r: ours $2 ms, torch $t ms" >&2
    if [ -z "$best_ours" ] || awk "BEGIN{exit !($2 < $best_ours)}"; then best_ours=$2 line=$o; fi
    if [ -z "$best_torch" ] || awk "BEGIN{exit !($t < $best_torch)}"; then best_torch=$t; fi
done
set -- $line
echo "train_step ${size}x${size} batch 1 ngf32 9 blocks ndf32, ${OMP_NUM_THREADS} threads, best of $rounds:" \
  "ours ${2} ms/step ($(awk "BEGIN{printf \"%.3f\", 1000/$2}") img/s, $(awk "BEGIN{printf \"%.1f\", $6*1000/$2}") GFLOP/s of ${6} GFLOP)," \
  "torch ${best_torch} ms/step ($(awk "BEGIN{printf \"%.3f\", 1000/$best_torch}") img/s)," \
  "ratio ours/torch $(awk "BEGIN{printf \"%.2f\", $2/$best_torch}")"
if [ -n "$best_base" ]; then
    echo "base ${best_base} ms/step ($(awk "BEGIN{printf \"%.3f\", 1000/$best_base}") img/s)," \
      "ratio base/torch $(awk "BEGIN{printf \"%.2f\", $best_base/$best_torch}"), speedup base/ours $(awk "BEGIN{printf \"%.2f\", $best_base/$2}")"
fi
