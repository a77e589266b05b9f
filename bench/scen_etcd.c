/*
 * scen_etcd.c - scenario 11: the etcd backend against the shared-memory
 * one, through the same liblockmgr calls, and lockctl against etcd's
 * own command line lock.
 *
 * Two private clusters are started for the scenario (etcd_cluster.h),
 * one member and three, and both run through it, so that every
 * measurement can interleave the backends round by round: a noisy
 * neighbour then slows each alike and the ratios hold.
 *
 *   uncontended  one process (forked, its own lm_connect), acquire +
 *                release of one name in a loop, each pair timed on its
 *                own: median and p99 over every round's pairs, and
 *                their ratio to the shared-memory backend's;
 *   P=4, P=16    P processes, each with its own connection, on one name
 *                for twice --duration: the loop is acquire, a checked
 *                critical section, release. Throughput counts the
 *                sections entered after a short warm-up and before the
 *                stop (etcd's are milliseconds each: the few finished
 *                during the drain after the stop would weigh); the
 *                check counts every section;
 *   cli          `lockctl run -r ADDR NAME -- true` against `etcdctl
 *                --endpoints ... lock NAME true`, alternated run by
 *                run, the same number of times each, on each cluster,
 *                timed from fork to reap (each tool's start-up, its
 *                connection, acquire, running `true`, release, exit);
 *                and lockctl on the shared-memory backend, for scale.
 *
 * The check: a shared count of holders inside, raised on entry and
 * lowered on exit; an entry that finds another holder inside is a
 * violation, and so is every increment of a plain shared counter that
 * went missing (its final value against the sections the workers
 * counted). Either fails the run (bench_fail): exclusion must hold on
 * etcd as on one host.
 *
 * Without an etcd binary the scenario is skipped with a message and a
 * note: etcd is an optional backend. Without etcdctl, or without the
 * lockctl next to lockbench, their rows are left out with a note.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "bench.h"
#include "etcd_cluster.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "workers.h"

const char *const etcd_backend_key[ETCD_NB] = {"shm", "etcd-1", "etcd-3"};
const char *const etcd_backend_label[ETCD_NB] = {"shm (lockmgrd)",
						 "etcd 1 node",
						 "etcd 3 nodes"};
const unsigned etcd_p[ETCD_NP] = {4, 16};

/* The keys' prefix in the private clusters. */
#define EB_PREFIX "/lockbench"
#define EB_UNC_NAME "/lb/etcd/u"
#define EB_CON_NAME "/lb/etcd/c"
#define EB_CLI_NAME "/lb/etcd/cli"
/* A cluster not healthy by then fails the scenario (three members on a
 * loaded 2-core host take a few seconds to elect). */
#define EB_START_MS 30000
/* A waiter not granted by then fails the run rather than hang it. */
#define EB_WAIT_MS 30000
/* One command line run longer than this is killed and fails. */
#define EB_CLI_MS 30000

/* The backends of this run: their addresses (NULL: not measured). */
struct eb_set {
	const char *addr[ETCD_NB];
	unsigned mask; /* bit (1 << enum etcd_backend) */
	struct etcd_cluster cl[ETCD_NB];
};

static const char *eb_param(char *buf, size_t n, const char *what, int b)
{
	snprintf(buf, n, "%s %s", what, etcd_backend_key[b]);
	return buf;
}

/* The backends in round r's order (rotated by r); returns how many. */
static int eb_order(unsigned mask, int r, int out[ETCD_NB])
{
	int all[ETCD_NB], n = 0;
	for (int b = 0; b < ETCD_NB; b++)
		if (mask & (1u << b))
			all[n++] = b;
	for (int k = 0; k < n; k++)
		out[k] = all[(k + r) % n];
	return n;
}

/* ---- uncontended: one process, pairs timed one by one ------------- */

