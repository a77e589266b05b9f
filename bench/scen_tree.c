/*
 * scen_tree.c - scenario 8: lock trees.
 *
 * A region made with lockmgrd --tree takes X on /tbl/rows/r17 as IX on
 * /tbl, IX on /tbl/rows, then X on the row, top-down, as one grant; X
 * on /tbl/rows then excludes every row, and writers of different rows
 * still run in parallel (IX is compatible with IX). This scenario
 * measures what that costs and checks that it holds:
 *
 *   rows only    P processes, process K taking X on its own row
 *                /tbl/rows/rK and releasing, for a fixed time: ops/s
 *                and the acquire latency (p50, p99). The same workload
 *                on the same names in a flat region (one grant per op:
 *                the difference is the two intention locks), and on
 *                per-row host locks (flock on a file per row, a robust
 *                process-shared mutex per row), interleaved round by
 *                round in the same run.
 *   mix          P processes writing their rows, process 0 taking X on
 *                /tbl/rows (the whole table) instead on 1 of its
 *                operations in 100: total ops/s and how long the table
 *                writer waited for its grant (p50, p99). Tree region only
 *                (in a flat region X on /tbl/rows excludes nothing).
 *   uncontended  one process, acquire+release pairs of X on the depth-3
 *                name /tbl/rows/r0, tree region against flat: ns per pair
 *                and their ratio (and the per-row host locks beside).
 *
 * Both lockmgr regions are our own lockmgrds, started here and stopped
 * at the end: a tree region and a flat twin with the same sizes and
 * options but --tree, so that only the tree differs between them.
 *
 * The checks, in shared memory, around every critical section:
 *   - each row has an `inside` count, the table one: a row writer adds
 *     itself to its row's and then loads the table's, the table writer
 *     adds itself to the table's and then loads every row's (seq_cst, a
 *     Dekker pair: of a row writer and the table writer inside at once,
 *     at least one sees the other), on entry and again on exit. Any
 *     overlap seen is a violation;
 *   - each row has a plain counter, incremented (load, spin, store) by
 *     its row writer and by the table writer on every table write: its
 *     final value must equal the row's writes plus the table's, or a
 *     write was lost (a violation too).
 * A violation fails the run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "bench.h"
#include "critical.h"
#include "daemon.h"
#include "pairs.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "workers.h"

#define MAX_ROWS 16 /* the top of the P sweeps: one row per process */

/* The table; row K is TABLE_NAME "/rK" (depth 3). */
#define TABLE_NAME "/tbl/rows"
/* The table writer's share of its own operations, in percent. */
#define TABLE_PCT 1
/* --max-locks of the two regions: the names used here and room to
 * spare (a region reclaims idle names only above half full). */
#define TREE_REGION_LOCKS 1024u

const unsigned tree_p[TREE_NP] = {1, 2, 4, 8, 16};
const unsigned tree_mix_p[TREE_NMIX] = {4, 16};
const char *const tree_variant_label[TREE_NV] = {
	[TREE_V_TREE] = "lockmgr tree",
	[TREE_V_FLAT] = "lockmgr flat",
	[TREE_V_FLOCK] = "flock per row",
	[TREE_V_ROBUST] = "robust per row",
};
static const enum prim_id variant_prim[TREE_NV] = {
	[TREE_V_TREE] = PRIM_LOCKMGR,
	[TREE_V_FLAT] = PRIM_LOCKMGR,
	[TREE_V_FLOCK] = PRIM_FLOCK,
	[TREE_V_ROBUST] = PRIM_ROBUST,
};

enum prim_id tree_variant_prim(int v)
{
	return variant_prim[v];
}

void tree_param(char *buf, size_t n, const char *base, int v)
{
	snprintf(buf, n, "%s%s", base,
		 v == TREE_V_TREE   ? " tree"
		 : v == TREE_V_FLAT ? " flat"
				    : "");
}

static bool is_lockmgr(int v)
{
	return v == TREE_V_TREE || v == TREE_V_FLAT;
}

