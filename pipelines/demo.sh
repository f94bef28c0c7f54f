#!/usr/bin/env bash
# demo: the data pipeline end to end on the UTKFace images: split, augment
# one training epoch and the validation split, and report what came out.
# (The trainer and inference join this script as they land.)
set -euo pipefail
source "$(dirname "$0")/common.sh"
data=$(find_utkface)
mkdir -p "$OUTPUTS/demo"
echo "demo: UTKFace images in $data"
t0=$(date +%s.%N)
utk-split "$data" --split train --epochs 1 --seed 42 | aug --train --size 256 --seed 7 --dtype bf16 \
    > "$OUTPUTS/demo/train.msgpack"
t1=$(date +%s.%N)
utk-split "$data" --split val --seed 42 -q | aug --eval --size 256 > "$OUTPUTS/demo/val.msgpack"
n=$(/usr/bin/python3 -c '
import msgpack, sys
n = sum(1 for r in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False, max_buffer_size=1 << 30) if r["kind"] == "tensor")
print(n)' "$OUTPUTS/demo/train.msgpack")
echo "demo: $n training tensors (3x256x256 bf16) in $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s -> $OUTPUTS/demo/train.msgpack"
echo "demo: validation tensors -> $OUTPUTS/demo/val.msgpack"
