/*
 * scen_rw.c - scenario 7: readers and writers. Shared locks (lockmgr S,
 * a process-shared pthread rwlock's rdlock, flock LOCK_SH) against the
 * same primitives' exclusive locks.
 *
 *   uncontended  one process, acquire+release pairs, S and X: ns per
 *                pair and S/X. lockmgr takes both modes through
 *                lm_acquire_ex by name (the same call, so the ratio is
 *                the mode's cost); its plain lm_acquire and, by ref,
 *                lm_acquire_ref (X only) are measured beside them.
 *   mixes        P processes on one lock; each operation is a read with
 *                probability 95% (then 50%), drawn from a PRNG seeded
 *                by the worker's index and the mix only, so every
 *                primitive and round replays the same sequence of
 *                operations. Throughput is operations completed over
 *                wall time; latency samples time the acquire call only,
 *                never the critical section.
 *
 * The critical section is the same for every primitive: a fixed spin,
 * with the checks below around it. Its counters are the proof that the
 * lock works: a benchmark that measured a broken shared mode would be
 * worthless, so any violation fails the run.
 *
 *   - shared atomic counts of readers and writers inside (seq_cst, a
 *     Dekker pair: of a reader and a writer inside at once, at least
 *     one sees the other): a writer must find itself alone, a reader
 *     no writer, both on entry and again on exit;
 *   - a torn read: a writer stores the first data word, spins, then
 *     the others; a reader loads the first, spins, then the others,
 *     and they must all be equal;
 *   - a lost write: writers increment a plain counter, whose final
 *     value must equal the writes the workers report.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "critical.h"
#include "daemon.h"
#include "pairs.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "workers.h"


const unsigned rw_p[RW_NP] = {1, 2, 4, 8, 16};
const unsigned rw_read_pct[RW_NMIX] = {95, 50};

void rw_param(char *buf, size_t n, unsigned np, int mix)
{
	snprintf(buf, n, "P=%u %u/%u", np, rw_read_pct[mix],
		 100 - rw_read_pct[mix]);
}

/* ---- uncontended: S and X pairs in one process --------------------- */

enum unc_how { HOW_S, HOW_X, HOW_PLAIN };

struct unc_variant {
	enum prim_id id;
	enum unc_how how;
};

static const struct unc_variant unc_all[] = {
	{PRIM_LOCKMGR, HOW_S},     {PRIM_LOCKMGR, HOW_X},
	{PRIM_LOCKMGR, HOW_PLAIN}, {PRIM_LOCKMGR_REF, HOW_PLAIN},
	{PRIM_RWLOCK, HOW_S},      {PRIM_RWLOCK, HOW_X},
	{PRIM_FLOCK, HOW_S},       {PRIM_FLOCK, HOW_X},
};
#define N_UNC (sizeof(unc_all) / sizeof(unc_all[0]))

static const char *const how_metric[] = {
	[HOW_S] = "S_ns_per_pair",
	[HOW_X] = "X_ns_per_pair",
	[HOW_PLAIN] = "X_plain_ns_per_pair",
};

/* One variant's lock, for pairs.h. */
struct unc_lock {
	struct prim p;
	enum unc_how how;
};

static int unc_attach(void *lock)
{
	struct unc_lock *l = lock;
	return l->p.ops->attach(&l->p);
}

PAIRS_INLINE int unc_pair(void *lock)
{
	struct unc_lock *l = lock;
	struct prim *p = &l->p;
	int rc;
	if (l->how == HOW_PLAIN)
		rc = p->ops->acquire(p, 0, INT64_MAX);
	else
		rc = p->ops->acquire_mode(p, 0, l->how == HOW_S, INT64_MAX);
	if (rc == 0)
		rc = p->ops->release(p, 0);
	return rc;
}

static void unc_detach(void *lock)
{
	struct unc_lock *l = lock;
	l->p.ops->detach(&l->p);
}

static const struct pairs_ops unc_ops = {unc_attach, unc_pair, unc_detach};

static int unc_worker(int id, void *job)
{
	(void)id;
	return pairs_worker(job, &unc_ops);
}