struct eu_job {
	const char *addr;
	int iters;
	int64_t *ns;   /* iters samples, shared */
	int rc;        /* a failure's code, or 0 */
	char what[16]; /* and where */
};

static int eu_worker(int id, void *arg)
{
	(void)id;
	struct eu_job *j = arg;
	lm_client *c;
	int rc = lm_connect(j->addr, &c);
	if (rc != 0) {
		j->rc = rc;
		snprintf(j->what, sizeof(j->what), "lm_connect");
		return 3;
	}
	/* Untimed first pairs: the connection, the name's first keys (or
	 * its slot in the region) and the library's code. */
	int warm = j->iters / 10 + 1;
	for (int k = -warm; k < j->iters; k++) {
		lm_grant g;
		int64_t t0 = bench_now_ns();
		rc = lm_acquire(c, EB_UNC_NAME, bench_cfg.ttl_ms, EB_WAIT_MS,
				&g);
		if (rc == 0)
			rc = lm_release(c, &g);
		int64_t t1 = bench_now_ns();
		if (rc != 0) {
			j->rc = rc;
			snprintf(j->what, sizeof(j->what), "acquire/release");
			lm_disconnect(c);
			return 4;
		}
		if (k >= 0)
			j->ns[k] = t1 - t0;
	}
	lm_disconnect(c);
	return 0;
}

/* One round of backend b: its samples into pool. 0 or -1 (reported). */
static int eu_run(const char *addr, int b, struct samples *pool)
{
	int iters = bench_cfg.etcd_iters;
	size_t size = sizeof(struct eu_job) + (size_t)iters * sizeof(int64_t);
	struct eu_job *j = bench_shared_alloc(size);
	j->addr = addr;
	j->iters = iters;
	j->ns = (int64_t *)(j + 1);
	char what[64];
	snprintf(what, sizeof(what), "etcd uncontended %s",
		 etcd_backend_key[b]);
	pid_t pid = procs_fork(eu_worker, 0, j);
	int bad = procs_reap(&pid, 1, 120000, what);
	int ret = 0;
	if (j->rc != 0) {
		bench_fail("%s: %s: %d (%s)", what, j->what, j->rc,
			   lm_strerror(j->rc));
		ret = -1;
	} else if (bad != 0) {
		ret = -1;
	} else {
		samples_add(pool, j->ns, (size_t)iters);
	}
	bench_shared_free(j, size);
	return ret;
}

/* ---- contended: P processes on one name --------------------------- */

struct ec_state {
	_Atomic uint32_t inside;   /* holders in the section now */
	_Atomic uint32_t overlaps; /* entries that found one inside */
	uint8_t pad_[56];
	/* Plain: a lost increment is a second holder inside. volatile so
	 * the compiler keeps each read and write where it is written. */
	volatile uint64_t counter;
};

struct ec_out {
	uint64_t counted; /* sections begun in the measured window */
	uint64_t entries; /* all sections */
	uint8_t pad_[48];
};

struct ec_arg {
	const char *addr;
	struct workers_hdr *hdr;
	struct ec_state *st;
	struct ec_out *out;
};

static int ec_worker(int id, void *arg)
{
	struct ec_arg *a = arg;
	struct ec_state *st = a->st;
	lm_client *c;
	int rc = lm_connect(a->addr, &c);
	if (rc != 0)
		return workers_fail_at_start(a->hdr, id, "lm_connect", rc);
	uint64_t counted = 0, entries = 0;
	int status = 0;
	gate_arrive_and_wait(&a->hdr->gate);
	while (!atomic_load(&a->hdr->gate.stop)) {
		lm_grant g;
		rc = lm_acquire(c, EB_CON_NAME, bench_cfg.ttl_ms, EB_WAIT_MS,
				&g);
		if (rc != 0) {
			workers_fail(a->hdr, id, "acquire", rc);
			status = 4;
			break;
		}
		/* Counted only if the section began inside the window: a
		 * grant that comes after the stop is the drain. */
		bool in_window = atomic_load(&a->hdr->measuring) &&
				 !atomic_load(&a->hdr->gate.stop);
		if (atomic_fetch_add(&st->inside, 1) != 0)
			atomic_fetch_add(&st->overlaps, 1);
		st->counter = st->counter + 1;
		atomic_fetch_sub(&st->inside, 1);
		entries++;
		counted += in_window;
		rc = lm_release(c, &g);
		if (rc != 0) {
			workers_fail(a->hdr, id, "release", rc);
			status = 4;
			break;
		}
	}
	a->out[id].counted = counted;
	a->out[id].entries = entries;
	lm_disconnect(c);
	return status;
}

