#!/usr/bin/env bash
# infer.sh: the reference's `run_inference.sh --mode infer`: age or de-age
# one face; the result goes beside the input as NAME_young2old.png (or
# NAME_old2young.png) unless --output says otherwise.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([input]= [direction]=young2old [ckpt]= [output]= [img_size]=256 [output_dir]=)
declare -A FLAGS=()

usage() {
    cat <<'USAGE'
usage: pipelines/infer.sh --input FACE.jpg [options]
  --direction D     young2old (default) or old2young
  --ckpt FILE       (default outputs/checkpoints/best.safetensors)
  --output FILE     (default: beside the input, NAME_DIRECTION.png)
  --img_size N      (256)
USAGE
}

parse_options "$@"
need_int img_size
[ -n "${OPT[input]}" ] || { echo "infer.sh: --input FILE is required" >&2; echo "Try 'infer.sh --help'." >&2; exit 2; }
case ${OPT[direction]} in
    young2old) dir=--y2o ;;
    old2young) dir=--o2y ;;
    *) echo "infer.sh: --direction must be young2old or old2young, got '${OPT[direction]}'" >&2; exit 2 ;;
esac
[ -n "${OPT[output_dir]}" ] && OUTPUTS=${OPT[output_dir]}
ckpt=${OPT[ckpt]:-$OUTPUTS/checkpoints/best.safetensors}
in=${OPT[input]}
[ -f "$in" ] || { echo "infer.sh: no such file: $in" >&2; exit 1; }
out=${OPT[output]}
if [ -z "$out" ]; then
    base=${in%.*}
    base=${base%.chip}  # UTKFace names end in .jpg.chip.jpg
    base=${base%.jpg}
    out=${base}_${OPT[direction]}.png
fi
translate "$dir" --ckpt "$ckpt" --size "${OPT[img_size]}" -i "$in" -o "$out"
echo "infer.sh: wrote $out" >&2
