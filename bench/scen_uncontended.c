/*
 * scen_uncontended.c - scenario 1: the cost of acquire+release when
 * nobody else wants the lock, in one process (pairs.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pairs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

static int unc_attach(void *lock)
{
	struct prim *p = lock;
	return p->ops->attach(p);
}

PAIRS_INLINE int unc_pair(void *lock)
{
	struct prim *p = lock;
	int rc = p->ops->acquire(p, 0, INT64_MAX);
	if (rc == 0)
		rc = p->ops->release(p, 0);
	return rc;
}

static void unc_detach(void *lock)
{
	struct prim *p = lock;
	p->ops->detach(p);
}

static const struct pairs_ops unc_ops = {unc_attach, unc_pair, unc_detach};

static int unc_worker(int id, void *job)
{
	(void)id;
	return pairs_worker(job, &unc_ops);
}

void scen_uncontended(unsigned prims)
{
	int rounds = bench_cfg.rounds + 2; /* cheap: a few more rounds */
	int iters = bench_cfg.uncontended_iters;
	double per[PRIM_COUNT][SCEN_MAX_ROUNDS];
	int got[PRIM_COUNT] = {0};
	struct scen_runs it;
	/* Runs at most SCEN_MAX_ROUNDS rounds (the progress lines and the
	 * note count all of them). */
	scen_runs_start(&it, prims, scen_rounds(2));
	while (scen_runs_next(&it)) {
		enum prim_id id = it.prim;
		const struct prim_ops *ops = prim_table[id];
		bench_progress("1/7 uncontended: round %d/%d, %s", it.round + 1,
			       rounds, ops->key);
		struct prim p;
		int rc = prim_init(&p, id, 1, "u");
		if (rc != 0) {
			bench_fail("uncontended %s: init: %s", ops->key,
				   prim_strerror(rc));
			continue;
		}
		char what[64];
		snprintf(what, sizeof(what), "uncontended %s", ops->key);
		double ns;
		int n = ops->rpc ? iters / RPC_ITERS_DIV : iters;
		if (pairs_time(unc_worker, &p, n, what, &ns) == 0)
			per[id][got[id]++] = ns;
		p.ops->destroy(&p);
	}
	for (int i = 0; i < PRIM_COUNT; i++)
		if (prims & (1u << i))
			results_add(SCEN_UNCONTENDED, i, "", "ns_per_pair",
				    stats_median(per[i], (size_t)got[i]), "ns");
	results_note(SCEN_UNCONTENDED,
		     "median of %d rounds of %d acquire+release pairs; lockmgr "
		     "with a %lld ms lease, through the quorum of 3 tables",
		     rounds, iters, (long long)bench_cfg.ttl_ms);
	if (prims & (1u << PRIM_REDIS))
		results_note(SCEN_UNCONTENDED,
			     "redis: %d pairs per round (two round trips to "
			     "lockbench's own redis-server on a Unix socket: "
			     "SET NX PX, then the compare-and-delete EVAL)",
			     iters / RPC_ITERS_DIV);
}
