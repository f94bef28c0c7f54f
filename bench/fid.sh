#!/usr/bin/env bash
# FID feature extraction throughput: images/s of `fid` (stream of N f32 tensor
# records 3x256x256 -> resize to 299 -> FID Inception pool3 -> statistics)
# against PyTorch 1.13 (/usr/bin/python3, same module tree and weights, same
# resize, no_grad, batches of 8, 2 threads) measured in the same run.  Random
# weights (tests/py/ref_fid.py); timing does not depend on their values.
#   bench/fid.sh [N]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-32}
bin=${BIN_DIR:-$here/../bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
/usr/bin/python3 "$here/../tests/py/ref_fid.py" weights "$tmp/w.pth" 0
"$bin/ckpt" import "$tmp/w.pth" "$tmp/w.safetensors" >/dev/null
/usr/bin/python3 "$here/../tests/py/streamtool.py" tensors "$n" 256 > "$tmp/s"
# whole runs (start-up and weight loading included) of n and 8 images; the
# difference is the steady-state cost of n-8 images
t() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
head8=$(/usr/bin/python3 - "$tmp/s" <<'PY'
import sys, msgpack
out = open(sys.argv[1] + ".8", "wb")
for i, r in enumerate(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)):
    if i < 8:
        out.write(msgpack.packb(r, use_bin_type=True))
print(sys.argv[1] + ".8")
PY
)
full=$(t "$bin/fid" --weights "$tmp/w.safetensors" --save-stats "$tmp/x.stats" --in "$tmp/s")
part=$(t "$bin/fid" --weights "$tmp/w.safetensors" --save-stats "$tmp/y.stats" --in "$head8")
ours=$(echo "($n - 8) / ($full - $part)" | bc -l)
torch_ips=$(/usr/bin/python3 - "$tmp/w.pth" "$n" "$here/../tests/py" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[3])
import torch
import torch.nn.functional as F
from ref_fid import build, pool3
torch.set_num_threads(2)
net = build(0)
net.load_state_dict(torch.load(sys.argv[1]))
net.eval()
n = int(sys.argv[2])
x = torch.rand(n, 3, 256, 256) * 2 - 1
with torch.no_grad():
    pool3(net, F.interpolate(x[:8] * 0.5 + 0.5, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1)
    t0 = time.perf_counter()
    for i in range(0, n, 8):
        b = x[i:i + 8] * 0.5 + 0.5
        pool3(net, 2 * F.interpolate(b, size=(299, 299), mode="bilinear", align_corners=False) - 1)
    print("%.3f" % (n / (time.perf_counter() - t0)))
PY
)
printf 'fid features 256->299, %d images, %s threads: ours %.2f images/s (%.0f ms/image), torch %.2f images/s, ratio ours/torch %.2f\n' \
    "$n" "$OMP_NUM_THREADS" "$ours" "$(echo "1000 / $ours" | bc -l)" "$torch_ips" "$(echo "$ours / $torch_ips" | bc -l)"
