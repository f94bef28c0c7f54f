#!/usr/bin/env bats
# Every tool sets its OpenMP wait policy (passive unless the user chose one)
# and AGING_THREADS before libgomp starts (lib/tool/omp-env.h): read back from
# the environment of the running tool, which is the one libgomp was given.

load helpers

# The environment of a translate that waits on its input, as libgomp saw it.
tool_env() {  # env(1)'s -u options, then assignments
    local fifo=$BATS_TEST_TMPDIR/in pid i
    mkfifo "$fifo"
    env "$@" translate --y2o -i "$fifo" -o "$BATS_TEST_TMPDIR/out.png" 2> /dev/null &
    pid=$!
    # the hook runs the program again: wait until its environment shows a change
    for i in $(seq 50); do
        tr '\0' '\n' < "/proc/$pid/environ" | grep -q '^OMP_WAIT_POLICY=' && break
        sleep 0.1
    done
    tr '\0' '\n' < "/proc/$pid/environ" | grep -E '^(OMP_WAIT_POLICY|OMP_NUM_THREADS)=' | sort
    kill "$pid"
    wait "$pid" || true
}

@test "omp-env: a tool started without OMP_WAIT_POLICY runs with the passive policy" {
    run tool_env -u OMP_WAIT_POLICY -u OMP_NUM_THREADS -u AGING_THREADS
    assert_output "OMP_WAIT_POLICY=passive"
}

@test "omp-env: the user's own policy and thread count are kept" {
    run tool_env -u AGING_THREADS OMP_WAIT_POLICY=active OMP_NUM_THREADS=3
    assert_output "$(printf 'OMP_NUM_THREADS=3\nOMP_WAIT_POLICY=active')"
}

@test "omp-env: AGING_THREADS sets the OpenMP thread count" {
    run tool_env -u OMP_WAIT_POLICY OMP_NUM_THREADS=2 AGING_THREADS=1
    assert_output "$(printf 'OMP_NUM_THREADS=1\nOMP_WAIT_POLICY=passive')"
}

@test "omp-env: a bad AGING_THREADS stops every tool with exit 2 and a message" {
    for t in aug ckpt cyclegan-step fid serve tb-log translate utk-split; do
        AGING_THREADS=many run "$t" --help
        assert_failure 2
        assert_output "$t: AGING_THREADS=many is not a thread count (1 to 1024)"
    done
    AGING_THREADS=0 run translate --help
    assert_failure 2
}