static void rw_uncontended(unsigned prims)
{
	int rounds = scen_rounds(2); /* cheap: a few more rounds */
	int iters = bench_cfg.uncontended_iters;
	struct unc_variant v[N_UNC];
	size_t nv = 0;
	for (size_t i = 0; i < N_UNC; i++)
		if (prims & (1u << unc_all[i].id))
			v[nv++] = unc_all[i];
	if (nv == 0)
		return;
	double per[N_UNC][SCEN_MAX_ROUNDS];
	int got[N_UNC] = {0};
	for (int r = 0; r < rounds; r++) {
		for (size_t k = 0; k < nv; k++) {
			size_t j = (k + (size_t)r) % nv; /* rotate */
			const struct prim_ops *ops = prim_table[v[j].id];
			const char *m = how_metric[v[j].how];
			bench_progress("7/7 read-write: uncontended, round "
				       "%d/%d, %s %s", r + 1, rounds, ops->key,
				       m);
			struct unc_lock l = {.how = v[j].how};
			int rc = prim_init(&l.p, v[j].id, 1, "rw");
			if (rc != 0) {
				bench_fail("rw uncontended %s: init: %s",
					   ops->key, prim_strerror(rc));
				continue;
			}
			char what[96];
			snprintf(what, sizeof(what), "rw uncontended %s %s",
				 ops->key, m);
			double ns;
			if (pairs_time(unc_worker, &l, iters, what, &ns) == 0)
				per[j][got[j]++] = ns;
			l.p.ops->destroy(&l.p);
		}
	}
	for (size_t j = 0; j < nv; j++)
		results_add(SCEN_RW, v[j].id, "uncontended",
			    how_metric[v[j].how],
			    stats_median(per[j], (size_t)got[j]), "ns");
	for (int i = 0; i < PRIM_COUNT; i++) {
		double s = results_get(SCEN_RW, i, "uncontended",
				       "S_ns_per_pair");
		double x = results_get(SCEN_RW, i, "uncontended",
				       "X_ns_per_pair");
		if (!isnan(s) && !isnan(x))
			results_add(SCEN_RW, i, "uncontended", "S_over_X",
				    s / x, "x");
	}
	results_note(SCEN_RW,
		     "uncontended: median of %d rounds of %d acquire+release "
		     "pairs in one process; lockmgr S and X both through "
		     "lm_acquire_ex by name, \"X plain\" is lm_acquire "
		     "(lockmgr) and lm_acquire_ref (lockmgr ref, X only)",
		     rounds, iters);
}

/* ---- the mixes: P processes on one lock ---------------------------- */

/* The lock's critical-section state: the checks' counters on one line,
 * the guarded plain data on another. */
struct cs_state {
	_Alignas(64) _Atomic uint32_t readers;
	_Atomic uint32_t writers;
	_Alignas(64) uint64_t data[4];
	uint64_t writes;               /* plain: the lock guards it */
	_Alignas(64) _Atomic uint64_t violations;
};

struct rw_out {
	uint64_t reads, writes;
	uint64_t seen[2];   /* latencies offered: [0] read, [1] write */
	int64_t last_ns;    /* when its last operation ended */
	uint8_t pad_[24];
};

struct rw_run {
	enum prim_id id;
	uint32_t nprocs;
	unsigned read_pct;
	int mix;
	struct workers_map map; /* samples: [0] read, [1] write */
	struct cs_state *cs;    /* in map */
	struct rw_out *out;     /* in map */
	struct prim prim;
};

struct rw_result {
	double ops_per_s;
	uint64_t reads, writes, violations;
	double fairness;
};

/* A reader inside: no writer may be, before or after its spin, and the
 * data it reads must be one writer's, whole. */
static uint64_t read_section(struct cs_state *cs, uint64_t *sink)
{
	uint64_t bad = 0;
	atomic_fetch_add(&cs->readers, 1);
	if (atomic_load(&cs->writers) != 0)
		bad++;
	volatile uint64_t *d = cs->data;
	uint64_t first = d[0];
	*sink = cs_spin(*sink + first);
	if (d[1] != first || d[2] != first || d[3] != first)
		bad++;
	if (atomic_load(&cs->writers) != 0)
		bad++;
	atomic_fetch_sub(&cs->readers, 1);
	return bad;
}

