/*
 * scen_manylocks.c - scenario 5: 16 processes over many locks, each
 * operation on a lock drawn uniformly or from a Zipf distribution
 * (s = 0.99, the YCSB default: a few hot locks, a long cold tail).
 *
 * Each lock has its own plain counter, checked after the run like the
 * single lock's. Peers take part where their design makes a lock per
 * name reasonable: a shared array of robust mutexes or futex words, one
 * byte-range OFD lock per name in one file, a SysV set (up to SEMMSL
 * semaphores). A file per lock (flock) and a named POSIX semaphore per
 * lock are measured only up to 1000 locks: a million files or shm
 * objects is not a design anyone would ship.
 *
 * lockmgr's names are created once, before the first run, so that the
 * runs measure taking locks, not inserting names; lockmgr-ref resolves
 * the names a worker will use before the clock starts.
 *
 * Throughput only: the runs' loop is acquire, increment, release with
 * no clock inside (timed_run.h); no latency is taken here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "daemon.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "timed_run.h"

#define NPROCS 16
#define ZIPF_S 0.99

/* Peers limited to the small size, to be reported as such. */
static uint32_t limit_of(enum prim_id id)
{
	if (id == PRIM_FLOCK || id == PRIM_POSIX_SEM)
		return 1000;
	return prim_table[id]->max_locks;
}

static void one_size(unsigned prims, uint32_t nlocks, int size_idx)
{
	struct zipf z;
	if (zipf_init(&z, nlocks, ZIPF_S) != 0)
		bench_die("out of memory for a Zipf table of %u", nlocks);
	char tag[16];
	snprintf(tag, sizeof(tag), "m%u", nlocks);
	int rounds = scen_rounds(0);
	for (int zi = 0; zi < 2; zi++) {
		enum lock_choice choice = zi ? CHOOSE_ZIPF : CHOOSE_UNIFORM;
		char param[32];
		snprintf(param, sizeof(param), "N=%u %s", nlocks,
			 zi ? "zipf" : "uniform");
		double ops[PRIM_COUNT][SCEN_MAX_ROUNDS];
		int got[PRIM_COUNT] = {0};
		bool na[PRIM_COUNT] = {false};
		struct scen_runs it;
		scen_runs_start(&it, prims, rounds);
		while (scen_runs_next(&it)) {
			enum prim_id id = it.prim;
			if (nlocks > limit_of(id)) {
				na[id] = true;
				continue;
			}
			bench_progress("5/7 many locks: %s, round %d/%d, %s",
				       param, it.round + 1, rounds,
				       prim_table[id]->key);
			struct timed_spec spec = {
				.prim = id,
				.nprocs = NPROCS,
				.nlocks = nlocks,
				.tag = tag,
				.choice = choice,
				.zipf = &z,
				.duration_ms = bench_cfg.duration_ms,
				.warmup_ms = bench_cfg.duration_ms,
				.seed = (uint32_t)(it.round * 977 + zi * 31 +
						   size_idx),
			};
			struct timed_result res;
			int rc = timed_run(&spec, &res);
			if (rc == PRIM_ELIMIT)
				na[id] = true;
			if (rc != 0)
				continue;
			ops[id][got[id]++] = res.ops_per_s;
		}
		for (int i = 0; i < PRIM_COUNT; i++) {
			if (!(prims & (1u << i)))
				continue;
			if (na[i]) {
				results_add(SCEN_MANYLOCKS, i, param,
					    "ops_per_s", NAN, "ops/s");
				continue;
			}
			results_add(SCEN_MANYLOCKS, i, param, "ops_per_s",
				    stats_median(ops[i], (size_t)got[i]),
				    "ops/s");
		}
	}
	zipf_free(&z);
}

void scen_manylocks(unsigned prims)
{
	uint32_t sizes[2] = {bench_cfg.many_small, bench_cfg.many_large};
	for (int s = 0; s < 2; s++) {
		/* Creating a million names takes a moment: say so. */
		bench_progress("5/7 many locks: N=%u (creating names)",
			       sizes[s]);
		one_size(prims, sizes[s], s);
	}
	double bytes = lmd_region_bytes();
	int lm = (prims & (1u << PRIM_LOCKMGR)) ? PRIM_LOCKMGR
						 : PRIM_LOCKMGR_REF;
	results_add(SCEN_MANYLOCKS, lm, "", "region_bytes", bytes, "B");
	results_add(SCEN_MANYLOCKS, lm, "", "max_locks",
		    (double)bench_cfg.max_locks, "");
	results_add(SCEN_MANYLOCKS, lm, "", "bytes_per_lock",
		    bytes / bench_cfg.max_locks, "B");
	results_note(SCEN_MANYLOCKS,
		     "%d processes, %d round%s of %lld ms after as long a "
		     "warm-up (fresh processes fault their page tables in "
		     "first); Zipf s = %.2f; each "
		     "lock has its own checked counter. flock and POSIX sem "
		     "(a file or shm object per lock) run at N <= 1000 only, "
		     "SysV at N <= 32000 (SEMMSL): n/a above",
		     NPROCS, bench_cfg.rounds, bench_cfg.rounds == 1 ? "" : "s",
		     (long long)bench_cfg.duration_ms, ZIPF_S);
	results_note(SCEN_MANYLOCKS,
		     "memory: lockmgr region %.0f bytes / --max-locks %u "
		     "(3 tables + name index + sessions + headers); peers "
		     "here use one 64-byte line per lock in shared memory",
		     bytes, bench_cfg.max_locks);
}
