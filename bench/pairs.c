/*
 * pairs.c - the parent's side of an uncontended pairs measurement.
 */
#include "pairs.h"

#include "primitives.h"
#include "procs.h"

int pairs_time(int (*worker)(int id, void *job), void *lock, int iters,
	       const char *what, double *ns_per_pair)
{
	struct pairs_out *out = bench_shared_alloc(sizeof(*out));
	struct pairs_job job = {.lock = lock, .iters = iters, .out = out};
	pid_t pid = procs_fork(worker, 0, &job);
	int ret = -1;
	if (procs_reap(&pid, 1, 60000, what) == 0) {
		*ns_per_pair = (double)out->ns / iters;
		ret = 0;
	} else if (out->rc != 0) {
		bench_fail("%s: %s: %s", what, out->what,
			   prim_strerror(out->rc));
	}
	bench_shared_free(out, sizeof(*out));
	return ret;
}
