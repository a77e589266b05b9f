/*
 * workers.h - the frame of one timed run of P forked workers, the same
 * for the contended engine (timed_run.c) and the read-write and tree
 * scenarios, whose workers do more than one kind of operation:
 *
 *   - the header the workers share, at the start of the run's shared
 *     mapping: the start gate, the first failure, the end of warm-up;
 *   - how a worker reports a failure (the first one wins, and every
 *     worker stops: none may wait for a lock a failed one holds);
 *   - the parent's side: fork the workers, open the gate when all are
 *     ready, warm up, measure, stop them, reap them;
 *   - for the read-write and tree scenarios, the shared mapping itself.
 *
 * What the workers do and what the run's figures are stays with each
 * caller.
 */
#ifndef LOCKBENCH_WORKERS_H
#define LOCKBENCH_WORKERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "procs.h"

struct workers_hdr {
	struct gate gate;
	_Atomic uint32_t failed;    /* set once, by the first failure */
	_Atomic uint32_t measuring; /* the warm-up is over: count from now */
	char err[256];              /* the first failure */
};

/* In a worker: record a failure ("worker 3: acquire: -5 (...)") unless
 * another came first, and stop every worker. */
void workers_fail(struct workers_hdr *h, int id, const char *what, int rc);

/*
 * In a worker that failed before the start (attach, prepare): record it
 * as workers_fail does, then check in at the gate, so that the parent
 * opens it and the others see the stop at once. Returns the worker's
 * exit status (3).
 */
int workers_fail_at_start(struct workers_hdr *h, int id, const char *what,
			  int rc);

/*
 * In the parent: fork np workers running fn(id, arg), open the gate
 * when every one is ready, let them run warmup_ms untimed (then set
 * measuring; no warm-up if 0), then duration_ms, stop them, and reap
 * them within reap_ms. Returns the time the measured part began, or -1
 * after a failure reported with bench_fail(what): a worker's own
 * (h->err), or one that exited early, failed or hung. *t_stop (if not
 * NULL) is set to the time the stop was set: a run whose workers read
 * no clock is timed from the return value to it.
 */
int64_t workers_run(struct workers_hdr *h, uint32_t np,
		    int (*fn)(int id, void *arg), void *arg, int64_t warmup_ms,
		    int64_t duration_ms, int64_t reap_ms, const char *what,
		    int64_t *t_stop);

/*
 * The shared mapping of a run whose workers check a common state in
 * their critical sections and time two kinds of operation each (read
 * and write, row and table):
 *
 *   workers_hdr | state | out[np] | samples[np][2][cap]
 *
 * every part on a cache line of its own (no false sharing between the
 * checks' counters and the workers' own records), all zeroed.
 */
struct workers_map {
	size_t size;
	struct workers_hdr *hdr;
	void *state;      /* state_size bytes */
	void *out;        /* np records of out_size bytes */
	int64_t *samples;
	size_t cap;       /* samples per worker and kind */
};

void workers_map(struct workers_map *m, uint32_t np, size_t state_size,
		 size_t out_size, size_t cap);
void workers_unmap(struct workers_map *m);

/* Worker id's reservoir of latencies of kind k (0 or 1). */
static inline int64_t *workers_samples(const struct workers_map *m, int id,
				       int k)
{
	return m->samples + ((size_t)id * 2 + (size_t)k) * m->cap;
}

#endif
