#!/usr/bin/env bash
# infer.sh: the reference's `run_inference.sh --mode infer`: age or de-age
# one face; the result, the input at its own size and in its own format
# with the generator's change (translate; --raw: the model's own square
# image), goes beside the input as NAME_young2old.jpg or .png (or
# NAME_old2young) unless --output says otherwise.  --face takes any photo:
# its faces are found, aligned, changed and put back (translate --face).
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([input]= [direction]=young2old [ckpt]= [output]= [img_size]= [output_dir]= [max_faces]= [strength]=)
declare -A FLAGS=([face]= [raw]=)

usage() {
    cat <<'USAGE'
usage: pipelines/infer.sh --input FACE.jpg [options]
  --direction D     young2old (default) or old2young
  --ckpt FILE       (default: OUTPUT_DIR/checkpoints/best.safetensors when it exists,
                    else the shipped model, models/utkface-128.safetensors)
  --output FILE     (default: beside the input, NAME_DIRECTION.jpg for a JPEG,
                    else .png); .png or .jpg/.jpeg picks the format
  --strength S      scale the change: 0 (the input) to 2 (default 1; above 1
                    halos and artefacts grow with it)
  --raw             the model's own square image (its size), as the reference
  --img_size N      (default: the size the model was trained at)
  --output_dir DIR  the training run whose best checkpoint to use (default outputs/)
  --face            a whole photo: find, align, change and paste back every face
                    (needs dlib: libdlib-dev and libdlib-data)
  --max_faces N     with --face: the N largest faces only
USAGE
}

parse_options "$@"
[ -z "${OPT[img_size]}" ] || need_int img_size
[ -z "${OPT[max_faces]}" ] || need_int max_faces
face=()
if [ -n "${OPT[face]}" ]; then
    face=(--face)
    [ -z "${OPT[max_faces]}" ] || face+=(--max-faces "${OPT[max_faces]}")
fi
[ -z "${OPT[strength]}" ] || face+=(--strength "${OPT[strength]}")
[ -z "${OPT[raw]}" ] || face+=(--raw)
if [ -z "${OPT[face]}" ] && [ -n "${OPT[max_faces]}" ]; then
    echo "infer.sh: --max_faces goes with --face" >&2; echo "Try 'infer.sh --help'." >&2; exit 2
fi
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
    ext=png
    # a JPEG stays a JPEG
    if [[ ${in,,} =~ \.(jpe?g)$ ]]; then ext=jpg; fi
    out=${base}_${OPT[direction]}.$ext
fi
translate "$dir" "${ckpt[@]}" "${size[@]}" "${face[@]}" -i "$in" -o "$out"
echo "infer.sh: wrote $out" >&2
