#!/usr/bin/env bash
# evaluate.sh: the reference's `run_inference.sh --mode test`: the losses of a
# checkpoint on a split in evaluation mode (and its FID with --fid_weights),
# with the reference's metric names, written to a file of its own and printed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([ckpt]= [img_size]= [eval_batch_size]=4 [seed]=42 [split]=test [limit]= [data_dir]=
                 [output_dir]= [output]= [fid_weights]= [device]=auto)
declare -A FLAGS=()

usage() {
    cat <<'USAGE'
usage: pipelines/evaluate.sh [options]
Evaluate a checkpoint on the test split (losses in eval mode; the FID of
G(young) against the real old faces with --fid_weights) and write the
metrics as JSON (the reference's "test/loss_DX", "test/fid_val", ... and
our plain names).

  --ckpt FILE          (default OUTPUT_DIR/checkpoints/best.safetensors)
  --img_size N         (default: the size the checkpoint was trained at)
  --eval_batch_size N (4)   --seed N (42, the split seed used in training)
  --split S            test (default) or val
  --limit N            at most N faces per domain
  --fid_weights FILE   FID Inception weights (default AGING_FID_WEIGHTS; none: no FID)
  --device D (auto)    cpu, cuda, cuda:N or auto
  --data_dir DIR       UTKFace folder (default: UTKFACE_DIR or data/)
  --output_dir DIR     (default: OUTPUTS_DIR or outputs/)
  --output FILE        (default OUTPUT_DIR/metrics/eval_SPLIT.json; the training run's
                       test_metrics.json is written only when named here)
  --config FILE        `key = value` lines with these names
USAGE
}

parse_options "$@"
for k in eval_batch_size seed; do need_int "$k"; done
[ -z "${OPT[img_size]}" ] || need_int img_size
[ -z "${OPT[limit]}" ] || need_int limit
case ${OPT[split]} in test|val) ;; *) echo "evaluate.sh: --split must be test or val, got '${OPT[split]}'" >&2; exit 2 ;; esac
[ -n "${OPT[data_dir]}" ] && export UTKFACE_DIR=${OPT[data_dir]}
[ -n "${OPT[output_dir]}" ] && OUTPUTS=${OPT[output_dir]}
ckpt=${OPT[ckpt]:-$OUTPUTS/checkpoints/best.safetensors}
[ -f "$ckpt" ] || { echo "evaluate.sh: no checkpoint $ckpt (train first, or pass --ckpt)" >&2; exit 1; }
fidw=${OPT[fid_weights]:-${AGING_FID_WEIGHTS:-}}
[ -z "$fidw" ] || [ -f "$fidw" ] || { echo "evaluate.sh: --fid_weights: no such file $fidw" >&2; exit 1; }
data=$(find_utkface)
size=${OPT[img_size]:-$(ckpt_size "$ckpt")}
[ -n "$size" ] || { echo "evaluate.sh: $ckpt does not record its image size: give --img_size" >&2; exit 1; }
seed=${OPT[seed]} split=${OPT[split]}
split_limit() { [ -z "${OPT[limit]}" ] || echo "--limit ${OPT[limit]}"; }
dev=(--device "${OPT[device]}")
out=${OPT[output]:-$OUTPUTS/metrics/eval_$split.json}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fid=null
[ -n "$fidw" ] && fid=$(fid_of "$ckpt" "$split" "$tmp/old.stats")
utk-split "$data" --split "$split" --seed "$seed" -q $(split_limit "$split") | aug --eval --size "$size" \
    | cyclegan-step --eval --ckpt "$ckpt" --batch "${OPT[eval_batch_size]}" --phase "$split" --json "${dev[@]}" \
    | sed "s/^{/{\"fid_val\": $fid, \"img_size\": $size, /" | with_reference_keys "$split" > "$tmp/out.json"
write_output "$out" < "$tmp/out.json"
cat "$tmp/out.json"
echo "evaluate.sh: wrote $out" >&2
