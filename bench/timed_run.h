/*
 * timed_run.h - the engine of the contended, many-locks and server-down
 * scenarios: P worker processes take locks for a fixed time, each doing
 * a short critical section that increments a plain (non-atomic) counter
 * in shared memory.
 *
 * The counters are the proof of mutual exclusion: after the run their
 * sum must equal the number of critical sections the workers report.
 * A mismatch fails the whole benchmark.
 *
 * Throughput and latency are never taken from the same run (issue 13:
 * a clock read, a shared log write and a random number inside every
 * hold once cut the robust mutex's P = 16 figure by 4x and compressed
 * every gap between primitives).
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
	                       * in the acquisition order; 1 = alternating
	                       * (one lock only, else NAN) */
	uint64_t total_ops;
};

/*
 * The throughput run: the workers' loop is acquire, the checked
 * increment, release and nothing else - no clock, no shared log, no
 * random number. Throughput is the workers' count over the time from
 * the start (the gate, or the end of the warm-up) to the stop, both
 * stamped by the parent; fairness and streak come from what each
 * worker kept in locals (its count, and the runs of consecutive
 * counter values it saw), merged after the run. Returns 0, PRIM_ELIMIT
 * when the primitive cannot provide nlocks locks, or -1 after a
 * failure reported with bench_fail (a counter mismatch, a worker
 * error).
 */
int timed_run(const struct timed_spec *spec, struct timed_result *res);

/*
 * The latency run, separate from the throughput one because timing an
 * acquire lengthens the hold it measures: the clock is read on both
 * sides of every acquire (the second read inside the critical
 * section) and the samples kept in a per-worker reservoir, which costs
 * a random number per operation. Same workers, lock choice and checked
 * increment; the samples are appended to *pool. Same returns.
 */
int timed_latency(const struct timed_spec *spec, struct samples *pool);

/* How long a latency run lasts for a throughput run of duration_ms:
 * half as long (it only has to fill the reservoirs), at least 50 ms. */
int64_t timed_latency_ms(int64_t duration_ms);

/* The runs of the contended and server-down scenarios: nprocs processes
 * on one lock (of the set "c", the same in both), for --duration (the
 * latency run for timed_latency_ms of it). */
int timed_run_one_lock(enum prim_id prim, uint32_t nprocs, uint32_t seed,
		       struct timed_result *res);
int timed_latency_one_lock(enum prim_id prim, uint32_t nprocs, uint32_t seed,
			   struct samples *pool);

#endif
