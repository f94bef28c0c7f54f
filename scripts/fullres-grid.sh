#!/usr/bin/env bash
# fullres-grid.sh MODEL OUT.jpg [N]: the model card's full-resolution grid:
# N young and N old faces of the test split (default 3 each) in columns,
# each at its own size as translate returns it: the input on top, aged (G)
# in the middle, de-aged (F) at the bottom.  Needs UTKFACE_DIR and PIL.
set -euo pipefail
source "$(dirname "$0")/../pipelines/common.sh"
[ $# -ge 2 ] || { echo "usage: scripts/fullres-grid.sh MODEL OUT.jpg [N]" >&2; exit 2; }
model=$1 out=$2 n=${3:-3}
data=$(find_utkface)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
faces=()
for g in young old; do
    while IFS=$'\t' read -r f _; do faces+=("$data/$f"); done \
        < <(utk-split "$data" --split test -q --list | awk -F'\t' -v g="$g" '$3 == g' | head -n "$n")
done
for d in y2o o2y; do
    mkdir -p "$tmp/$d"
    translate "--$d" --ckpt "$model" -o "$tmp/$d" "${faces[@]}" 2> /dev/null
done
/usr/bin/python3 - "$out" "$tmp" "${faces[@]}" <<'PY'
import os, sys
from PIL import Image
out, tmp, faces = sys.argv[1], sys.argv[2], sys.argv[3:]
def result(d, f, suffix):
    name = os.path.basename(f).replace(".chip.jpg", "").rsplit(".", 1)[0]
    name = name[:-4] if name.endswith(".jpg") else name
    return os.path.join(tmp, d, name + suffix)
cols = [[Image.open(f).convert("RGB"), Image.open(result("y2o", f, "_young2old.jpg")).convert("RGB"),
         Image.open(result("o2y", f, "_old2young.jpg")).convert("RGB")] for f in faces]
w = max(c[0].width for c in cols); h = max(c[0].height for c in cols); pad = 4
grid = Image.new("RGB", (len(cols) * (w + pad) + pad, 3 * (h + pad) + pad), (255, 255, 255))
for i, col in enumerate(cols):
    for j, im in enumerate(col):
        grid.paste(im, (pad + i * (w + pad), pad + j * (h + pad)))
grid.save(out, quality=92)
PY
echo "fullres-grid.sh: wrote $out" >&2