struct ec_result {
	double ops_per_s, fairness;
	uint64_t violations;
};

/* One timed run of np workers on backend b. 0, or -1 after a failure
 * reported with bench_fail (a violation is one). */
static int ec_run(const char *addr, int b, unsigned np, struct ec_result *res)
{
	struct workers_map m;
	workers_map(&m, np, sizeof(struct ec_state), sizeof(struct ec_out), 0);
	struct ec_arg a = {addr, m.hdr, m.state, m.out};
	char what[64];
	snprintf(what, sizeof(what), "etcd contended %s, P=%u",
		 etcd_backend_key[b], np);
	/* Twice --duration: an etcd run of 500 ms holds too few sections
	 * at P = 16 for a throughput. The warm-up (every worker's first
	 * requests open its connection) is a fifth of that, untimed. */
	int64_t dur = 2 * bench_cfg.duration_ms, warm = dur / 5;
	int64_t t0 = workers_run(m.hdr, np, ec_worker, &a, warm, dur, 120000,
				 what, NULL);
	uint64_t counted = 0, entries = 0, min = UINT64_MAX, max = 0;
	for (unsigned i = 0; i < np; i++) {
		counted += a.out[i].counted;
		entries += a.out[i].entries;
		min = a.out[i].counted < min ? a.out[i].counted : min;
		max = a.out[i].counted > max ? a.out[i].counted : max;
	}
	uint64_t overlaps = atomic_load(&a.st->overlaps);
	uint64_t counter = a.st->counter;
	uint64_t lost = counter > entries ? counter - entries
					  : entries - counter;
	res->violations = overlaps + lost;
	int ret = t0 < 0 ? -1 : 0;
	if (res->violations != 0) {
		bench_fail("%s: exclusion broken: %llu entr%s found another "
			   "holder inside, the counter is %llu after %llu "
			   "sections",
			   what, (unsigned long long)overlaps,
			   overlaps == 1 ? "y" : "ies",
			   (unsigned long long)counter,
			   (unsigned long long)entries);
		ret = -1;
	}
	if (ret == 0) {
		res->ops_per_s = (double)counted * 1000.0 / (double)dur;
		res->fairness = stats_fairness(min, max);
	}
	workers_unmap(&m);
	return ret;
}

/* ---- the command line tools --------------------------------------- */

enum eb_tool { TOOL_LOCKCTL, TOOL_ETCDCTL, TOOL_N };

/* lockctl next to our own binary, or NULL. */
static const char *lockctl_path(void)
{
	static char path[PATH_MAX + 16];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/lockctl", dirname(self));
	return access(path, X_OK) == 0 ? path : NULL;
}

/* The command line of tool t on backend b. */
static void cli_argv(const struct eb_set *s, int t, int b, char *buf,
		     size_t n, char *argv[12])
{
	int k = 0;
	if (t == TOOL_LOCKCTL) {
		argv[k++] = (char *)lockctl_path();
		argv[k++] = "run";
		argv[k++] = "-r";
		argv[k++] = (char *)s->addr[b];
		argv[k++] = EB_CLI_NAME;
		argv[k++] = "--";
		argv[k++] = "true";
	} else {
		snprintf(buf, n, "--endpoints=%s", s->cl[b].endpoints);
		argv[k++] = (char *)etcd_cluster_ctl_binary();
		argv[k++] = buf;
		argv[k++] = "lock";
		argv[k++] = EB_CLI_NAME;
		argv[k++] = "true";
	}
	argv[k] = NULL;
}