/* A writer inside: alone, before and after its spin. */
static uint64_t write_section(struct cs_state *cs, uint64_t *sink)
{
	uint64_t bad = 0;
	if (atomic_fetch_add(&cs->writers, 1) != 0)
		bad++;
	if (atomic_load(&cs->readers) != 0)
		bad++;
	volatile uint64_t *d = cs->data;
	uint64_t w = cs->writes + 1;
	d[0] = w;
	*sink = cs_spin(*sink + w);
	d[1] = w;
	d[2] = w;
	d[3] = w;
	cs->writes = w;
	if (atomic_load(&cs->readers) != 0 || atomic_load(&cs->writers) != 1)
		bad++;
	atomic_fetch_sub(&cs->writers, 1);
	return bad;
}

static int rw_worker(int id, void *arg)
{
	struct rw_run *r = arg;
	struct prim *p = &r->prim;
	/* Seeded by the worker's index and the mix only: the same
	 * sequence of reads and writes for every primitive and round. */
	uint64_t rng = ((uint64_t)id + 1) * UINT64_C(0x9e3779b97f4a7c15) +
		       ((uint64_t)r->mix << 32) + 1;
	/* The reservoir's own draws, apart: they must not shift the
	 * sequence of operations. */
	uint64_t rng_res = rng ^ UINT64_C(0x5851f42d4c957f2d);
	int rc = p->ops->attach(p);
	if (rc != 0)
		return workers_fail_at_start(r->map.hdr, id, "attach", rc);
	int64_t *mine[2] = {
		workers_samples(&r->map, id, 0),
		workers_samples(&r->map, id, 1),
	};
	uint64_t n[2] = {0, 0}, seen[2] = {0, 0}, bad = 0, sink = 0;
	int64_t last = 0;
	int status = 0;
	gate_arrive_and_wait(&r->map.hdr->gate);

	while (!atomic_load_explicit(&r->map.hdr->gate.stop,
				     memory_order_relaxed)) {
		bool rd = (bench_rand(&rng) >> 32) % 100 < r->read_pct;
		int64_t t0 = bench_now_ns();
		rc = p->ops->acquire_mode(p, 0, rd, INT64_MAX);
		int64_t t1 = bench_now_ns();
		if (rc != 0) {
			workers_fail(r->map.hdr, id,
				     rd ? "acquire shared"
					: "acquire exclusive",
				     rc);
			status = 4;
			break;
		}
		bad += rd ? read_section(r->cs, &sink)
			  : write_section(r->cs, &sink);
		rc = p->ops->release(p, 0);
		last = bench_now_ns();
		if (rc != 0) {
			workers_fail(r->map.hdr, id, "release", rc);
			status = 4;
			break;
		}
		int k = rd ? 0 : 1;
		n[k]++;
		reservoir_offer(mine[k], r->map.cap, &seen[k], t1 - t0,
				bench_rand(&rng_res));
	}
	if (bad != 0)
		atomic_fetch_add(&r->cs->violations, bad);
	r->out[id].reads = n[0];
	r->out[id].writes = n[1];
	r->out[id].seen[0] = seen[0];
	r->out[id].seen[1] = seen[1];
	__asm__ volatile("" : : "r"(sink));
	r->out[id].last_ns = last;
	p->ops->detach(p);
	return status;
}

/* One timed run. 0, or -1 after a failure reported with bench_fail. */
static int rw_run_once(enum prim_id id, uint32_t np, int mix,
		       struct rw_result *res, struct samples pool[2])
{
	memset(res, 0, sizeof(*res));
	struct rw_run r;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.nprocs = np;
	r.mix = mix;
	r.read_pct = rw_read_pct[mix];
	workers_map(&r.map, np, sizeof(struct cs_state), sizeof(struct rw_out),
		    bench_cfg.sample_cap);
	r.cs = r.map.state;
	r.out = r.map.out;
	char param[32];
	rw_param(param, sizeof(param), np, mix);
	char what[96];
	snprintf(what, sizeof(what), "rw %s, %s", prim_table[id]->key, param);

