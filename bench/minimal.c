/*
 * minimal.c - the minimal contended loop (minimal.h).
 */
#include "minimal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "procs.h"
#include "stats.h"

/* The shared mapping: the gate, then each worker's count, then the
 * counter, each on a cache line of its own. */
struct min_shared {
	struct gate gate;
	_Alignas(64) uint64_t n[BENCH_MAX_PROCS][8];
	_Alignas(64) uint64_t counter;
	int rc[BENCH_MAX_PROCS];
};

struct min_arg {
	struct prim *p;
	struct min_shared *sh;
};

static int min_worker(int id, void *arg)
{
	struct min_arg *a = arg;
	struct prim *p = a->p;
	struct min_shared *sh = a->sh;
	int rc = p->ops->attach(p);
	gate_arrive_and_wait(&sh->gate);
	uint64_t n = 0;
	if (rc == 0) {
		while (!atomic_load_explicit(&sh->gate.stop,
					     memory_order_relaxed)) {
			if ((rc = p->ops->acquire(p, 0, INT64_MAX)) != 0)
				break;
			sh->counter++;
			if ((rc = p->ops->release(p, 0)) != 0)
				break;
			n++;
		}
		p->ops->detach(p);
	}
	sh->n[id][0] = n;
	sh->rc[id] = rc;
	/* A failed worker may hold the lock: stop the others. */
	if (rc != 0)
		atomic_store(&sh->gate.stop, 1);
	return rc != 0 ? 4 : 0;
}

int minimal_run(enum prim_id prim, uint32_t nprocs, int64_t duration_ms,
		double *ops_per_s)
{
	if (nprocs == 0 || nprocs > BENCH_MAX_PROCS)
		bench_die("minimal_run: %u processes", nprocs);
	char what[64];
	snprintf(what, sizeof(what), "minimal loop %s, P=%u",
		 prim_table[prim]->key, nprocs);
	struct prim p;
	int rc = prim_init(&p, prim, 1, "min");
	if (rc != 0) {
		bench_fail("%s: init: %s", what, prim_strerror(rc));
		return -1;
	}
	struct min_shared *sh = bench_shared_alloc(sizeof(*sh));
	struct min_arg a = {.p = &p, .sh = sh};
	pid_t pids[BENCH_MAX_PROCS];
	for (uint32_t i = 0; i < nprocs; i++)
		pids[i] = procs_fork(min_worker, (int)i, &a);
	int64_t t0 = gate_open_when_ready(&sh->gate, nprocs, pids, what);
	int64_t t1 = -1;
	if (t0 > 0) {
		bench_sleep_ns(duration_ms * 1000000);
		t1 = bench_now_ns();
		atomic_store(&sh->gate.stop, 1);
	}
	int ret = procs_reap(pids, (int)nprocs, 60000, what) != 0 || t0 < 0
			  ? -1
			  : 0;
	uint64_t total = 0;
	for (uint32_t i = 0; i < nprocs; i++) {
		total += sh->n[i][0];
		if (sh->rc[i] != 0) {
			bench_fail("%s: worker %u: %s", what, i,
				   prim_strerror(sh->rc[i]));
			ret = -1;
		}
	}
	if (ret == 0 && sh->counter != total) {
		bench_fail("%s: the shared counter says %llu critical "
			   "sections, the workers did %llu: mutual exclusion "
			   "was broken",
			   what, (unsigned long long)sh->counter,
			   (unsigned long long)total);
		ret = -1;
	}
	if (ret == 0)
		*ops_per_s = stats_per_s(total, t0, t1);
	bench_shared_free(sh, sizeof(*sh));
	p.ops->destroy(&p);
	return ret;
}
