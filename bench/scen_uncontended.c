/*
 * scen_uncontended.c - scenario 1: the cost of acquire+release when
 * nobody else wants the lock, in one process.
 *
 * The loop runs in a forked worker like every other measurement, so a
 * primitive's per-process setup (attach) is the same as when contended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

struct unc_shared {
	int64_t ns;
	int rc;
	char what[16];
};

struct unc_arg {
	struct prim *p;
	struct unc_shared *out;
	int iters;
};

static int unc_worker(int id, void *arg)
{
	(void)id;
	struct unc_arg *a = arg;
	struct prim *p = a->p;
	int rc = p->ops->attach(p);
	if (rc != 0) {
		a->out->rc = rc;
		snprintf(a->out->what, sizeof(a->out->what), "attach");
		return 3;
	}
	/* Warm-up: fault in the lock's memory and the library's code. */
	int warm = a->iters / 10 + 1;
	int64_t t0 = 0;
	for (int k = -warm; k < a->iters; k++) {
		if (k == 0)
			t0 = bench_now_ns();
		rc = p->ops->acquire(p, 0, INT64_MAX);
		if (rc == 0)
			rc = p->ops->release(p, 0);
		if (rc != 0) {
			a->out->rc = rc;
			snprintf(a->out->what, sizeof(a->out->what),
				 "acquire/release");
			return 4;
		}
	}
	a->out->ns = bench_now_ns() - t0;
	p->ops->detach(p);
	return 0;
}

void scen_uncontended(unsigned prims)
{
	int rounds = bench_cfg.rounds + 2; /* cheap: a few more rounds */
	int iters = bench_cfg.uncontended_iters;
	double per[PRIM_COUNT][16];
	int got[PRIM_COUNT] = {0};
	struct unc_shared *out = bench_shared_alloc(sizeof(*out));
	for (int r = 0; r < rounds && r < 16; r++) {
		enum prim_id order[PRIM_COUNT];
		int n = scen_order(prims, r, order);
		for (int k = 0; k < n; k++) {
			enum prim_id id = order[k];
			const struct prim_ops *ops = prim_table[id];
			bench_progress("1/7 uncontended: round %d/%d, %s", r + 1,
				       rounds, ops->key);
			struct prim p;
			int rc = prim_init(&p, id, 1, "u");
			if (rc != 0) {
				bench_fail("uncontended %s: init: %s",
					   ops->key, prim_strerror(rc));
				continue;
			}
			memset(out, 0, sizeof(*out));
			struct unc_arg a = {.p = &p, .out = out, .iters = iters};
			pid_t pid = procs_fork(unc_worker, 0, &a);
			char what[64];
			snprintf(what, sizeof(what), "uncontended %s", ops->key);
			if (procs_reap(&pid, 1, 60000, what) == 0)
				per[id][got[id]++] = (double)out->ns / iters;
			else if (out->rc != 0)
				bench_fail("uncontended %s: %s: %s", ops->key,
					   out->what, prim_strerror(out->rc));
			p.ops->destroy(&p);
		}
	}
	for (int i = 0; i < PRIM_COUNT; i++)
		if (prims & (1u << i))
			results_add(SCEN_UNCONTENDED, i, "", "ns_per_pair",
				    stats_median(per[i], (size_t)got[i]), "ns");
	results_note(SCEN_UNCONTENDED,
		     "median of %d rounds of %d acquire+release pairs; lockmgr "
		     "with a %lld ms lease, through the quorum of 3 tables",
		     rounds, iters, (long long)bench_cfg.ttl_ms);
	bench_shared_free(out, sizeof(*out));
}
