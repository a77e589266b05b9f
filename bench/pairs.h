/*
 * pairs.h - uncontended acquire+release pairs: one forked process takes
 * and releases one lock in a loop, after an untimed warm-up, and the
 * time per pair is the figure. Scenario 1 times each primitive's plain
 * pair this way, 7 its shared and exclusive pairs, 8 X on a row of a
 * tree region and of a flat one: the loop, its warm-up and its failure
 * reports are the same, only the pair differs.
 *
 * The loop runs in a forked worker like every other measurement, so a
 * primitive's per-process setup (attach) is the same as when contended.
 */
#ifndef LOCKBENCH_PAIRS_H
#define LOCKBENCH_PAIRS_H

#include <stdint.h>
#include <stdio.h>

#include "bench.h"

/* What the worker reports, in shared memory. */
struct pairs_out {
	int64_t ns;    /* all the timed pairs */
	int rc;        /* a failure's error code, or 0 */
	char what[16]; /* and where: "attach", "acquire/release" */
};

/* The worker's job: pairs_time fills it in and hands it to the worker. */
struct pairs_job {
	void *lock; /* the caller's, for the ops below */
	int iters;
	struct pairs_out *out;
};

/* How the worker uses the caller's lock: 0 or an error code. */
struct pairs_ops {
	int (*attach)(void *lock);
	int (*pair)(void *lock); /* acquire, then release */
	void (*detach)(void *lock);
};

/* How to define a pairs_ops' pair function. */
#define PAIRS_INLINE static inline __attribute__((always_inline))

/*
 * The worker's body: attach; iters / 10 + 1 pairs untimed, to fault in
 * the lock's memory and the library's code; iters pairs timed; detach.
 * Returns the worker's exit status: 0, 3 (attach failed) or 4.
 *
 * Inline, called with a constant ops whose pair is PAIRS_INLINE: the
 * compiler then puts the pair itself in the timed loop, which costs
 * what it did when each scenario had its own loop (a call to the pair
 * function would add to every pair measured).
 */
static inline int pairs_worker(const struct pairs_job *job,
			       const struct pairs_ops *ops)
{
	struct pairs_out *out = job->out;
	int rc = ops->attach(job->lock);
	if (rc != 0) {
		out->rc = rc;
		snprintf(out->what, sizeof(out->what), "attach");
		return 3;
	}
	int warm = job->iters / 10 + 1;
	int64_t t0 = 0;
	for (int k = -warm; k < job->iters; k++) {
		if (k == 0)
			t0 = bench_now_ns();
		rc = ops->pair(job->lock);
		if (rc != 0) {
			out->rc = rc;
			snprintf(out->what, sizeof(out->what),
				 "acquire/release");
			return 4;
		}
	}
	out->ns = bench_now_ns() - t0;
	ops->detach(job->lock);
	return 0;
}

/*
 * In the parent: fork worker(0, job), a function that calls
 * pairs_worker(job, its ops), for iters pairs on lock; wait for it (60 s
 * at most). Returns 0 with *ns_per_pair set, or -1 after a failure
 * reported with bench_fail(what).
 */
int pairs_time(int (*worker)(int id, void *job), void *lock, int iters,
	       const char *what, double *ns_per_pair);

#endif