/* The two lockmgr regions ([TREE_V_TREE], [TREE_V_FLAT]) while the
 * scenario runs: the main one's name (/lockbench-<pid>) and a suffix. */
static char region[2][64];

/* Untimed, before the clock: a fresh session's first touches of the
 * region are page faults the steady state never sees. */
static int64_t tree_warmup_ms(void)
{
	return bench_cfg.quick ? 5 : 20;
}

/* ---- one variant's locks, as a worker uses them -------------------- */

struct tlock {
	int v;
	struct prim prim;   /* flock, robust: lock K is row K */
	lm_client *c;       /* lockmgr: the worker's own session */
	lm_grant g;
	char row_name[32];
};

/* In the parent, before the fork: the host locks of nrows rows. */
static int tl_init(struct tlock *t, int v, uint32_t nrows)
{
	memset(t, 0, sizeof(*t));
	t->v = v;
	if (is_lockmgr(v))
		return 0;
	return prim_init(&t->prim, variant_prim[v], nrows, "tree");
}

static int tl_attach(struct tlock *t, int row)
{
	if (!is_lockmgr(t->v))
		return t->prim.ops->attach(&t->prim);
	snprintf(t->row_name, sizeof(t->row_name), TABLE_NAME "/r%d", row);
	return lm_connect(region[t->v], &t->c);
}

/* X on row `row`, or on the whole table when row < 0 (lockmgr only). */
static int tl_acquire(struct tlock *t, int row)
{
	if (!is_lockmgr(t->v))
		return t->prim.ops->acquire(&t->prim, (uint32_t)row,
					    INT64_MAX);
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_X, bench_cfg.ttl_ms, -1);
	return lm_acquire_ex(t->c, row < 0 ? TABLE_NAME : t->row_name, &o,
			     &t->g);
}

static int tl_release(struct tlock *t, int row)
{
	if (!is_lockmgr(t->v))
		return t->prim.ops->release(&t->prim, (uint32_t)row);
	return lm_release(t->c, &t->g);
}

static void tl_detach(struct tlock *t)
{
	if (!is_lockmgr(t->v)) {
		t->prim.ops->detach(&t->prim);
		return;
	}
	if (t->c != NULL)
		lm_disconnect(t->c);
	t->c = NULL;
}

static void tl_destroy(struct tlock *t)
{
	if (!is_lockmgr(t->v) && t->prim.ops != NULL)
		t->prim.ops->destroy(&t->prim);
}

/* Create the names in a region before anything is measured, so that
 * no measured acquire pays for an insert (a tree path's intention
 * nodes included). 0 or an LM_E* code. */
static int make_names(int v)
{
	lm_client *c;
	int rc = lm_connect(region[v], &c);
	if (rc != 0)
		return rc;
	static const char *const fixed[] = {"/tbl", TABLE_NAME};
	lm_lockref ref;
	for (size_t i = 0; i < 2 && rc == 0; i++)
		rc = lm_lookup(c, fixed[i], &ref);
	for (int k = 0; k < MAX_ROWS && rc == 0; k++) {
		char name[32];
		snprintf(name, sizeof(name), TABLE_NAME "/r%d", k);
		rc = lm_lookup(c, name, &ref);
	}
	lm_disconnect(c);
	return rc;
}

/* ---- uncontended: pairs in one process ------------------------------ */

/* Row 0's lock, for pairs.h. */
static int unc_attach(void *lock)
{
	return tl_attach(lock, 0);
}

PAIRS_INLINE int unc_pair(void *lock)
{
	int rc = tl_acquire(lock, 0);
	if (rc == 0)
		rc = tl_release(lock, 0);
	return rc;
}

static void unc_detach(void *lock)
{
	tl_detach(lock);
}

static const struct pairs_ops unc_ops = {unc_attach, unc_pair, unc_detach};

static int unc_worker(int id, void *job)
{
	(void)id;
	return pairs_worker(job, &unc_ops);
}