	int rc = prim_init(&r.prim, id, 1, "rw");
	if (rc != 0) {
		workers_unmap(&r.map);
		bench_fail("%s: init: %s", what, prim_strerror(rc));
		return -1;
	}
	int64_t t_open = workers_run(r.map.hdr, np, rw_worker, &r, 0,
				     bench_many_runs_duration_ms(), 60000,
				     what, NULL);
	int ret = 0;
	if (t_open < 0) {
		ret = -1;
	} else {
		uint64_t min = UINT64_MAX, max = 0;
		int64_t end = t_open;
		for (uint32_t i = 0; i < np; i++) {
			const struct rw_out *o = &r.out[i];
			res->reads += o->reads;
			res->writes += o->writes;
			uint64_t ops = o->reads + o->writes;
			min = ops < min ? ops : min;
			max = ops > max ? ops : max;
			if (o->last_ns > end)
				end = o->last_ns;
			for (int k = 0; k < 2; k++)
				samples_add_reservoir(
					&pool[k],
					workers_samples(&r.map, (int)i, k),
					r.map.cap, o->seen[k]);
		}
		res->violations = atomic_load(&r.cs->violations);
		/* A lost write is a violation too. */
		uint64_t w = r.cs->writes;
		res->violations += w > res->writes ? w - res->writes
						   : res->writes - w;
		res->ops_per_s =
			stats_per_s(res->reads + res->writes, t_open, end);
		res->fairness = stats_fairness(min, max);
		if (res->violations != 0) {
			bench_fail("%s: %llu violation%s of the lock (a writer "
				   "not alone, a torn read or a lost write; "
				   "%llu writes counted, %llu done): the "
				   "shared mode is broken",
				   what, (unsigned long long)res->violations,
				   res->violations == 1 ? "" : "s",
				   (unsigned long long)w,
				   (unsigned long long)res->writes);
			ret = -1;
		}
	}
	r.prim.ops->destroy(&r.prim);
	workers_unmap(&r.map);
	return ret;
}

static void rw_mixes(unsigned prims, int rounds)
{
	for (int mix = 0; mix < RW_NMIX; mix++) {
		for (int pi = 0; pi < RW_NP; pi++) {
			unsigned np = rw_p[pi];
			char param[32];
			rw_param(param, sizeof(param), np, mix);
			double ops[PRIM_COUNT][SCEN_MAX_ROUNDS],
				fair[PRIM_COUNT][SCEN_MAX_ROUNDS];
			double wshare[PRIM_COUNT][SCEN_MAX_ROUNDS];
			uint64_t viol[PRIM_COUNT] = {0};
			int got[PRIM_COUNT] = {0};
			struct samples pool[PRIM_COUNT][2];
			memset(pool, 0, sizeof(pool));
			struct scen_runs it;
			scen_runs_start(&it, prims, rounds);
			while (scen_runs_next(&it)) {
				enum prim_id id = it.prim;
				bench_progress("7/7 read-write: %s, round "
					       "%d/%d, %s",
					       param, it.round + 1, rounds,
					       prim_table[id]->key);
				struct rw_result res;
				int rc = rw_run_once(id, np, mix, &res,
						     pool[id]);
				viol[id] += res.violations;
				if (rc != 0)
					continue;
				uint64_t all = res.reads + res.writes;
				ops[id][got[id]] = res.ops_per_s;
				fair[id][got[id]] = res.fairness;
				wshare[id][got[id]] =
					all ? (double)res.writes / (double)all
					    : NAN;
				got[id]++;
			}
			for (int i = 0; i < PRIM_COUNT; i++) {
				if (!(prims & (1u << i)))
					continue;
				size_t g = (size_t)got[i];
				results_add(SCEN_RW, i, param, "ops_per_s",
					    stats_median(ops[i], g), "ops/s");
				results_add(SCEN_RW, i, param, "write_share",
					    stats_median(wshare[i], g), "");
				results_add(SCEN_RW, i, param, "fairness",
					    stats_median(fair[i], g),
					    "min/max");
				results_add(SCEN_RW, i, param, "violations",
					    (double)viol[i], "");
				scen_add_p50_p99(SCEN_RW, i, param, "read_",
						 &pool[i][0]);
				scen_add_p50_p99(SCEN_RW, i, param, "write_",
						 &pool[i][1]);
				samples_free(&pool[i][0]);
				samples_free(&pool[i][1]);
			}
			/* lockmgr's throughput against the host's, in the
			 * same run. */
			double lm = results_get(SCEN_RW, PRIM_LOCKMGR, param,
						"ops_per_s");
			double fl = results_get(SCEN_RW, PRIM_FLOCK, param,
						"ops_per_s");
			double rl = results_get(SCEN_RW, PRIM_RWLOCK, param,
						"ops_per_s");
			if (!isnan(lm) && !isnan(fl))
				results_add(SCEN_RW, PRIM_LOCKMGR, param,
					    "thru_over_flock", lm / fl, "x");
			if (!isnan(lm) && !isnan(rl))
				results_add(SCEN_RW, PRIM_LOCKMGR, param,
					    "thru_over_rwlock", lm / rl, "x");
		}
	}
}

