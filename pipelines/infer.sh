#!/usr/bin/env bash
# infer.sh: the reference's `run_inference.sh --mode infer`: age or de-age
# faces; a result, the input at its own size and in its own format with the
# generator's change (translate; --raw: the model's own square image), goes
# beside its input as NAME_young2old.jpg or .png (or NAME_old2young) unless
# --output says otherwise.  A folder's images go to a folder beside it,
# DIR_young2old/, one translate per image.  --face takes any photo: its
# faces are found, aligned, changed and put back (translate --face).
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([input]= [direction]=young2old [ckpt]= [output]= [img_size]= [output_dir]= [max_faces]= [strength]=)
declare -A FLAGS=([face]= [raw]=)

usage() {
    cat <<'USAGE'
usage: pipelines/infer.sh [options] FACE.jpg|DIR...   (or --input FACE.jpg|DIR)
  FACE.jpg          a face (PNG or JPEG): the result goes beside it, FACE_young2old.png
  DIR               a folder: each PNG or JPEG image in it goes to DIR_young2old/ beside
                    it; what is not an image is skipped and counted (exit 1 if any)
  --direction D     young2old (default) or old2young
  --ckpt FILE       (default: OUTPUT_DIR/checkpoints/best.safetensors when it exists,
                    else the shipped model, models/utkface-128.safetensors)
  --output FILE     (default: beside the input, NAME_DIRECTION.jpg for a JPEG, else .png;
                    .png or .jpg/.jpeg picks the format); with a folder or several inputs,
                    or when FILE is a folder: the folder for the results
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

TAKES_ARGS=1
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
inputs=(${OPT[input]:+"${OPT[input]}"} "${ARGS[@]}")
[ ${#inputs[@]} -gt 0 ] || { echo "infer.sh: a face or a folder is required (FILE, DIR or --input)" >&2; echo "Try 'infer.sh --help'." >&2; exit 2; }
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

# The result's name for input $1 in folder $2 (default: beside the input).
result_name() {
    local in=$1 dir= name ext=png
    [[ $in == */* ]] && dir=${in%/*}/
    [ -z "${2:-}" ] || dir=$2/
    name=${in##*/}
    name=${name%.*}
    name=${name%.chip}  # UTKFace names end in .jpg.chip.jpg
    name=${name%.jpg}
    # a JPEG stays a JPEG
    if [[ ${in,,} =~ \.(jpe?g)$ ]]; then ext=jpg; fi
    echo "$dir${name}_${OPT[direction]}.$ext"
}
is_image() {  # by content, as translate decodes it: PNG or JPEG
    local magic
    magic=$(LC_ALL=C od -An -N4 -tx1 "$1" 2>/dev/null | tr -d ' \n')
    [[ $magic == 89504e47 || $magic == ffd8ff* ]]
}

# Pair each input with its result: files as given, folders' images (sorted).
out=${OPT[output]} many=  # many: results go to folders, with progress and a count
if [ ${#inputs[@]} -gt 1 ] || [ -d "${inputs[0]}" ] || { [ -n "$out" ] && [ -d "$out" ]; }; then many=1; fi
if [ -n "$many" ] && [ -n "$out" ] && [ -e "$out" ] && [ ! -d "$out" ]; then
    echo "infer.sh: --output $out: not a folder (several results go to a folder)" >&2; exit 1
fi
todo_in=() todo_out=() made=() skipped=0
for in in "${inputs[@]}"; do
    if [ -d "$in" ]; then
        in=${in%/}
        dest=${out:-${in}_${OPT[direction]}}
        for f in "$in"/*; do
            [ -e "$f" ] || continue # an empty folder
            [ "$(readlink -f -- "$f")" = "$(readlink -f -- "$dest")" ] && continue # results kept inside
            if [ -f "$f" ] && is_image "$f"; then
                todo_in+=("$f") todo_out+=("$(result_name "$f" "$dest")")
            elif [ -d "$f" ]; then
                echo "infer.sh: skipping $f/: a folder (only the images directly in $in are done)" >&2
                skipped=$((skipped + 1))
            else
                echo "infer.sh: skipping $f: not a PNG or JPEG image" >&2
                skipped=$((skipped + 1))
            fi
        done
        made+=("$dest")
    elif [ -f "$in" ]; then
        todo_in+=("$in")
        if [ -n "$out" ] && [ -n "$many" ]; then
            todo_out+=("$(result_name "$in" "$out")")
            [[ " ${made[*]} " == *" $out "* ]] || made+=("$out")
        else
            todo_out+=("${out:-$(result_name "$in")}")
        fi
    else
        echo "infer.sh: no such file or folder: $in" >&2; exit 1
    fi
done
for d in "${made[@]}"; do
    mkdir -p -- "$d" || { echo "infer.sh: cannot create the folder $d" >&2; exit 1; }
done

# One translate per image; the model's name is said once, not per image.
n=${#todo_in[@]} failed=0 err=$(mktemp)
trap 'rm -f "$err"' EXIT
for ((i = 0; i < n; i++)); do
    in=${todo_in[i]} out=${todo_out[i]}
    rc=0
    translate "$dir" "${ckpt[@]}" "${size[@]}" "${face[@]}" -i "$in" -o "$out" 2> "$err" || rc=$?
    if [ "$i" -eq 0 ]; then cat "$err" >&2; else grep -v '^translate: using ' "$err" >&2 || true; fi
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
        [ -n "$many" ] || exit "$rc"
    elif [ -n "$many" ]; then
        echo "infer.sh: [$((i + 1))/$n] wrote $out" >&2
    else
        echo "infer.sh: wrote $out" >&2
    fi
done
[ -n "$many" ] || exit 0
msg="infer.sh: $((n - failed)) of $n images done"
[ "$failed" -eq 0 ] || msg+=", $failed failed"
[ "$skipped" -eq 0 ] || msg+=", $skipped skipped (not a PNG or JPEG image)"
[ "${#made[@]}" -eq 0 ] || msg+="; results in $(printf '%s, ' "${made[@]}" | sed 's/, $//')"
echo "$msg" >&2
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
