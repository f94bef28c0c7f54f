#!/usr/bin/env bash
# Generator forward latency (eval, batch 1, 256x256, ngf 32, 9 blocks): ours vs
# PyTorch 1.13 on the CPU (/usr/bin/python3, 2 threads, no_grad), measured in
# the same run; prints both, the ratio ours/torch and our GFLOP/s.
#   bench/translate.sh [size] [runs]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
size=${1:-256} runs=${2:-10}
bin=${BENCH_DIR:-$here/../build/bench}/gen_forward
ours=$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$bin" "$size" 32 9 1 "$runs")
torch_ms=$(/usr/bin/python3 - "$size" "$runs" <<'PY'
import sys, time, statistics
import torch, torch.nn as nn
sys.path.insert(0, sys.argv[0] and "")
size, runs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(2)
def res(c):
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c), nn.ReLU(),
                         nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.BatchNorm2d(c))
class Res(nn.Module):
    def __init__(s, c):
        super().__init__(); s.conv_block = res(c)
    def forward(s, x):
        return x + s.conv_block(x)
m = [nn.ReflectionPad2d(3), nn.Conv2d(3, 32, 7), nn.BatchNorm2d(32), nn.ReLU()]
c = 32
for _ in range(2):
    m += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU()]; c *= 2
m += [Res(c) for _ in range(9)]
for _ in range(2):
    m += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
          nn.BatchNorm2d(c // 2), nn.ReLU()]; c //= 2
m += [nn.ReflectionPad2d(3), nn.Conv2d(32, 3, 7), nn.Tanh()]
G = nn.Sequential(*m).eval()
x = torch.rand(1, 3, size, size) * 2 - 1
ts = []
with torch.no_grad():
    for _ in range(2):
        G(x)
    for _ in range(runs):
        t0 = time.perf_counter(); G(x); ts.append(time.perf_counter() - t0)
print("%.1f" % (statistics.median(ts) * 1e3))
PY
)
set -- $ours
echo "gen_forward ${size}x${size} ngf32 9 blocks batch 1: ours ${2} ms (${6} GFLOP/s, ${4} GFLOP), torch ${torch_ms} ms, ratio $(awk "BEGIN{printf \"%.2f\", $2/$torch_ms}")"