/* ---- memory per lock ------------------------------------------------ */

static void rw_memory(void)
{
	struct lmd_layout l;
	if (lmd_region_layout(&l) != 0) {
		bench_fail("rw: cannot read the region's header");
		return;
	}
	/* What one more lock costs: its name slot, one slot per table
	 * and its share of the hash buckets (the sessions and headers
	 * are fixed costs, in the whole-region figure only). */
	double marginal = (double)l.name_size +
			  (double)l.nservers * (double)l.slot_size +
			  (double)l.bucket_count * 8.0 / (double)l.max_locks;
	double region = lmd_region_bytes();
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "region_bytes", region, "B");
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "max_locks",
		    (double)l.max_locks, "");
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "bytes_per_lock",
		    region / (double)l.max_locks, "B");
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "marginal_bytes_per_lock",
		    marginal, "B");
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "slot_bytes",
		    (double)l.slot_size, "B");
	results_add(SCEN_RW, PRIM_LOCKMGR, "", "name_bytes",
		    (double)l.name_size, "B");
	results_note(SCEN_RW,
		     "memory (region header): %u tables x %u-byte slot + "
		     "%u-byte name + %.1f bytes of hash buckets = %.0f bytes "
		     "per lock; whole region %.0f bytes / %u locks = %.1f "
		     "(sessions and headers included); the modes' group word "
		     "lives in the slot's line",
		     l.nservers, l.slot_size, l.name_size,
		     (double)l.bucket_count * 8.0 / (double)l.max_locks,
		     marginal, region, l.max_locks,
		     region / (double)l.max_locks);
}

void scen_rw(unsigned prims)
{
	/* The primitives with a shared mode; lockmgr ref (X only) in the
	 * uncontended part. */
	unsigned modes = 0;
	for (int i = 0; i < PRIM_COUNT; i++)
		if ((prims & (1u << i)) && prim_table[i]->acquire_mode != NULL)
			modes |= 1u << i;
	unsigned unc = modes | (prims & (1u << PRIM_LOCKMGR_REF));
	int rounds = scen_rounds(0);
	rw_uncontended(unc);
	if (modes != 0)
		rw_mixes(modes, rounds);
	if (prims & (1u << PRIM_LOCKMGR))
		rw_memory();
	results_note(SCEN_RW,
		     "mixes: %d interleaved round%s of %lld ms per point and "
		     "primitive, ops/s the median over rounds; each operation "
		     "a read with the mix's probability (a PRNG per worker "
		     "seeded by its index: the same sequence for every "
		     "primitive); critical section a fixed spin of %.0f ns "
		     "plus overlap checks on shared atomic counters; latency "
		     "is the acquire call only",
		     rounds, rounds == 1 ? "" : "s",
		     (long long)bench_many_runs_duration_ms(), cs_spin_ns());
	results_note(SCEN_RW,
		     "pthread rwlock: PTHREAD_PROCESS_SHARED, glibc's default "
		     "kind (prefers readers), not robust; flock: LOCK_SH / "
		     "LOCK_EX on one file, an open file description per "
		     "process");
}
