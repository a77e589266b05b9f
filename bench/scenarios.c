/*
 * scenarios.c - what the scenarios share: the order of primitives in a
 * round, the runs of an interleaved measurement, and the sweep of
 * process counts.
 */
#include "scenarios.h"

#include <stdio.h>

#include "results.h"

const unsigned contended_p[CONTENDED_NP] = {1, 2, 4, 8, 16, 64};

/* The primitives of mask in round r's order (rotated by r); returns n. */
static int scen_order(unsigned mask, int round, enum prim_id out[PRIM_COUNT])
{
	enum prim_id all[PRIM_COUNT];
	int n = 0;
	for (int i = 0; i < PRIM_COUNT; i++)
		if (mask & (1u << i))
			all[n++] = (enum prim_id)i;
	for (int k = 0; k < n; k++)
		out[k] = all[(k + round) % n];
	return n;
}

int scen_rounds(int extra)
{
	int rounds = bench_cfg.rounds + extra;
	return rounds < SCEN_MAX_ROUNDS ? rounds : SCEN_MAX_ROUNDS;
}

void scen_runs_start(struct scen_runs *it, unsigned mask, int rounds)
{
	it->mask = mask;
	it->rounds = rounds;
	it->round = -1;
	it->k = 0;
	it->n = 0;
}

bool scen_runs_next(struct scen_runs *it)
{
	while (it->k >= it->n) {
		if (it->round + 1 >= it->rounds)
			return false;
		it->round++;
		it->n = scen_order(it->mask, it->round, it->order);
		it->k = 0;
	}
	it->prim = it->order[it->k++];
	return true;
}

void scen_add_p50_p99(enum scenario scen, int prim, const char *param,
		      const char *prefix, struct samples *pool)
{
	char m[24];
	stats_sort_i64(pool->v, pool->n);
	snprintf(m, sizeof(m), "%sp50_ns", prefix);
	results_add(scen, prim, param, m,
		    stats_pct_sorted(pool->v, pool->n, 50), "ns");
	snprintf(m, sizeof(m), "%sp99_ns", prefix);
	results_add(scen, prim, param, m,
		    stats_pct_sorted(pool->v, pool->n, 99), "ns");
}
