/*
 * timed_run.h - the engine of the contended, many-locks and server-down
 * scenarios: P worker processes take locks for a fixed time, each doing
 * a short critical section that increments a plain (non-atomic) counter
 * in shared memory.
 *
 * The counters are the proof of mutual exclusion: after the run their
 * sum must equal the number of critical sections the workers report.
 * A mismatch fails the whole benchmark.
 */
#ifndef LOCKBENCH_TIMED_RUN_H
#define LOCKBENCH_TIMED_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "primitives.h"
#include "stats.h"

enum lock_choice {
	CHOOSE_ONE,     /* always lock 0 */
	CHOOSE_UNIFORM, /* uniform over nlocks */
	CHOOSE_ZIPF,    /* Zipf-skewed over nlocks (spec.zipf) */
};

struct timed_spec {
	enum prim_id prim;
	uint32_t nprocs;
	uint32_t nlocks;
	const char *tag;          /* lockmgr name set ("c", "m1000", ...) */
	enum lock_choice choice;
	const struct zipf *zipf;  /* CHOOSE_ZIPF */
	int64_t duration_ms;
	/* Run this long before the clock starts, uncounted: a fresh
	 * process's first touches of a large shared table are page faults
	 * (its page tables fill in), which the steady state never sees. */
	int64_t warmup_ms;
	uint32_t seed;
};

struct timed_result {
	double ops_per_s;
	double fairness;      /* min/max critical sections per worker */
	double mean_streak;   /* mean run length of one worker's entries
	                       * in the acquisition order; 1 = alternating */
	uint64_t total_ops;
};

/*
 * Run it once. The acquire latencies sampled by every worker are
 * appended to *pool (if not NULL). Returns 0, PRIM_ELIMIT when the
 * primitive cannot provide nlocks locks, or -1 after a failure
 * reported with bench_fail (a counter mismatch, a worker error).
 */
int timed_run(const struct timed_spec *spec, struct timed_result *res,
	      struct samples *pool);

/* The run of the contended and server-down scenarios: nprocs processes
 * on one lock (of the set "c", the same in both) for --duration. */
int timed_run_one_lock(enum prim_id prim, uint32_t nprocs, uint32_t seed,
		       struct timed_result *res, struct samples *pool);

#endif
