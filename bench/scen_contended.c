/*
 * scen_contended.c - scenario 2: P processes on one lock.
 *
 * Per P, every primitive runs twice per round, rounds interleaved: a
 * throughput run, whose loop is acquire, increment, release and
 * nothing else, and a latency run, whose loop times every acquire
 * (timed_run.h: timing lengthens the hold, so the two figures never
 * come from the same run). Throughput, fairness and streak are the
 * median over rounds; latency percentiles come from the samples of all
 * rounds' latency runs pooled, so that p99.9 rests on enough samples.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "timed_run.h"


/* Record a pool's percentiles as p50_ns, p99_ns, p999_ns. */
static void add_percentiles(enum scenario scen, int prim, const char *param,
			    struct samples *pool)
{
	stats_sort_i64(pool->v, pool->n);
	results_add(scen, prim, param, "p50_ns",
		    stats_pct_sorted(pool->v, pool->n, 50), "ns");
	results_add(scen, prim, param, "p99_ns",
		    stats_pct_sorted(pool->v, pool->n, 99), "ns");
	results_add(scen, prim, param, "p999_ns",
		    stats_pct_sorted(pool->v, pool->n, 99.9), "ns");
	results_add(scen, prim, param, "samples", (double)pool->n, "");
}

void scen_contended(unsigned prims)
{
	int rounds = scen_rounds(0);
	for (int pi = 0; pi < CONTENDED_NP; pi++) {
		unsigned np = contended_p[pi];
		char param[16];
		snprintf(param, sizeof(param), "P=%u", np);
		double ops[PRIM_COUNT][SCEN_MAX_ROUNDS],
			fair[PRIM_COUNT][SCEN_MAX_ROUNDS],
			streak[PRIM_COUNT][SCEN_MAX_ROUNDS];
		int got[PRIM_COUNT] = {0};
		struct samples pool[PRIM_COUNT];
		memset(pool, 0, sizeof(pool));
		struct scen_runs it;
		scen_runs_start(&it, prims, rounds);
		while (scen_runs_next(&it)) {
			enum prim_id id = it.prim;
			bench_progress("2/7 contended: P=%u, round %d/%d, %s",
				       np, it.round + 1, rounds,
				       prim_table[id]->key);
			uint32_t seed = (uint32_t)(it.round * 131 + pi);
			/* A failed latency run is reported (bench_fail) and
			 * leaves fewer samples; the throughput stands. */
			timed_latency_one_lock(id, np, seed, &pool[id]);
			struct timed_result res;
			if (timed_run_one_lock(id, np, seed, &res) != 0)
				continue;
			ops[id][got[id]] = res.ops_per_s;
			fair[id][got[id]] = res.fairness;
			streak[id][got[id]] = res.mean_streak;
			got[id]++;
		}
		for (int i = 0; i < PRIM_COUNT; i++) {
			if (!(prims & (1u << i)))
				continue;
			size_t g = (size_t)got[i];
			results_add(SCEN_CONTENDED, i, param, "ops_per_s",
				    stats_median(ops[i], g), "ops/s");
			results_add(SCEN_CONTENDED, i, param, "fairness",
				    stats_median(fair[i], g), "min/max");
			results_add(SCEN_CONTENDED, i, param, "mean_streak",
				    stats_median(streak[i], g), "acquires");
			add_percentiles(SCEN_CONTENDED, i, param, &pool[i]);
			if (np == 16)
				results_set_cdf(i, pool[i].v, pool[i].n);
			samples_free(&pool[i]);
		}
	}
	results_note(SCEN_CONTENDED,
		     "%d interleaved round%s per P and primitive, each a "
		     "throughput run of %lld ms (loop: acquire, increment, "
		     "release; no clock inside) and a latency run of %lld ms; "
		     "ops/s, fairness (min/max critical sections per process) "
		     "and streak (from each process's own count of the "
		     "counter values it saw) are medians over the throughput "
		     "runs; latency percentiles pool the latency runs' "
		     "samples (acquire call only, clock_gettime on both "
		     "sides)",
		     rounds, rounds == 1 ? "" : "s",
		     (long long)bench_cfg.duration_ms,
		     (long long)timed_latency_ms(bench_cfg.duration_ms));
}
