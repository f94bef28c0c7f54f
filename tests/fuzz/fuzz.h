/*
 * fuzz: what the libFuzzer harnesses in tests/fuzz/ share.
 *
 * A harness (fuzz_NAME.c) defines LLVMFuzzerTestOneInput and hands the bytes
 * to the project's own readers, exactly as the tools do.  Each one builds
 * twice:
 *   make fuzz    clang -fsanitize=fuzzer,address,undefined into build-fuzz/fuzz/,
 *                run by tests/fuzz/run.sh on corpus/NAME/ for FUZZ_TIME seconds;
 *   make units   the normal compiler and flags, with replay.c's main, into
 *                $(BUILD)/tests/fuzz_NAME: tests/fuzz.bats replays corpus/NAME/
 *                and regress/NAME/ through it in `make test` (and under the
 *                sanitizers in `make asan`), so a fixed crash stays fixed.
 * Besides "no crash", the harnesses check the house rule that a refusal
 * always comes with a message (fuzz_refused).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A path naming a file that holds data[0..size), for readers that only take
 * paths: "/proc/self/fd/N" of one memory file rewritten on every call, so
 * nothing touches the disk.  Aborts when the memory file cannot be made. */
const char *fuzz_path(const uint8_t *data, size_t size);

/* A reader refused its input: abort unless it left a message in err_msg(),
 * then clear the message for the next check (FUZZ_VERBOSE=1 in the
 * environment prints each one: are the seeds accepted?).  err_msg() keeps the last
 * message for ever, so a harness clears it (fuzz_clear_msg) on entry. */
void fuzz_refused(const char *what);
void fuzz_clear_msg(void);

/* An invariant the readers promise: abort with a message when cond is false. */
#define FUZZ_ASSERT(cond) ((cond) ? (void)0 : fuzz_fail_(#cond, __FILE__, __LINE__))
void fuzz_fail_(const char *cond, const char *file, int line) __attribute__((noreturn));
