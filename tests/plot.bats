#!/usr/bin/env bats
# pipelines/plot.sh: what curves.png draws, read off the gnuplot script it
# writes (a stand-in gnuplot keeps the script and makes the PNG's file).

load helpers

setup() {
    common_setup
    ROOT=$(cd "$TESTS_DIR/.." && pwd)
    mkdir -p "$TMP/bin" "$TMP/m"
    cat > "$TMP/bin/gnuplot" <<'SH'
#!/bin/sh
tee "$GNUPLOT_LOG" | sed -n 's/^set output "\(.*\)"$/\1/p' | xargs touch
SH
    chmod +x "$TMP/bin/gnuplot"
    export PATH="$TMP/bin:$PATH" GNUPLOT_LOG=$TMP/gp
    echo '{"phase": "step", "step": 1, "loss_gen_total": 2, "loss_DX": 0.3, "loss_DY": 0.3}' > "$TMP/m/steps.jsonl"
}
teardown() { common_teardown; }

@test "plot.sh: the validation curves have an FID line only when the run measured FID" {
    for e in 1 2; do echo "{\"epoch_seconds\": 5, \"fid\": null, \"epoch\": $e, \"loss_gen_total\": 2.$e}"; done \
        > "$TMP/m/metrics.jsonl"
    run bash "$ROOT/pipelines/plot.sh" "$TMP/m"
    assert_success
    [ -f "$TMP/m/curves.png" ]
    grep -q 'plot for \[c=2:8\] ".*/val.tsv"' "$GNUPLOT_LOG"
    for e in 1 2; do echo "{\"epoch_seconds\": 5, \"fid\": 4$e.5, \"epoch\": $e, \"loss_gen_total\": 2.$e}"; done \
        > "$TMP/m/metrics.jsonl"
    run bash "$ROOT/pipelines/plot.sh" "$TMP/m"
    assert_success
    grep -q 'plot for \[c=2:9\] ".*/val.tsv"' "$GNUPLOT_LOG"
}
