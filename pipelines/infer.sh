#!/usr/bin/env bash
# infer.sh: the reference's `run_inference.sh --mode infer`: age or de-age
# one face; the result goes beside the input as NAME_young2old.png (or
# NAME_old2young.png) unless --output says otherwise.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([input]= [direction]=young2old [ckpt]= [output]= [img_size]= [output_dir]=)
declare -A FLAGS=()

usage() {
    cat <<'USAGE'
usage: pipelines/infer.sh --input FACE.jpg [options]
  --direction D     young2old (default) or old2young
  --ckpt FILE       (default: OUTPUT_DIR/checkpoints/best.safetensors when it exists,
                    else the shipped model, models/utkface-128.safetensors)
  --output FILE     (default: beside the input, NAME_DIRECTION.png)
  --img_size N      (default: the size the model was trained at)
  --output_dir DIR  the training run whose best checkpoint to use (default outputs/)
USAGE
}

parse_options "$@"
[ -z "${OPT[img_size]}" ] || need_int img_size
[ -n "${OPT[input]}" ] || { echo "infer.sh: --input FILE is required" >&2; echo "Try 'infer.sh --help'." >&2; exit 2; }
case ${OPT[direction]} in
    young2old) dir=--y2o ;;
    old2young) dir=--o2y ;;
    *) echo "infer.sh: --direction must be young2old or old2young, got '${OPT[direction]}'" >&2; exit 2 ;;
esac
[ -n "${OPT[output_dir]}" ] && OUTPUTS=${OPT[output_dir]}
ckpt=(); size=()
if [ -n "${OPT[ckpt]}" ]; then
    ckpt=(--ckpt "${OPT[ckpt]}")
elif [ -f "$OUTPUTS/checkpoints/best.safetensors" ]; then
    ckpt=(--ckpt "$OUTPUTS/checkpoints/best.safetensors")
    echo "infer.sh: using your training run's best checkpoint, $OUTPUTS/checkpoints/best.safetensors" >&2
fi  # else translate finds the shipped model and says so
[ -n "${OPT[img_size]}" ] && size=(--size "${OPT[img_size]}")
in=${OPT[input]}
[ -f "$in" ] || { echo "infer.sh: no such file: $in" >&2; exit 1; }
out=${OPT[output]}
if [ -z "$out" ]; then
    base=${in%.*}
    base=${base%.chip}  # UTKFace names end in .jpg.chip.jpg
    base=${base%.jpg}
    out=${base}_${OPT[direction]}.png
fi
translate "$dir" "${ckpt[@]}" "${size[@]}" -i "$in" -o "$out"
echo "infer.sh: wrote $out" >&2
