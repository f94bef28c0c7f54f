#!/usr/bin/env bash
# plot.sh METRICS_DIR: draw METRICS_DIR/curves.png with gnuplot: the training
# losses per step (steps.jsonl) and the validation losses per epoch
# (metrics.jsonl), with the validation FID when the run has one.  JSON lines
# are flattened with awk (no Python needed).
set -euo pipefail
dir=${1:?usage: plot.sh METRICS_DIR}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# key -> column: print step/epoch and the loss values as TSV
flatten() {  # file xkey
    awk -v xkey="$2" '
    function val(k,   m) { if (match($0, "\"" k "\": [-0-9.eE+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m } return "nan" }
    { print val(xkey), val("loss_gen_total"), val("loss_DX"), val("loss_DY"), val("loss_cyc"), val("loss_id"), val("loss_g_adv"), val("loss_f_adv"), val("fid") }' "$1"
}
[ -s "$dir/steps.jsonl" ] && grep '"phase": "step"' "$dir/steps.jsonl" | flatten /dev/stdin step > "$tmp/steps.tsv" || : > "$tmp/steps.tsv"
[ -s "$dir/metrics.jsonl" ] && flatten "$dir/metrics.jsonl" epoch > "$tmp/val.tsv" || : > "$tmp/val.tsv"
[ -s "$tmp/steps.tsv" ] || [ -s "$tmp/val.tsv" ] || { echo "plot.sh: no metrics in $dir yet" >&2; exit 1; }
left='set title "training losses per step"; set xlabel "step"; unset label'
right='set title "validation losses per epoch"; set xlabel "epoch"; unset label'
titles='word("gen_total DX DY cyc id g_adv f_adv FID", c-1)'
if [ -s "$tmp/steps.tsv" ]; then
    left="$left; plot for [c=2:8] \"$tmp/steps.tsv\" using 1:c with linespoints pt 7 ps 0.3 title $titles"
else
    left="$left; set label 1 'no step records yet' at graph 0.5,0.5 center; plot [0:1][0:1] NaN notitle"
fi
# FID is a column only when some epoch has one (train.sh --fid_weights)
last=8; awk '$9 != "nan" { found = 1 } END { exit !found }' "$tmp/val.tsv" && last=9
if [ -s "$tmp/val.tsv" ]; then
    right="$right; plot for [c=2:$last] \"$tmp/val.tsv\" using 1:c with linespoints pt 7 title $titles"
else
    right="$right; set label 1 'no validation yet' at graph 0.5,0.5 center; plot [0:1][0:1] NaN notitle"
fi
gnuplot 2>"$tmp/gnuplot.err" <<GP || { cat "$tmp/gnuplot.err" >&2; exit 1; }
set terminal pngcairo size 1200,500 noenhanced font ",10"
set output "$dir/curves.png.tmp"
set multiplot layout 1,2 title "aging-cyclegan training"
set key outside right
set offsets graph 0.02, graph 0.02, graph 0.05, graph 0.05
$left
$right
unset multiplot
GP
mv "$dir/curves.png.tmp" "$dir/curves.png"