/* ---- the scenario -------------------------------------------------- */

static void start_clusters(struct eb_set *s)
{
	static const unsigned members[ETCD_NB] = {0, 1, 3};
	for (int b = ETCD_B_ONE; b <= ETCD_B_THREE; b++) {
		bench_progress("11/11 etcd: starting a %u-member etcd",
			       members[b]);
		char err[800];
		if (etcd_cluster_start(&s->cl[b], members[b], EB_PREFIX,
				       EB_START_MS, err, sizeof(err)) != 0) {
			bench_fail("etcd: a %u-member cluster did not start: "
				   "%s",
				   members[b], err);
			continue;
		}
		s->addr[b] = s->cl[b].addr;
		s->mask |= 1u << b;
	}
}

static void add_ratio(const char *param, const char *metric, double v,
		      double base)
{
	results_add(SCEN_ETCD, PRIM_LOCKMGR, param, metric,
		    base > 0 && !isnan(v) ? v / base : NAN, "ratio");
}

static void measure_uncontended(const struct eb_set *s)
{
	int rounds = scen_rounds(0);
	struct samples pool[ETCD_NB] = {{0}};
	for (int r = 0; r < rounds; r++) {
		int order[ETCD_NB];
		int n = eb_order(s->mask, r, order);
		for (int k = 0; k < n; k++) {
			int b = order[k];
			bench_progress("11/11 etcd: uncontended, round %d/%d, "
				       "%s",
				       r + 1, rounds, etcd_backend_key[b]);
			eu_run(s->addr[b], b, &pool[b]);
		}
	}
	double p50[ETCD_NB], p99[ETCD_NB];
	for (int b = 0; b < ETCD_NB; b++) {
		stats_sort_i64(pool[b].v, pool[b].n);
		p50[b] = stats_pct_sorted(pool[b].v, pool[b].n, 50);
		p99[b] = stats_pct_sorted(pool[b].v, pool[b].n, 99);
	}
	for (int b = 0; b < ETCD_NB; b++) {
		if (!(s->mask & (1u << b)))
			continue;
		char p[32];
		eb_param(p, sizeof(p), "uncontended", b);
		results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "p50_ns", p50[b], "ns");
		results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "p99_ns", p99[b], "ns");
		results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "pairs",
			    (double)pool[b].n, "");
		add_ratio(p, "p50_over_shm", p50[b], p50[ETCD_B_SHM]);
		add_ratio(p, "p99_over_shm", p99[b], p99[ETCD_B_SHM]);
		samples_free(&pool[b]);
	}
	results_note(SCEN_ETCD,
		     "uncontended: one process, its own lm_connect, %d round%s "
		     "of %d acquire+release pairs (%lld ms lease) per "
		     "backend, each pair timed on its own (two clock reads "
		     "included); median and p99 over all pairs",
		     rounds, rounds == 1 ? "" : "s", bench_cfg.etcd_iters,
		     (long long)bench_cfg.ttl_ms);
}

