/*
 * scen_semaphore.c - scenario 10: counting semaphores of N = 4 slots,
 * lockmgr's lm_sem_acquire / lm_release against a POSIX named semaphore
 * initialised to 4 (sem_wait / sem_post), in the same rounds.
 *
 *   uncontended  one process, acquire+release pairs in a loop (pairs.h):
 *                ns per pair, the median over rounds;
 *   P=16         16 processes on the one semaphore for --duration: the
 *                loop is acquire, a checked entry into and exit from the
 *                critical section, release, and nothing else. Throughput
 *                is every worker's count over the time from the gate's
 *                opening to the stop (the clock is read only there, never
 *                inside the loop); fairness is the fewest critical
 *                sections of a worker over the most.
 *
 * The check: a shared count of the holders inside, raised on entry and
 * lowered on exit. Seeing it above N on entry means the semaphore let
 * N + 1 in: a correctness failure (bench_fail), never a timing matter.
 * Each worker keeps its own count and the most holders it saw inside in
 * locals, stored once after its loop: nothing else is written in the
 * hold (no order log, no latency samples).
 *
 * The POSIX semaphore always runs: it is what lockmgr is compared with.
 * lockmgr runs when --primitives has lockmgr (or lockmgr-ref: there is
 * no lm_sem_acquire by ref, so both file their figures under lockmgr).
 * Runs before the server-down scenario, which leaves a server down.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "bench.h"
#include "pairs.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"
#include "workers.h"

#define SEM_NAME "/lb/sem"
/* A contended worker that waits this long for a slot fails the run
 * rather than hang it (lm_sem_acquire's wait_ms; POSIX waits on). */
#define SEM_WAIT_MS 10000

const char *const sem_param[SEM_NPARAM] = {
	[SEM_UNCONTENDED] = "uncontended N=4",
	[SEM_CONTENDED] = "P=16 N=4",
};

/* One semaphore as a worker uses it. POSIX: the parent's sem_t, mapped
 * before fork and so shared by every worker. lockmgr: the worker's own
 * session and its grant of the moment. */
struct sem_lock {
	enum prim_id prim;
	sem_t *psem;
	lm_client *c;
	lm_grant g;
};

static int sl_attach(struct sem_lock *s)
{
	if (s->prim != PRIM_LOCKMGR)
		return 0;
	return lm_connect(bench_cfg.region, &s->c);
}

static void sl_detach(struct sem_lock *s)
{
	if (s->c != NULL)
		lm_disconnect(s->c);
	s->c = NULL;
}

