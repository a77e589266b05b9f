/*
 * scen_crosscheck.c - scenario 12 (lockbench --minimal): the contended
 * engine's throughput against the minimal loop's (minimal.h), for every
 * primitive at P = 1 and P = 16.
 *
 * Issue 13 found the engine reading the clock and writing a shared log
 * inside every hold, which cut the robust mutex's P = 16 figure by
 * 4.4x against a plain loop. This scenario keeps that from coming back
 * unseen: in each round every primitive runs the engine's throughput
 * run (timed_run_one_lock, as scenario 2 does) and the minimal loop,
 * back to back, in an order that alternates by round; each figure is
 * the median over rounds, and a primitive whose two figures differ by
 * more than CROSS_TOLERANCE is flagged in the table and the CSV.
 *
 * A flag is reported, never a failure: on a loaded machine two runs of
 * the same loop can differ by that much, and a timed assertion would
 * only teach people to ignore it. Rerun on a quiet machine with more
 * rounds before believing one.
 */
#include <math.h>
#include <stdio.h>

#include "bench.h"
#include "minimal.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "timed_run.h"

const unsigned crosscheck_p[CROSS_NP] = {1, 16};

void scen_crosscheck(unsigned prims)
{
	int rounds = scen_rounds(0);
	for (int pi = 0; pi < CROSS_NP; pi++) {
		unsigned np = crosscheck_p[pi];
		char param[16];
		snprintf(param, sizeof(param), "P=%u", np);
		double eng[PRIM_COUNT][SCEN_MAX_ROUNDS],
			min[PRIM_COUNT][SCEN_MAX_ROUNDS];
		int ge[PRIM_COUNT] = {0}, gm[PRIM_COUNT] = {0};
		struct scen_runs it;
		scen_runs_start(&it, prims, rounds);
		while (scen_runs_next(&it)) {
			enum prim_id id = it.prim;
			bench_progress("11 cross-check: P=%u, round %d/%d, %s",
				       np, it.round + 1, rounds,
				       prim_table[id]->key);
			/* Which of the two goes first alternates, so that
			 * neither always meets a warmer (or colder) cache. */
			for (int k = 0; k < 2; k++) {
				bool engine = (k + it.round) % 2 == 0;
				if (engine) {
					struct timed_result res;
					if (timed_run_one_lock(
						    id, np,
						    (uint32_t)(it.round * 17 +
							       pi),
						    &res) == 0)
						eng[id][ge[id]++] =
							res.ops_per_s;
				} else {
					double v;
					if (minimal_run(id, np,
							bench_cfg.duration_ms,
							&v) == 0)
						min[id][gm[id]++] = v;
				}
			}
		}
		for (int i = 0; i < PRIM_COUNT; i++) {
			if (!(prims & (1u << i)))
				continue;
			double e = stats_median(eng[i], (size_t)ge[i]);
			double m = stats_median(min[i], (size_t)gm[i]);
			double r = m > 0 && !isnan(e) ? e / m : NAN;
			results_add(SCEN_CROSSCHECK, i, param, "engine_ops_per_s",
				    e, "ops/s");
			results_add(SCEN_CROSSCHECK, i, param,
				    "minimal_ops_per_s", m, "ops/s");
			results_add(SCEN_CROSSCHECK, i, param,
				    "engine_over_minimal", r, "ratio");
			results_add(SCEN_CROSSCHECK, i, param, "flagged",
				    isnan(r) ? NAN
					     : fabs(r - 1) > CROSS_TOLERANCE,
				    "bool");
		}
	}
	results_note(SCEN_CROSSCHECK,
		     "%d interleaved round%s of %lld ms per P and primitive, "
		     "each the engine's throughput run (scenario 2's) and the "
		     "minimal loop (acquire, counter++, release; nothing "
		     "else), order alternating; medians over rounds; "
		     "\"DIFFER\": more than %.0f%% apart (reported, never a "
		     "failure)",
		     rounds, rounds == 1 ? "" : "s",
		     (long long)bench_cfg.duration_ms, CROSS_TOLERANCE * 100);
}