static void tree_uncontended(const int *vs, int nv)
{
	int rounds = scen_rounds(2); /* cheap: a few more rounds */
	int iters = bench_cfg.uncontended_iters;
	double per[TREE_NV][SCEN_MAX_ROUNDS];
	int got[TREE_NV] = {0};
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < nv; k++) {
			int v = vs[(k + r) % nv]; /* rotate */
			bench_progress("8/8 tree: uncontended, round %d/%d, %s",
				       r + 1, rounds, tree_variant_label[v]);
			char what[96];
			snprintf(what, sizeof(what), "tree uncontended %s",
				 tree_variant_label[v]);
			struct tlock t;
			int rc = tl_init(&t, v, 1);
			if (rc != 0) {
				bench_fail("%s: init: %s", what,
					   prim_strerror(rc));
				continue;
			}
			double ns;
			if (pairs_time(unc_worker, &t, iters, what, &ns) == 0)
				per[v][got[v]++] = ns;
			tl_destroy(&t);
		}
	}
	for (int k = 0; k < nv; k++) {
		int v = vs[k];
		char param[32];
		tree_param(param, sizeof(param), "uncontended", v);
		results_add(SCEN_TREE, variant_prim[v], param, "ns_per_pair",
			    stats_median(per[v], (size_t)got[v]), "ns");
	}
	double tr = results_get(SCEN_TREE, PRIM_LOCKMGR, "uncontended tree",
				"ns_per_pair");
	double fl = results_get(SCEN_TREE, PRIM_LOCKMGR, "uncontended flat",
				"ns_per_pair");
	if (!isnan(tr) && !isnan(fl))
		results_add(SCEN_TREE, PRIM_LOCKMGR, "uncontended tree",
			    "cost_over_flat", tr / fl, "x");
	results_note(SCEN_TREE,
		     "uncontended: median of %d rounds of %d acquire+release "
		     "pairs of X on " TABLE_NAME "/r0 in one process (lockmgr "
		     "by name through lm_acquire_ex)",
		     rounds, iters);
}

/* ---- timed runs: P processes on their rows --------------------------- */

struct row_line {
	_Alignas(64) _Atomic uint32_t inside;
	uint64_t count; /* plain: the row's lock (or the table's) guards it */
};

struct tree_cs {
	_Alignas(64) _Atomic uint32_t table_inside;
	_Alignas(64) _Atomic uint64_t overlaps;
	struct row_line rows[MAX_ROWS];
};

/* [0] row writes, [1] table writes. */
struct tw_out {
	uint64_t ops[2];    /* while measuring */
	uint64_t all[2];    /* including the warm-up: the counters' sum */
	uint64_t seen[2];   /* latencies offered to the reservoirs */
	int64_t last_ns;    /* when its last operation ended */
	uint8_t pad_[8];
};

struct trun {
	int v;
	uint32_t np;
	bool mix;           /* process 0 writes the table too */
	struct workers_map map; /* samples: [0] row, [1] table */
	struct tree_cs *cs;     /* in map */
	struct tw_out *out;     /* in map */
	struct tlock lock;
};

struct tres {
	double ops_per_s;
	double fairness;    /* min/max ops of the processes */
	uint64_t row_ops, table_ops; /* while measuring */
	uint64_t violations;
};

/* A row writer inside: alone on its row, and never with the table
 * writer, before or after its spin. */
static uint64_t row_section(struct tree_cs *cs, int row, uint64_t *sink)
{
	struct row_line *l = &cs->rows[row];
	uint64_t bad = 0;
	if (atomic_fetch_add(&l->inside, 1) != 0)
		bad++;
	if (atomic_load(&cs->table_inside) != 0)
		bad++;
	volatile uint64_t *c = &l->count;
	uint64_t v = *c;
	*sink = cs_spin(*sink + v);
	*c = v + 1;
	if (atomic_load(&cs->table_inside) != 0)
		bad++;
	atomic_fetch_sub(&l->inside, 1);
	return bad;
}

/* The table writer inside: no row writer of the nrows rows in, before
 * or after it writes every row. */