static inline __attribute__((always_inline)) int psem_acquire(sem_t *sem)
{
	while (sem_wait(sem) != 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static inline __attribute__((always_inline)) int psem_release(sem_t *sem)
{
	return sem_post(sem) == 0 ? 0 : -errno;
}

static inline __attribute__((always_inline)) int
lsem_acquire(struct sem_lock *s, int64_t wait_ms)
{
	return lm_sem_acquire(s->c, SEM_NAME, SEM_N, bench_cfg.ttl_ms, wait_ms,
			      &s->g);
}

/* ---- uncontended: pairs.h, one pair function per primitive --------- */

static int unc_attach(void *lock)
{
	return sl_attach(lock);
}

static void unc_detach(void *lock)
{
	sl_detach(lock);
}

PAIRS_INLINE int unc_pair_posix(void *lock)
{
	struct sem_lock *s = lock;
	int rc = psem_acquire(s->psem);
	return rc == 0 ? psem_release(s->psem) : rc;
}

PAIRS_INLINE int unc_pair_lm(void *lock)
{
	struct sem_lock *s = lock;
	int rc = lsem_acquire(s, -1);
	return rc == 0 ? lm_release(s->c, &s->g) : rc;
}

static const struct pairs_ops unc_posix_ops = {unc_attach, unc_pair_posix,
					       unc_detach};
static const struct pairs_ops unc_lm_ops = {unc_attach, unc_pair_lm,
					    unc_detach};

static int unc_worker_posix(int id, void *job)
{
	(void)id;
	return pairs_worker(job, &unc_posix_ops);
}

static int unc_worker_lm(int id, void *job)
{
	(void)id;
	return pairs_worker(job, &unc_lm_ops);
}

/* ---- contended: P workers on the semaphore for a fixed time -------- */

/* The holders' count, on a cache line of its own. */
struct sc_state {
	_Atomic uint32_t inside;  /* holders in the critical section now */
	uint8_t pad_[60];
	_Atomic uint32_t over;    /* entries that found N already inside */
	_Atomic int32_t bad_slot; /* lockmgr: a slot outside 0..N-1, or -1 */
};

/* A worker's own record, written once after its loop. */
struct sc_out {
	uint64_t ops;   /* critical sections */
	uint32_t peak;  /* the most holders it saw inside, itself counted */
	uint8_t pad_[52];
};

struct sc_arg {
	enum prim_id prim;
	sem_t *psem;
	struct workers_hdr *hdr;
	struct sc_state *st;
	struct sc_out *out;
};

/* Acquire, the checked entry and exit, release, until the stop. */
static int sc_worker(int id, void *arg)
{
	struct sc_arg *a = arg;
	struct sem_lock s = {.prim = a->prim, .psem = a->psem};
	struct sc_state *st = a->st;
	int rc = sl_attach(&s);
	if (rc != 0)
		return workers_fail_at_start(a->hdr, id, "lm_connect", rc);
	uint64_t ops = 0;
	uint32_t peak = 0;
	int status = 0;
	const bool lm = a->prim == PRIM_LOCKMGR;
	gate_arrive_and_wait(&a->hdr->gate);
	while (!atomic_load_explicit(&a->hdr->gate.stop,
				     memory_order_relaxed)) {
		rc = lm ? lsem_acquire(&s, SEM_WAIT_MS) : psem_acquire(s.psem);
		if (rc != 0) {
			workers_fail(a->hdr, id, "acquire", rc);
			status = 4;
			break;
		}
		if (lm) {
			int slot = lm_sem_slot(&s.g);
			if (slot < 0 || slot >= (int)SEM_N)
				atomic_store(&st->bad_slot, slot);
		}
		/* Entry: with N holders already inside, this one is the
		 * (N+1)-th. seq_cst, so the count is one order all
		 * holders agree on. */
		uint32_t n = atomic_fetch_add(&st->inside, 1) + 1;
		if (n > SEM_N)
			atomic_fetch_add(&st->over, 1);
		if (n > peak)
			peak = n;
		atomic_fetch_sub(&st->inside, 1);
		rc = lm ? lm_release(s.c, &s.g) : psem_release(s.psem);
		if (rc != 0) {
			workers_fail(a->hdr, id, "release", rc);
			status = 4;
			break;
		}
		ops++;
	}
	a->out[id].ops = ops;
	a->out[id].peak = peak;
	sl_detach(&s);
	return status;
}

/* What one contended run gave. */
struct sc_result {
	double ops_per_s, fairness;
	uint32_t peak, over;
};

/* One timed run of SEM_P workers; 0, or -1 after a failure reported
 * with bench_fail. The clock is read when the gate opens and when the
 * stop is set: the few critical sections under way at the stop (one
 * per worker at most) count too, against a run of 10^4 or more. */
static int sc_run(enum prim_id prim, sem_t *psem, struct sc_result *res)
{
	struct workers_map m;
	workers_map(&m, SEM_P, sizeof(struct sc_state), sizeof(struct sc_out),
		    0);
	struct sc_arg a = {.prim = prim,
			   .psem = psem,
			   .hdr = m.hdr,
			   .st = m.state,
			   .out = m.out};
	atomic_store(&a.st->bad_slot, -1);
	char what[64];
	snprintf(what, sizeof(what), "semaphore %s, P=%u, N=%u",
		 prim_table[prim]->key, SEM_P, SEM_N);
	pid_t pids[SEM_P];
	for (int i = 0; i < (int)SEM_P; i++)
		pids[i] = procs_fork(sc_worker, i, &a);
	int64_t t0 = gate_open_when_ready(&m.hdr->gate, SEM_P, pids, what);
	int64_t t1 = -1;
	if (t0 > 0) {
		bench_sleep_ns(bench_cfg.duration_ms * 1000000);
		t1 = bench_now_ns();
		atomic_store(&m.hdr->gate.stop, 1);
	}
	int bad = procs_reap(pids, SEM_P, 60000, what);
	int ret = 0;
	if (atomic_load(&m.hdr->failed)) {
		bench_fail("%s: %s", what, m.hdr->err);
		ret = -1;
	} else if (bad != 0 || t0 < 0) {
		ret = -1;
	}
	uint32_t over = atomic_load(&a.st->over);
	res->over = over;
	int32_t slot = atomic_load(&a.st->bad_slot);
	if (over != 0) {
		bench_fail("%s: %u entr%s found %u holders already inside: "
			   "the semaphore let more than %u in",
			   what, over, over == 1 ? "y" : "ies", SEM_N, SEM_N);
		ret = -1;
	}
	if (slot != -1) {
		bench_fail("%s: lm_sem_slot gave slot %d, not 0..%u", what,
			   (int)slot, SEM_N - 1);
		ret = -1;
	}
	if (ret == 0 && atomic_load(&a.st->inside) != 0) {
		bench_fail("%s: %u holders still inside after every worker "
			   "ended", what, atomic_load(&a.st->inside));
		ret = -1;
	}
	if (ret == 0) {
		uint64_t total = 0, min = UINT64_MAX, max = 0;
		uint32_t peak = 0;
		for (int i = 0; i < (int)SEM_P; i++) {
			uint64_t o = a.out[i].ops;
			total += o;
			min = o < min ? o : min;
			max = o > max ? o : max;
			if (a.out[i].peak > peak)
				peak = a.out[i].peak;
		}
		res->ops_per_s = stats_per_s(total, t0, t1);
		res->fairness = stats_fairness(min, max);
		res->peak = peak;
	}
	workers_unmap(&m);
	return ret;
}

/* ---- the scenario -------------------------------------------------- */

/* A POSIX semaphore of N, unlinked at once: the workers inherit the
 * parent's mapping, and nothing is left in /dev/shm however the run
 * ends. NULL after a failure reported with bench_fail. */
static sem_t *psem_open(const char *tag)
{
	char name[96];
	snprintf(name, sizeof(name), "/lockbench-%d-sem%s", (int)getpid(),
		 tag);
	sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, SEM_N);
	if (sem == SEM_FAILED) {
		bench_fail("semaphore: sem_open %s: %s", name, strerror(errno));
		return NULL;
	}
	sem_unlink(name);
	return sem;
}

/* Make lockmgr's semaphore (its name and its N slots' names) before
 * any run, so that no run pays for creating them. */
static int lm_prepare(void)
{
	lm_client *c;
	lm_grant g;
	int rc = lm_connect(bench_cfg.region, &c);
	if (rc != 0)
		return rc;
	rc = lm_sem_acquire(c, SEM_NAME, SEM_N, bench_cfg.ttl_ms, 0, &g);
	if (rc == 0)
		rc = lm_release(c, &g);
	lm_disconnect(c);
	return rc;
}

void scen_semaphore(unsigned prims)
{
	const unsigned lm = (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	unsigned mask = 1u << PRIM_POSIX_SEM;
	if (prims & lm) {
		int rc = lm_prepare();
		if (rc != 0)
			bench_fail("semaphore: lockmgr %s: %s", SEM_NAME,
				   prim_strerror(rc));
		else
			mask |= 1u << PRIM_LOCKMGR;
	}
	sem_t *psem = psem_open("");
	if (psem == NULL)
		return;

	/* (a) uncontended pairs, a few more rounds: they are cheap. */
	int urounds = scen_rounds(2), iters = bench_cfg.uncontended_iters;
	double per[PRIM_COUNT][SCEN_MAX_ROUNDS];
	int got[PRIM_COUNT] = {0};
	struct scen_runs it;
	scen_runs_start(&it, mask, urounds);
	while (scen_runs_next(&it)) {
		enum prim_id id = it.prim;
		bench_progress("10/10 semaphore: uncontended, round %d/%d, %s",
			       it.round + 1, urounds, prim_table[id]->key);
		/* A fresh sem_lock per run: the worker fills in its own
		 * session (after fork) and grants. */
		struct sem_lock s = {.prim = id, .psem = psem};
		char what[64];
		snprintf(what, sizeof(what), "semaphore uncontended %s",
			 prim_table[id]->key);
		double ns;
		if (pairs_time(id == PRIM_LOCKMGR ? unc_worker_lm
						  : unc_worker_posix,
			       &s, iters, what, &ns) == 0)
			per[id][got[id]++] = ns;
	}

	/* (b) P processes on the semaphore, rounds interleaved. */
	int crounds = scen_rounds(0);
	double ops[PRIM_COUNT][SCEN_MAX_ROUNDS], fair[PRIM_COUNT][SCEN_MAX_ROUNDS];
	int cgot[PRIM_COUNT] = {0};
	uint32_t peak[PRIM_COUNT] = {0}, over[PRIM_COUNT] = {0};
	scen_runs_start(&it, mask, crounds);
	while (scen_runs_next(&it)) {
		enum prim_id id = it.prim;
		bench_progress("10/10 semaphore: P=%u, round %d/%d, %s", SEM_P,
			       it.round + 1, crounds, prim_table[id]->key);
		struct sc_result res = {0};
		int rc = sc_run(id, psem, &res);
		over[id] += res.over;
		if (rc != 0)
			continue;
		ops[id][cgot[id]] = res.ops_per_s;
		fair[id][cgot[id]] = res.fairness;
		cgot[id]++;
		if (res.peak > peak[id])
			peak[id] = res.peak;
	}
	sem_close(psem);

	const char *pu = sem_param[SEM_UNCONTENDED];
	const char *pc = sem_param[SEM_CONTENDED];
	double pos_ns = stats_median(per[PRIM_POSIX_SEM],
				     (size_t)got[PRIM_POSIX_SEM]);
	double pos_ops = stats_median(ops[PRIM_POSIX_SEM],
				      (size_t)cgot[PRIM_POSIX_SEM]);
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		double ns = stats_median(per[i], (size_t)got[i]);
		double o = stats_median(ops[i], (size_t)cgot[i]);
		results_add(SCEN_SEMAPHORE, i, pu, "ns_per_pair", ns, "ns");
		results_add(SCEN_SEMAPHORE, i, pu, "cost_over_posix",
			    pos_ns > 0 ? ns / pos_ns : NAN, "ratio");
		results_add(SCEN_SEMAPHORE, i, pc, "ops_per_s", o, "ops/s");
		results_add(SCEN_SEMAPHORE, i, pc, "thru_over_posix",
			    pos_ops > 0 ? o / pos_ops : NAN, "ratio");
		results_add(SCEN_SEMAPHORE, i, pc, "fairness",
			    stats_median(fair[i], (size_t)cgot[i]), "min/max");
		results_add(SCEN_SEMAPHORE, i, pc, "peak_inside",
			    cgot[i] ? (double)peak[i] : NAN, "holders");
		/* Entries that found N inside, over every run (each such
		 * run failed above): must be 0. */
		results_add(SCEN_SEMAPHORE, i, pc, "violations", over[i], "");
		results_add(SCEN_SEMAPHORE, i, pc, "runs_checked", cgot[i],
			    "");
	}
	results_note(SCEN_SEMAPHORE,
		     "a semaphore of %u slots: lm_sem_acquire/lm_release (by "
		     "name, %lld ms lease) against a POSIX named semaphore "
		     "initialised to %u (sem_wait/sem_post); uncontended: one "
		     "process, median of %d rounds of %d acquire+release "
		     "pairs; P=%u: %d interleaved round%s of %lld ms, ops/s "
		     "and fairness (min/max critical sections per process) "
		     "are medians over rounds, timed from the start to the "
		     "stop of each run (no clock read in the loop)",
		     SEM_N, (long long)bench_cfg.ttl_ms, SEM_N, urounds, iters,
		     SEM_P, crounds, crounds == 1 ? "" : "s",
		     (long long)bench_cfg.duration_ms);
	results_note(SCEN_SEMAPHORE,
		     "every entry into the critical section is checked "
		     "against a shared count of the holders inside: more "
		     "than %u fails the run (\"peak\": the most seen inside "
		     "at once)",
		     SEM_N);
	if (!(mask & (1u << PRIM_LOCKMGR)))
		results_note(SCEN_SEMAPHORE, "lockmgr did not run: "
					     "--primitives has no lockmgr");
}
