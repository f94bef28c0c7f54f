#!/usr/bin/env bash
# One CycleGAN training step (generators + DX + DY with Adam; 256x256, batch
# 1, ngf 32, 9 blocks, ndf 32 by default): ours vs PyTorch on the CPU
# (/usr/bin/python3, /work/shared/bench/torch_cyclegan_bench.py or its copy
# inline below, 2 threads), measured in the same run; prints both, the ratio
# ours/torch and our GFLOP/s.
#   bench/train_step.sh [size] [steps]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
size=${1:-256} steps=${2:-3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
bin=${BENCH_DIR:-$here/../build/bench}/train_step
ours=$("$bin" "$size" 32 9 32 1 "$steps")
ref=${TORCH_BENCH:-/work/shared/bench/torch_cyclegan_bench.py}
torch_ms=$(/usr/bin/python3 - "$ref" "$size" "$steps" "$OMP_NUM_THREADS" <<'PY'
import json, runpy, subprocess, sys
ref, size, steps, nt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# the shared reference script, CPU, fp32, batch 1; torch threads = OMP_NUM_THREADS
out = subprocess.run([sys.executable, "-c",
    "import sys, torch; torch.set_num_threads(%s); sys.argv = sys.argv[1:]; "
    "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')" % nt,
    ref, "--mode", "train", "--batch", "1", "--img", size, "--precision", "fp32",
    "--device", "cpu", "--steps", steps, "--warmup", "1"],
    check=True, capture_output=True, text=True).stdout
print(json.loads(out.strip().splitlines()[-1])["ms_per_step"])
PY
)
set -- $ours
echo "train_step ${size}x${size} batch 1 ngf32 9 blocks ndf32, ${OMP_NUM_THREADS} threads:" \
  "ours ${2} ms/step (${4} img/s, ${8} GFLOP/s of ${6} GFLOP), torch ${torch_ms} ms/step" \
  "($(awk "BEGIN{printf \"%.3f\", 1000/$torch_ms}") img/s), ratio ours/torch $(awk "BEGIN{printf \"%.2f\", $2/$torch_ms}")"