static uint64_t table_section(struct tree_cs *cs, uint32_t nrows,
			      uint64_t *sink)
{
	uint64_t bad = 0;
	if (atomic_fetch_add(&cs->table_inside, 1) != 0)
		bad++;
	for (uint32_t i = 0; i < nrows; i++)
		if (atomic_load(&cs->rows[i].inside) != 0)
			bad++;
	for (uint32_t i = 0; i < nrows; i++) {
		volatile uint64_t *c = &cs->rows[i].count;
		uint64_t v = *c;
		*sink = cs_spin(*sink + v);
		*c = v + 1;
	}
	for (uint32_t i = 0; i < nrows; i++)
		if (atomic_load(&cs->rows[i].inside) != 0)
			bad++;
	atomic_fetch_sub(&cs->table_inside, 1);
	return bad;
}

static int tree_worker(int id, void *arg)
{
	struct trun *r = arg;
	struct tlock *t = &r->lock;
	/* Seeded by the worker's index only: the same choices of table
	 * writes in every round. */
	uint64_t rng = ((uint64_t)id + 1) * UINT64_C(0x9e3779b97f4a7c15) + 1;
	uint64_t rng_res = rng ^ UINT64_C(0x5851f42d4c957f2d);
	int rc = tl_attach(t, id);
	if (rc != 0)
		return workers_fail_at_start(r->map.hdr, id, "attach", rc);
	int64_t *mine[2] = {
		workers_samples(&r->map, id, 0),
		workers_samples(&r->map, id, 1),
	};
	uint64_t ops[2] = {0, 0}, all[2] = {0, 0}, seen[2] = {0, 0};
	uint64_t bad = 0, sink = 0;
	int64_t last = 0;
	int status = 0;
	bool counting = false;
	bool table_writer = r->mix && id == 0;
	gate_arrive_and_wait(&r->map.hdr->gate);

	while (!atomic_load_explicit(&r->map.hdr->gate.stop,
				     memory_order_relaxed)) {
		if (!counting && atomic_load_explicit(&r->map.hdr->measuring,
						      memory_order_relaxed)) {
			counting = true;
			ops[0] = ops[1] = 0;
			seen[0] = seen[1] = 0;
		}
		bool table = table_writer &&
			     (bench_rand(&rng) >> 32) % 100 < TABLE_PCT;
		int row = table ? -1 : id;
		int64_t t0 = bench_now_ns();
		rc = tl_acquire(t, row);
		int64_t t1 = bench_now_ns();
		if (rc != 0) {
			workers_fail(r->map.hdr, id,
				     table ? "acquire table" : "acquire row",
				     rc);
			status = 4;
			break;
		}
		bad += table ? table_section(r->cs, r->np, &sink)
			     : row_section(r->cs, id, &sink);
		rc = tl_release(t, row);
		last = bench_now_ns();
		if (rc != 0) {
			workers_fail(r->map.hdr, id, "release", rc);
			status = 4;
			break;
		}
		int k = table ? 1 : 0;
		all[k]++;
		ops[k]++;
		reservoir_offer(mine[k], r->map.cap, &seen[k], t1 - t0,
				bench_rand(&rng_res));
	}
	if (bad != 0)
		atomic_fetch_add(&r->cs->overlaps, bad);
	struct tw_out *o = &r->out[id];
	for (int k = 0; k < 2; k++) {
		o->ops[k] = counting ? ops[k] : 0;
		o->all[k] = all[k];
		o->seen[k] = counting ? seen[k] : 0;
	}
	__asm__ volatile("" : : "r"(sink));
	o->last_ns = last;
	tl_detach(t);
	return status;
}

