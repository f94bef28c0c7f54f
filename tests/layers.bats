#!/usr/bin/env bats
# The floors of lib/ (lib/README.md): scripts/check-layers.sh, which `make
# lint` runs, passes on the tree and fails on an include that climbs a floor
# or closes a circle, planted in a copy of lib/.

load helpers

@test "layers: every include in lib/ stays on its floor, no circle" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    run bash "$root/scripts/check-layers.sh"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "layers: an include that climbs a floor, or a circle, fails the check" {
    root=$(cd "$TESTS_DIR/.." && pwd)
    cp -r "$root/lib" "$BATS_TEST_TMPDIR/lib"
    echo '#include "nn/model.h"' >> "$BATS_TEST_TMPDIR/lib/base/num.c"
    LIB=$BATS_TEST_TMPDIR/lib run bash "$root/scripts/check-layers.sh"
    echo "$output"
    [ "$status" -eq 1 ]
    [[ "$output" == *"base/num.c: includes nn/"* ]]

    cp "$root/lib/base/num.c" "$BATS_TEST_TMPDIR/lib/base/num.c"
    echo '#include "num.h"' >> "$BATS_TEST_TMPDIR/lib/base/err.h"
    echo '#include "err.h"' >> "$BATS_TEST_TMPDIR/lib/base/num.h"
    LIB=$BATS_TEST_TMPDIR/lib run bash "$root/scripts/check-layers.sh"
    echo "$output"
    [ "$status" -eq 1 ]
    [[ "$output" == *"includes: "*"loop"* ]]
}
