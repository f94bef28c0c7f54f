/*
 * omp-env: the OpenMP settings a tool needs before the OpenMP runtime starts.
 *
 * libgomp reads OMP_WAIT_POLICY and OMP_NUM_THREADS once, when it is loaded,
 * before main() runs.  Its default wait policy spins at every barrier; on a
 * machine with other work on its cores (the pipelines run several tools side by
 * side; serve shares the machine) a spinning thread takes the core its partner
 * needs, and a 2-thread translate measured 2.9x slower than with the passive
 * policy (0.70 against 2.0 s, 2-core AVX2 EPYC with a training run beside it).
 *
 * So every tool links this file: a start-up hook that, when OMP_WAIT_POLICY is
 * not set, sets it to passive (sleep at barriers) and, when AGING_THREADS is set,
 * makes it the OpenMP thread count; then, if anything changed, it executes the
 * same program again with the same arguments, before main() has read a byte of
 * input, so that the runtime starts with them.  A policy or thread count the
 * user set is left as it is.  If the program cannot be executed again (no
 * /proc), the tool runs on with the runtime's defaults.
 */
#pragma once

/* The thread count AGING_THREADS asks for: 1 to 1024, or 0 when it is unset;
 * -1 when it is set to anything else (the hook then stops the tool with
 * "tool: AGING_THREADS=... is not a thread count" and exit status 2). */
int omp_env_threads(void);