static void measure_contended(const struct eb_set *s)
{
	int rounds = scen_rounds(0);
	double ops[ETCD_NB][ETCD_NP][SCEN_MAX_ROUNDS];
	double fair[ETCD_NB][ETCD_NP][SCEN_MAX_ROUNDS];
	int got[ETCD_NB][ETCD_NP] = {{0}};
	uint64_t viol[ETCD_NB][ETCD_NP] = {{0}};
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < ETCD_NP; k++) {
			int order[ETCD_NB];
			int n = eb_order(s->mask, r + k, order);
			for (int q = 0; q < n; q++) {
				int b = order[q];
				bench_progress("11/11 etcd: P=%u, round %d/%d, "
					       "%s",
					       etcd_p[k], r + 1, rounds,
					       etcd_backend_key[b]);
				struct ec_result res = {0};
				int rc = ec_run(s->addr[b], b, etcd_p[k], &res);
				viol[b][k] += res.violations;
				if (rc != 0)
					continue;
				ops[b][k][got[b][k]] = res.ops_per_s;
				fair[b][k][got[b][k]] = res.fairness;
				got[b][k]++;
			}
		}
	}
	for (int k = 0; k < ETCD_NP; k++) {
		double shm = stats_median(ops[ETCD_B_SHM][k],
					  (size_t)got[ETCD_B_SHM][k]);
		for (int b = 0; b < ETCD_NB; b++) {
			if (!(s->mask & (1u << b)))
				continue;
			char p[32], w[16];
			snprintf(w, sizeof(w), "P=%u", etcd_p[k]);
			eb_param(p, sizeof(p), w, b);
			double o = stats_median(ops[b][k], (size_t)got[b][k]);
			results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "ops_per_s", o,
				    "ops/s");
			add_ratio(p, "thru_over_shm", o, shm);
			results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "fairness",
				    stats_median(fair[b][k],
						 (size_t)got[b][k]),
				    "min/max");
			results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "violations",
				    (double)viol[b][k], "");
			results_add(SCEN_ETCD, PRIM_LOCKMGR, p, "runs_checked",
				    got[b][k], "");
		}
	}
	results_note(SCEN_ETCD,
		     "P=4, P=16: P processes, each its own lm_connect, on one "
		     "name for %d interleaved round%s of %lld ms (after an "
		     "untimed %lld ms warm-up); ops/s and fairness (min/max "
		     "sections per process) are medians over rounds; every "
		     "section is checked (a second holder inside, or a lost "
		     "increment of a plain counter, is a violation and fails "
		     "the run)",
		     rounds, rounds == 1 ? "" : "s",
		     (long long)(2 * bench_cfg.duration_ms),
		     (long long)(2 * bench_cfg.duration_ms / 5));
}

