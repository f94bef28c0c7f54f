#!/usr/bin/env bash
# evaluate.sh: the reference's `run_inference.sh --mode test`: the losses of a
# checkpoint on the test split in evaluation mode, written to
# OUTPUTS/metrics/test_metrics.json and printed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([ckpt]= [img_size]=256 [eval_batch_size]=4 [seed]=42 [split]=test [limit]= [data_dir]=
                 [output_dir]=)
declare -A FLAGS=()

usage() {
    cat <<'USAGE'
usage: pipelines/evaluate.sh [options]
Evaluate a checkpoint on the test split (losses in eval mode) and write
OUTPUTS/metrics/test_metrics.json.

  --ckpt FILE          (default outputs/checkpoints/best.safetensors)
  --img_size N (256)   --eval_batch_size N (4)   --seed N (42, the split seed used in training)
  --split S            test (default) or val
  --limit N            at most N faces per domain
  --data_dir DIR       UTKFace folder (default: UTKFACE_DIR or data/)
  --output_dir DIR     (default: OUTPUTS_DIR or outputs/)
  --config FILE        `key = value` lines with these names
USAGE
}

parse_options "$@"
for k in img_size eval_batch_size seed; do need_int "$k"; done
[ -z "${OPT[limit]}" ] || need_int limit
[ -n "${OPT[data_dir]}" ] && export UTKFACE_DIR=${OPT[data_dir]}
[ -n "${OPT[output_dir]}" ] && OUTPUTS=${OPT[output_dir]}
ckpt=${OPT[ckpt]:-$OUTPUTS/checkpoints/best.safetensors}
[ -f "$ckpt" ] || { echo "evaluate.sh: no checkpoint $ckpt (train first, or pass --ckpt)" >&2; exit 1; }
data=$(find_utkface)
limit=(); [ -n "${OPT[limit]}" ] && limit=(--limit "${OPT[limit]}")
mkdir -p "$OUTPUTS/metrics"
out=$OUTPUTS/metrics/${OPT[split]}_metrics.json
utk-split "$data" --split "${OPT[split]}" --seed "${OPT[seed]}" -q "${limit[@]}" \
    | aug --eval --size "${OPT[img_size]}" \
    | cyclegan-step --eval --ckpt "$ckpt" --batch "${OPT[eval_batch_size]}" --phase "${OPT[split]}" --json \
    | sed 's/^{/{"fid_val": null, /' > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
echo "evaluate.sh: wrote $out" >&2
