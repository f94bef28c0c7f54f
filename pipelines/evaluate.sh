#!/usr/bin/env bash
# evaluate.sh: the reference's `run_inference.sh --mode test`: the losses of a
# checkpoint on a split in evaluation mode (and its FID with --fid_weights),
# with the reference's metric names, written to a file of its own and printed;
# then the aging metrics of the field (judged age, identity kept) from
# eval/judge, an evaluation-only node package (--no_judge goes without).
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/options.sh"

declare -A OPTS=([ckpt]= [img_size]= [eval_batch_size]=4 [seed]=42 [split]=test [limit]= [data_dir]=
                 [output_dir]= [output]= [fid_weights]= [device]=auto)
declare -A FLAGS=([no_judge]=)

usage() {
    cat <<'USAGE'
usage: pipelines/evaluate.sh [options]
Evaluate a checkpoint on the test split (losses in eval mode; the FID of
G(young) against the real old faces with --fid_weights) and write the
metrics as JSON (the reference's "test/loss_DX", "test/fid_val", ... and
our plain names; "pairs": young/old pairs, "images": both domains).  A
checkpoint of G and F only (the shipped model) has no discriminator or
adversarial losses: they are null.

Then the aging metrics: each face of the split is translated by `translate`
(G for the young, F for the old; also with --raw when translate has it) and
judged by eval/judge (face-api's age and face-recognition nets): judged age
in, out and change, the share moved >= 3 years the right way, identity
distance and the share under 0.6, detail ratio and checkerboard amplitude,
under "judge_y2o", "judge_o2y" (and "judge_y2o_raw", "judge_o2y_raw").
eval/judge/README.md defines them; a line per direction on stderr says
them in words.  It needs `npm ci --prefix eval/judge`.

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
                       test_metrics.json is written only when named here; never an input)
  --no_judge           no aging metrics (no node, or no time: ~2 s a face on a CPU core)
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
if [ -z "${OPT[ckpt]}" ]; then
    [ -f "$ckpt" ] || { echo "evaluate.sh: no checkpoint $ckpt (train first, or pass --ckpt)" >&2; exit 1; }
elif [ -d "$ckpt" ]; then
    echo "evaluate.sh: --ckpt $ckpt is a folder, not a checkpoint file" >&2; exit 1
elif [ ! -e "$ckpt" ]; then
    echo "evaluate.sh: --ckpt $ckpt: no such file" >&2; exit 1
fi
# ckpt says what is wrong with a file that is not a checkpoint (a face image, text, ...)
why=$(ckpt info --summary "$ckpt" 2>&1 >/dev/null) || { echo "evaluate.sh: --ckpt: ${why#ckpt: }" >&2; exit 1; }
fidw=${OPT[fid_weights]:-${AGING_FID_WEIGHTS:-}}
[ -z "$fidw" ] || [ -f "$fidw" ] || { echo "evaluate.sh: --fid_weights: no such file $fidw" >&2; exit 1; }
out=${OPT[output]:-$OUTPUTS/metrics/eval_${OPT[split]}.json}
# the metrics must not replace an input: the same file under any name
if [ -e "$out" ]; then
    for f in "$ckpt" ${fidw:+"$fidw"}; do
        [ "$(stat -L -c %d:%i -- "$out")" = "$(stat -L -c %d:%i -- "$f")" ] || continue
        echo "evaluate.sh: --output $out is $f, an input: name another file" >&2
        exit 1
    done
fi
judge=$ROOT/eval/judge
if [ -z "${OPT[no_judge]}" ] && ! command -v node > /dev/null; then
    echo "evaluate.sh: the aging metrics need node (Debian: apt-get install nodejs npm), or pass --no_judge" >&2
    exit 1
elif [ -z "${OPT[no_judge]}" ] && [ ! -d "$judge/node_modules" ]; then
    echo "evaluate.sh: the aging metrics need the judge's node packages: npm ci --prefix $judge" >&2
    echo "  (once; or pass --no_judge for the losses and FID alone)" >&2
    exit 1
fi
data=$(find_utkface)
size=${OPT[img_size]:-$(ckpt_size "$ckpt")}
[ -n "$size" ] || { echo "evaluate.sh: $ckpt does not record its image size: give --img_size" >&2; exit 1; }
seed=${OPT[seed]} split=${OPT[split]}

# The aging metrics: translate every face of the split on its own (G for the
# young, F for the old), as a user would, and judge the pairs (face, result);
# translate's default output, and its --raw one (the generator's image at the
# model's size, judged against the input's centre that the model sees) when
# this translate has --raw.  Prints `, "judge_DIR": {...}` members for the
# JSON record and a readable line per direction on stderr.
judge_split() {
    local kinds=(default) kind dir id age domain rest n=0 crop full=1
    crop=$(awk -v s="$size" -v r="$(ckpt_resize "$ckpt")" 'BEGIN { printf "%.6f", s / (r ? r : int(s * 306 / 256 + 0.5)) }')
    # a translate without --raw writes the generator's image: judged as such
    if grep -q -- '--raw' <<< "$(translate --help 2>&1)"; then kinds+=(raw); else full=$crop; fi
    mkdir -p "$tmp/judge"
    utk-split "$data" --split "$split" --seed "$seed" -q --list $(split_limit "$split") |
    while IFS=$'\t' read -r id age domain rest; do
        n=$((n + 1))
        [ "$domain" = young ] && dir=y2o || dir=o2y
        for kind in "${kinds[@]}"; do
            translate "--$dir" $([ "$kind" = raw ] && echo --raw) -i "$data/$id" -o "$tmp/judge/$n.$kind.png" \
                --ckpt "$ckpt" --size "$size" "${dev[@]}" < /dev/null || return 1
            printf '%s\t%s\t%s\n' "$data/$id" "$tmp/judge/$n.$kind.png" "$([ "$kind" = raw ] && echo "$crop" || echo "$full")" \
                >> "$tmp/judge/$dir.$kind"
        done
    done || return 1
    for dir in y2o o2y; do
        # one judge for both kinds, so that each input face is judged once;
        # its lines come in the order of the pairs
        cat "${kinds[@]/#/$tmp/judge/$dir.}" | node "$judge/judge.mjs" --pairs - > "$tmp/judge/$dir.jsonl" || return 1
        local skip=0
        for kind in "${kinds[@]}"; do
            local k=$(wc -l < "$tmp/judge/$dir.$kind") sfx=${kind/default/}
            sed -n "$((skip + 1)),$((skip + k))p" "$tmp/judge/$dir.jsonl" |
                node "$judge/summary.mjs" --expect "$([ $dir = y2o ] && echo older || echo younger)" \
                    --label "evaluate.sh: $([ $dir = y2o ] && echo 'young->old (G)' || echo 'old->young (F)')${sfx:+, raw}" \
                    > "$tmp/judge/$dir.$kind.json" || return 1
            printf ', "judge_%s%s": %s' "$dir" "${sfx:+_raw}" "$(cat "$tmp/judge/$dir.$kind.json")"
            skip=$((skip + k))
        done
    done
}
split_limit() { [ -z "${OPT[limit]}" ] || echo "--limit ${OPT[limit]}"; }
dev=(--device "${OPT[device]}")
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fid=null
[ -n "$fidw" ] && fid=$(fid_of "$ckpt" "$split" "$tmp/old.stats")
utk-split "$data" --split "$split" --seed "$seed" -q $(split_limit "$split") | aug --eval --size "$size" \
    | cyclegan-step --eval --ckpt "$ckpt" --batch "${OPT[eval_batch_size]}" --phase "$split" --json "${dev[@]}" \
    | sed "s/^{/{\"fid_val\": $fid, \"img_size\": $size, /" | with_reference_keys "$split" > "$tmp/out.json"
if [ -z "${OPT[no_judge]}" ]; then
    judge_split > "$tmp/judge.members"
    # the members go inside the record's closing brace
    MEMBERS=$(cat "$tmp/judge.members") awk '{ sub(/}[[:space:]]*$/, ENVIRON["MEMBERS"] "}") } 1' "$tmp/out.json" \
        > "$tmp/all.json" && mv "$tmp/all.json" "$tmp/out.json"
fi
write_output "$out" < "$tmp/out.json"
cat "$tmp/out.json"
echo "evaluate.sh: wrote $out" >&2
