#!/usr/bin/env bash
# bench/aug.sh [N]: images/s per core of `aug --train --size 256` next to
# torchvision + PIL doing the same transforms on the same images, same run.
# Not a test: it prints, it never fails on timing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../pipelines/common.sh"
n=${1:-300}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if data=$(find_utkface 2>/dev/null); then
    src="UTKFace ($data)"
else
    data="$tmp/faces"; /usr/bin/python3 "$ROOT/tests/py/faces.py" "$data" 200 200 >/dev/null
    src="generated 200x200 faces"
fi
utk-split "$data" --split train --limit $((n / 2)) -q > "$tmp/img"
count=$(/usr/bin/python3 -c 'import msgpack,sys; print(sum(1 for r in msgpack.Unpacker(open(sys.argv[1],"rb"),raw=False) if r["kind"] == "image"))' "$tmp/img")
best=0
for _ in 1 2 3; do
    t0=$(date +%s%N)
    taskset -c 0 aug --train --size 256 --seed 7 < "$tmp/img" > /dev/null
    t1=$(date +%s%N)
    r=$(awk -v n="$count" -v t=$((t1 - t0)) 'BEGIN{printf "%.1f", n / (t / 1e9)}')
    best=$(awk -v a="$best" -v b="$r" 'BEGIN{print (b > a) ? b : a}')
done
ref=$(taskset -c 0 /usr/bin/python3 "$here/aug_torch.py" "$tmp/img" 256)
echo "aug --train 256px on $count images of $src, one core:"
echo "  aug (C)            $best img/s"
echo "  torchvision + PIL  $ref img/s"
awk -v a="$best" -v b="$ref" 'BEGIN{printf "  ratio              %.2fx (goal >= 2x)\n", a / b}'