static void measure_cli(const struct eb_set *s)
{
	bool have[TOOL_N] = {lockctl_path() != NULL,
			     etcd_cluster_ctl_binary() != NULL};
	if (!have[TOOL_LOCKCTL])
		results_note(SCEN_ETCD, "lockctl rows left out: no lockctl "
					"next to lockbench");
	if (!have[TOOL_ETCDCTL])
		results_note(SCEN_ETCD, "etcdctl rows left out: no etcdctl "
					"($LOCKMGR_ETCDCTL or on PATH)");
	/* Where the tools' stderr goes: a cluster's own directory. */
	const char *dir = s->cl[ETCD_B_ONE].dir[0] ? s->cl[ETCD_B_ONE].dir
						   : s->cl[ETCD_B_THREE].dir;
	char errlog[300];
	snprintf(errlog, sizeof(errlog), "%s/cli.err", dir);
	int runs = bench_cfg.etcd_cli_runs;
	struct samples pool[TOOL_N][ETCD_NB] = {{{0}}};
	bool broken[TOOL_N][ETCD_NB] = {{false}};
	for (int r = 0; r < runs; r++) {
		int order[ETCD_NB];
		int n = eb_order(s->mask, r, order);
		for (int q = 0; q < n; q++) {
			int b = order[q];
			bench_progress("11/11 etcd: command line, run %d/%d, %s",
				       r + 1, runs, etcd_backend_key[b]);
			/* The tools alternate, the first of each run too. */
			for (int i = 0; i < TOOL_N; i++) {
				int t = (i + r) % TOOL_N;
				/* etcdctl has no shared-memory backend. */
				if (!have[t] || broken[t][b] ||
				    (t == TOOL_ETCDCTL && b == ETCD_B_SHM))
					continue;
				char buf[300], *argv[12], err[300];
				cli_argv(s, t, b, buf, sizeof(buf), argv);
				int64_t ns;
				if (procs_run_timed(argv, errlog, EB_CLI_MS,
						    &ns, err,
						    sizeof(err)) != 0) {
					bench_fail("etcd: %s on %s: %s",
						   t == TOOL_LOCKCTL
							   ? "lockctl run"
							   : "etcdctl lock",
						   etcd_backend_key[b], err);
					broken[t][b] = true;
					continue;
				}
				samples_add(&pool[t][b], &ns, 1);
			}
		}
	}
	for (int b = 0; b < ETCD_NB; b++) {
		double p50[TOOL_N];
		char p[32];
		eb_param(p, sizeof(p), "cli", b);
		for (int t = 0; t < TOOL_N; t++) {
			struct samples *sp = &pool[t][b];
			stats_sort_i64(sp->v, sp->n);
			p50[t] = stats_pct_sorted(sp->v, sp->n, 50);
			if (sp->n == 0)
				continue;
			int prim = t == TOOL_LOCKCTL ? PRIM_LOCKMGR : RES_NONE;
			results_add(SCEN_ETCD, prim, p, "p50_ns", p50[t], "ns");
			results_add(SCEN_ETCD, prim, p, "p99_ns",
				    stats_pct_sorted(sp->v, sp->n, 99), "ns");
			results_add(SCEN_ETCD, prim, p, "runs", (double)sp->n,
				    "");
		}
		if (pool[TOOL_LOCKCTL][b].n > 0 && b != ETCD_B_SHM)
			add_ratio(p, "p50_over_etcdctl", p50[TOOL_LOCKCTL],
				  p50[TOOL_ETCDCTL]);
		for (int t = 0; t < TOOL_N; t++)
			samples_free(&pool[t][b]);
	}
	results_note(SCEN_ETCD,
		     "command line: `lockctl run -r ADDR %s -- true` against "
		     "`etcdctl --endpoints=... lock %s true`, %d runs each per "
		     "cluster, alternated run by run, each timed from fork to "
		     "exit (start-up, connection, acquire, `true`, release); "
		     "lockctl on the shared-memory backend for scale",
		     EB_CLI_NAME, EB_CLI_NAME, runs);
}

void scen_etcd(unsigned prims)
{
	if (etcd_cluster_binary() == NULL) {
		bench_progress_done();
		fprintf(stderr, "lockbench: scenario etcd skipped: no etcd "
				"binary ($LOCKMGR_ETCD, or etcd on PATH; "
				"Debian: apt-get install etcd-server)\n");
		results_note(SCEN_ETCD, "skipped: no etcd binary "
					"($LOCKMGR_ETCD, or etcd on PATH)");
		return;
	}
	struct eb_set s;
	memset(&s, 0, sizeof(s));
	const unsigned lm = (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	if (prims & lm) {
		s.addr[ETCD_B_SHM] = bench_cfg.region;
		s.mask |= 1u << ETCD_B_SHM;
	} else {
		results_note(SCEN_ETCD, "shared-memory rows left out (no "
					"ratios): --primitives has no lockmgr");
	}
	start_clusters(&s);
	if (s.mask & ((1u << ETCD_B_ONE) | (1u << ETCD_B_THREE))) {
		measure_uncontended(&s);
		measure_contended(&s);
		measure_cli(&s);
	}
	for (int b = ETCD_B_ONE; b <= ETCD_B_THREE; b++)
		if (s.mask & (1u << b)) {
			bench_progress("11/11 etcd: stopping the %s cluster",
				       etcd_backend_key[b]);
			etcd_cluster_stop(&s.cl[b]);
		}
	results_note(SCEN_ETCD,
		     "etcd: %s, private members on loopback ports with etcd's "
		     "default heartbeat and election timeout and a data "
		     "directory under $TMPDIR (or /tmp), fsynced as etcd does",
		     etcd_cluster_binary());
}