/* Sums, checks, and pools the samples ([0] rows, [1] table). */
static int tree_check(struct trun *r, int64_t t_meas, struct tres *res,
		      struct samples pool[2], const char *what)
{
	uint64_t min = UINT64_MAX, max = 0, table_all = 0;
	int64_t end = t_meas;
	for (uint32_t i = 0; i < r->np; i++) {
		const struct tw_out *o = &r->out[i];
		res->row_ops += o->ops[0];
		res->table_ops += o->ops[1];
		table_all += o->all[1];
		uint64_t n = o->ops[0] + o->ops[1];
		min = n < min ? n : min;
		max = n > max ? n : max;
		if (o->last_ns > end)
			end = o->last_ns;
		for (int k = 0; k < 2; k++)
			samples_add_reservoir(
				&pool[k],
				workers_samples(&r->map, (int)i, k),
				r->map.cap, o->seen[k]);
	}
	uint64_t overlaps = atomic_load(&r->cs->overlaps), lost = 0;
	for (uint32_t i = 0; i < r->np; i++) {
		uint64_t want = r->out[i].all[0] + table_all;
		uint64_t got = r->cs->rows[i].count;
		lost += got > want ? got - want : want - got;
	}
	res->violations = overlaps + lost;
	res->ops_per_s =
		stats_per_s(res->row_ops + res->table_ops, t_meas, end);
	res->fairness = stats_fairness(min, max);
	if (res->violations != 0) {
		bench_fail("%s: %llu overlap%s of a row writer and the table "
			   "writer seen inside, %llu lost write%s: the tree's "
			   "exclusion is broken",
			   what, (unsigned long long)overlaps,
			   overlaps == 1 ? "" : "s", (unsigned long long)lost,
			   lost == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

/* One timed run. 0, or -1 after a failure reported with bench_fail
 * (the violations are counted in res all the same). */
static int tree_run_once(int v, uint32_t np, bool mix, struct tres *res,
			 struct samples pool[2])
{
	memset(res, 0, sizeof(*res));
	if (np == 0 || np > MAX_ROWS)
		bench_die("tree: %u processes", np);
	struct trun r;
	memset(&r, 0, sizeof(r));
	r.v = v;
	r.np = np;
	r.mix = mix;
	workers_map(&r.map, np, sizeof(struct tree_cs), sizeof(struct tw_out),
		    bench_cfg.sample_cap);
	r.cs = r.map.state;
	r.out = r.map.out;
	char what[96];
	snprintf(what, sizeof(what), "tree %s, %sP=%u", tree_variant_label[v],
		 mix ? "mix " : "", np);

	int rc = tl_init(&r.lock, v, np);
	if (rc != 0) {
		workers_unmap(&r.map);
		bench_fail("%s: init: %s", what, prim_strerror(rc));
		return -1;
	}
	int64_t t_meas = workers_run(r.map.hdr, np, tree_worker, &r,
				     tree_warmup_ms(),
				     bench_many_runs_duration_ms(), 60000,
				     what, NULL);
	int ret = t_meas < 0 ? -1 : tree_check(&r, t_meas, res, pool, what);
	tl_destroy(&r.lock);
	workers_unmap(&r.map);
	return ret;
}

/* Rows only: every variant at every P, interleaved round by round. */
static void tree_rows(const int *vs, int nv, int rounds)
{
	for (int pi = 0; pi < TREE_NP; pi++) {
		unsigned np = tree_p[pi];
		char base[16];
		snprintf(base, sizeof(base), "P=%u", np);
		double ops[TREE_NV][SCEN_MAX_ROUNDS],
			fair[TREE_NV][SCEN_MAX_ROUNDS];
		uint64_t viol[TREE_NV] = {0};
		int got[TREE_NV] = {0};
		struct samples pool[TREE_NV][2];
		memset(pool, 0, sizeof(pool));
		for (int r = 0; r < rounds; r++) {
			for (int k = 0; k < nv; k++) {
				int v = vs[(k + r) % nv]; /* rotate */
				bench_progress("8/8 tree: rows, P=%u, round "
					       "%d/%d, %s",
					       np, r + 1, rounds,
					       tree_variant_label[v]);
				struct tres res;
				int rc = tree_run_once(v, np, false, &res,
						       pool[v]);
				viol[v] += res.violations;
				if (rc != 0)
					continue;
				ops[v][got[v]] = res.ops_per_s;
				fair[v][got[v]] = res.fairness;
				got[v]++;
			}
		}
		for (int k = 0; k < nv; k++) {
			int v = vs[k];
			int prim = variant_prim[v];
			char param[32];
			tree_param(param, sizeof(param), base, v);
			results_add(SCEN_TREE, prim, param, "ops_per_s",
				    stats_median(ops[v], (size_t)got[v]),
				    "ops/s");
			results_add(SCEN_TREE, prim, param, "fairness",
				    stats_median(fair[v], (size_t)got[v]),
				    "min/max");
			results_add(SCEN_TREE, prim, param, "violations",
				    (double)viol[v], "");
			scen_add_p50_p99(SCEN_TREE, prim, param, "",
					 &pool[v][0]);
			samples_free(&pool[v][0]);
			samples_free(&pool[v][1]);
		}
		/* The tree's throughput against the others', same run. */
		char pt[32];
		tree_param(pt, sizeof(pt), base, TREE_V_TREE);
		double tr = results_get(SCEN_TREE, PRIM_LOCKMGR, pt,
					"ops_per_s");
		static const struct {
			int v;
			const char *metric;
		} vs_other[] = {
			{TREE_V_FLAT, "thru_over_flat"},
			{TREE_V_FLOCK, "thru_over_flock"},
			{TREE_V_ROBUST, "thru_over_robust"},
		};
		for (size_t i = 0; i < 3; i++) {
			char po[32];
			tree_param(po, sizeof(po), base, vs_other[i].v);
			double o = results_get(SCEN_TREE,
					       variant_prim[vs_other[i].v], po,
					       "ops_per_s");
			if (!isnan(tr) && !isnan(o) && o > 0)
				results_add(SCEN_TREE, PRIM_LOCKMGR, pt,
					    vs_other[i].metric, tr / o, "x");
		}
	}
}

/* The table-writer mix, tree region only; each round also runs the
 * rows-only workload at the same P (the order alternating), so that the
 * mix's throughput is compared with a baseline measured beside it. */
static void tree_mix(int rounds)
{
	for (int mi = 0; mi < TREE_NMIX; mi++) {
		unsigned np = tree_mix_p[mi];
		char param[32];
		snprintf(param, sizeof(param), "mix P=%u", np);
		double ops[SCEN_MAX_ROUNDS], base[SCEN_MAX_ROUNDS],
			tps[SCEN_MAX_ROUNDS], share[SCEN_MAX_ROUNDS];
		uint64_t viol = 0, table_ops = 0;
		int got = 0, got_base = 0;
		struct samples pool[2], pool_base[2];
		memset(pool, 0, sizeof(pool));
		memset(pool_base, 0, sizeof(pool_base));
		for (int r = 0; r < rounds; r++) {
			for (int k = 0; k < 2; k++) {
				bool mix = (k + r) % 2 == 0;
				bench_progress("8/8 tree: %s, P=%u, round "
					       "%d/%d",
					       mix ? "mix" : "mix's baseline",
					       np, r + 1, rounds);
				struct tres res;
				int rc = tree_run_once(TREE_V_TREE, np, mix,
						       &res,
						       mix ? pool : pool_base);
				viol += res.violations;
				if (rc != 0)
					continue;
				if (!mix) {
					base[got_base++] = res.ops_per_s;
					continue;
				}
				uint64_t all = res.row_ops + res.table_ops;
				ops[got] = res.ops_per_s;
				tps[got] = all ? res.ops_per_s *
							 (double)res.table_ops /
							 (double)all
					       : NAN;
				share[got] = all ? (double)res.table_ops /
							   (double)all
						 : NAN;
				table_ops += res.table_ops;
				got++;
			}
		}
		int lm = PRIM_LOCKMGR;
		double o = stats_median(ops, (size_t)got);
		double b = stats_median(base, (size_t)got_base);
		results_add(SCEN_TREE, lm, param, "ops_per_s", o, "ops/s");
		results_add(SCEN_TREE, lm, param, "rows_only_ops_per_s", b,
			    "ops/s");
		results_add(SCEN_TREE, lm, param, "thru_over_rows_only",
			    !isnan(b) && b > 0 ? o / b : NAN, "x");
		results_add(SCEN_TREE, lm, param, "table_per_s",
			    stats_median(tps, (size_t)got), "ops/s");
		results_add(SCEN_TREE, lm, param, "table_share",
			    stats_median(share, (size_t)got), "");
		results_add(SCEN_TREE, lm, param, "table_ops",
			    (double)table_ops, "");
		results_add(SCEN_TREE, lm, param, "violations", (double)viol,
			    "");
		scen_add_p50_p99(SCEN_TREE, lm, param, "row_", &pool[0]);
		scen_add_p50_p99(SCEN_TREE, lm, param, "table_wait_",
				 &pool[1]);
		for (int k = 0; k < 2; k++) {
			samples_free(&pool[k]);
			samples_free(&pool_base[k]);
		}
	}
}

void scen_tree(unsigned prims)
{
	bool lm = (prims & (1u << PRIM_LOCKMGR)) != 0;
	int slot[2] = {-1, -1};
	if (lm) {
		static const char *const suffix[2] = {"tree", "flat"};
		for (int v = TREE_V_TREE; v <= TREE_V_FLAT; v++) {
			snprintf(region[v], sizeof(region[v]),
				 "/lockbench-%d-%s", (int)getpid(), suffix[v]);
			bench_progress("8/8 tree: starting lockmgrd%s (%s)",
				       v == TREE_V_TREE ? " --tree" : "",
				       region[v]);
			slot[v] = lmd_start_extra(region[v], TREE_REGION_LOCKS,
						  v == TREE_V_TREE);
			int rc = slot[v] < 0 ? -1 : make_names(v);
			if (rc != 0) {
				bench_fail("tree: cannot set up lockmgrd on %s"
					   "%s%s",
					   region[v], rc < -1 ? ": " : "",
					   rc < -1 ? lm_strerror(rc) : "");
				lm = false;
				break;
			}
		}
	}
	int vs[TREE_NV], nv = 0;
	for (int v = 0; v < TREE_NV; v++)
		if ((is_lockmgr(v) && lm) ||
		    (!is_lockmgr(v) && (prims & (1u << variant_prim[v]))))
			vs[nv++] = v;
	int rounds = scen_rounds(0);
	if (nv > 0) {
		tree_uncontended(vs, nv);
		tree_rows(vs, nv, rounds);
	}
	if (lm)
		tree_mix(rounds);
	for (int v = TREE_V_TREE; v <= TREE_V_FLAT; v++)
		if (slot[v] >= 0) {
			bench_progress("8/8 tree: stopping lockmgrd (%s)",
				       region[v]);
			lmd_stop_extra(slot[v]);
		}
	results_note(SCEN_TREE,
		     "rows: process K takes X on " TABLE_NAME "/rK, its own "
		     "row, %d interleaved round%s of %lld ms (after %lld ms "
		     "untimed) per point and variant, ops/s the median over "
		     "rounds, latency the acquire call only; critical section "
		     "a fixed spin of %.0f ns plus the overlap checks",
		     rounds, rounds == 1 ? "" : "s",
		     (long long)bench_many_runs_duration_ms(),
		     (long long)tree_warmup_ms(), cs_spin_ns());
	results_note(SCEN_TREE,
		     "lockmgr tree: a lockmgrd --tree region, so each op is "
		     "IX on /tbl, IX on " TABLE_NAME ", X on the row (one "
		     "grant); lockmgr flat: the same names in a twin region "
		     "without --tree (same --max-locks %u, sessions, TTL), one "
		     "X per op; flock and robust: one lock per row",
		     TREE_REGION_LOCKS);
	results_note(SCEN_TREE,
		     "mix: the same rows, but process 0 takes X on "
		     TABLE_NAME " (the whole table, writing every row) instead "
		     "of its row on %d%% of its ops; \"table wait\" is its "
		     "acquire of the table; each round also runs the rows "
		     "alone at the same P (the mix's baseline, order "
		     "alternating); overlaps of a row writer and the table "
		     "writer inside, and lost row writes, are counted and "
		     "fail the run",
		     TABLE_PCT);
}
