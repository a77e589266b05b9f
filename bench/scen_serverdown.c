/*
 * scen_serverdown.c - scenario 6: lockmgr's contended run (P = 16) with
 * one of its three servers killed, as a ratio to all three up.
 *
 * The all-up rounds run right before the kill, so that both halves see
 * the same machine; with server 2 down every grant needs both of the
 * other two tables. lockmgrd runs with --restart-delay -1, so the
 * server stays down until the end of the run (this scenario is last).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "daemon.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "timed_run.h"

#define NPROCS 16
#define VICTIM 2u

static void measure(unsigned prims, const char *param, int rounds)
{
	double ops[PRIM_COUNT][SCEN_MAX_ROUNDS];
	int got[PRIM_COUNT] = {0};
	struct samples pool[PRIM_COUNT];
	memset(pool, 0, sizeof(pool));
	struct scen_runs it;
	scen_runs_start(&it, prims, rounds);
	while (scen_runs_next(&it)) {
		enum prim_id id = it.prim;
		bench_progress("6/7 server down: %s, round %d/%d, %s", param,
			       it.round + 1, rounds, prim_table[id]->key);
		/* p99 and p99.9 from a latency run of their own, the
		 * throughput from a run with no clock in its loop. */
		uint32_t seed = (uint32_t)(it.round * 7 + 3);
		timed_latency_one_lock(id, NPROCS, seed, &pool[id]);
		struct timed_result res;
		if (timed_run_one_lock(id, NPROCS, seed, &res) == 0)
			ops[id][got[id]++] = res.ops_per_s;
	}
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		stats_sort_i64(pool[i].v, pool[i].n);
		results_add(SCEN_SERVERDOWN, i, param, "ops_per_s",
			    stats_median(ops[i], (size_t)got[i]), "ops/s");
		results_add(SCEN_SERVERDOWN, i, param, "p99_ns",
			    stats_pct_sorted(pool[i].v, pool[i].n, 99), "ns");
		results_add(SCEN_SERVERDOWN, i, param, "p999_ns",
			    stats_pct_sorted(pool[i].v, pool[i].n, 99.9),
			    "ns");
		samples_free(&pool[i]);
	}
}

void scen_serverdown(unsigned prims)
{
	prims &= (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	if (prims == 0)
		return;
	int rounds = scen_rounds(0);
	measure(prims, "3 up", rounds);
	bench_progress("6/7 server down: killing server %u", VICTIM);
	if (lmd_kill_server(VICTIM) != 0) {
		bench_fail("server down: could not take server %u down",
			   VICTIM);
		return;
	}
	measure(prims, "1 down", rounds);
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		double up = results_get(SCEN_SERVERDOWN, i, "3 up", "ops_per_s");
		double down =
			results_get(SCEN_SERVERDOWN, i, "1 down", "ops_per_s");
		results_add(SCEN_SERVERDOWN, i, "", "ratio_down_up",
			    down / up, "x");
	}
	results_note(SCEN_SERVERDOWN,
		     "%d processes on one lock, %d round%s of %lld ms with all "
		     "3 servers up, then %d with server %u SIGKILLed (lockmgrd "
		     "--restart-delay -1 keeps it down)",
		     NPROCS, rounds, rounds == 1 ? "" : "s",
		     (long long)bench_cfg.duration_ms, rounds, VICTIM);
}
