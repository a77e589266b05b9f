/*
 * scen_handoff.c - scenario 3: how long a blocked waiter takes to get
 * a lock its holder releases.
 *
 * Two processes play ping-pong. In step k the holder waits until the
 * other process has announced it is about to acquire *and* is asleep in
 * the kernel (its /proc state is S), so the hand-off always goes to a
 * sleeper that must be woken - the case a lock's wake path decides.
 * The holder stamps the time just before its release; the waiter stamps
 * the time its acquire returns; the difference is the hand-off.
 * Then the roles swap.
 *
 * The two processes are pinned to two different CPUs, so that every
 * hand-off wakes a sleeper on another CPU. Unpinned, the scheduler often
 * wakes the waiter on the releaser's own CPU, which then yields to it:
 * about 1 us instead of the 20+ us of a cross-CPU wake-up in a VM, and
 * which of the two a run measures would depend on the scheduler's mood.
 *
 * A waiter that never sleeps (it spins in its acquire) cannot be waited
 * for that way: after a few tries the holder releases once the waiter
 * has announced itself and had a moment to get into its acquire, and
 * the scenario reports how many hand-offs went to a waiter that was not
 * asleep.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

#define WAIT_MS 10000
/* How long a holder waits for its waiter to fall asleep. A waiter that
 * is still running after it is taken to be spinning in its acquire;
 * after SPIN_STRIKES such steps the holder stops waiting for sleep and
 * gives the waiter SPIN_GRACE_NS to be well inside its acquire. */
#define ASLEEP_MS 20
#define SPIN_STRIKES 3
#define SPIN_GRACE_NS 200000

struct ho_shared {
	struct gate gate;
	_Atomic uint32_t announced; /* k + 1: the waiter of step k is in */
	_Atomic uint32_t acquired;  /* k + 1: step k's waiter has the lock */
	_Atomic int32_t pid[2];
	_Atomic int32_t cpu[2];     /* where each process is pinned, or -1 */
	_Atomic uint32_t failed;
	_Atomic uint32_t not_asleep; /* hand-offs to a waiter still running */
	char err[192];
	int64_t t_release[];        /* then lat[iters] */
};

struct ho_arg {
	struct prim *p;
	struct ho_shared *sh;
	int iters;
};

static int ho_fail(struct ho_shared *sh, int id, int k, const char *what,
		   int rc)
{
	uint32_t zero = 0;
	if (atomic_compare_exchange_strong(&sh->failed, &zero, 1))
		snprintf(sh->err, sizeof(sh->err), "process %d, step %d: %s"
			 " (%s)", id, k, what, rc ? prim_strerror(rc) : "");
	return 4;
}

static int ho_worker(int id, void *arg)
{
	struct ho_arg *a = arg;
	struct prim *p = a->p;
	struct ho_shared *sh = a->sh;
	int64_t *lat = sh->t_release + a->iters;
	atomic_store(&sh->cpu[id], procs_pin(id));
	int rc = p->ops->attach(p);
	if (rc != 0) {
		ho_fail(sh, id, -1, "attach", rc);
		gate_arrive_and_wait(&sh->gate);
		return 3;
	}
	if (id == 0 && (rc = p->ops->acquire(p, 0, INT64_MAX)) != 0) {
		ho_fail(sh, id, -1, "first acquire", rc);
		gate_arrive_and_wait(&sh->gate);
		return 3;
	}
	gate_arrive_and_wait(&sh->gate);
	pid_t other = atomic_load(&sh->pid[1 - id]);
	for (int k = 0; k < a->iters && !atomic_load(&sh->failed); k++) {
		if (k % 2 == id) {
			/* Holder: release only to a sleeping waiter. */
			if (!procs_wait_value(&sh->announced, (uint32_t)k + 1,
					      WAIT_MS))
				return ho_fail(sh, id, k, "no waiter came", 0);
			if (atomic_load(&sh->not_asleep) >= SPIN_STRIKES) {
				atomic_fetch_add(&sh->not_asleep, 1);
				bench_sleep_ns(SPIN_GRACE_NS);
			} else if (!procs_wait_asleep(other, ASLEEP_MS)) {
				atomic_fetch_add(&sh->not_asleep, 1);
			}
			sh->t_release[k] = bench_now_ns();
			rc = p->ops->release(p, 0);
			if (rc != 0)
				return ho_fail(sh, id, k, "release", rc);
		} else {
			/* Waiter: step k - 1 must be complete, so that our
			 * partner holds the lock when we ask. */
			if (!procs_wait_value(&sh->acquired, (uint32_t)k,
					      WAIT_MS))
				return ho_fail(sh, id, k, "no holder", 0);
			atomic_store(&sh->announced, (uint32_t)k + 1);
			rc = p->ops->acquire(p, 0, INT64_MAX);
			int64_t t = bench_now_ns();
			if (rc != 0)
				return ho_fail(sh, id, k, "acquire", rc);
			lat[k] = t - sh->t_release[k];
			atomic_store(&sh->acquired, (uint32_t)k + 1);
		}
	}
	/* The last waiter still holds the lock. */
	if ((a->iters - 1) % 2 != id)
		p->ops->release(p, 0);
	p->ops->detach(p);
	return 0;
}

/* One primitive, one round: iters hand-offs appended to pool; the
 * number of them that went to a waiter that was not asleep is added to
 * *not_asleep. */
static int pinned = -2; /* -2 unknown, -1 not pinned, else 1 */

static void ho_round(enum prim_id id, int iters, struct samples *pool,
		     unsigned *not_asleep)
{
	const struct prim_ops *ops = prim_table[id];
	struct prim p;
	int rc = prim_init(&p, id, 1, "h");
	if (rc != 0) {
		bench_fail("handoff %s: init: %s", ops->key, prim_strerror(rc));
		return;
	}
	size_t size = sizeof(struct ho_shared) + 2 * (size_t)iters * 8;
	struct ho_shared *sh = bench_shared_alloc(size);
	struct ho_arg a = {.p = &p, .sh = sh, .iters = iters};
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = procs_fork(ho_worker, i, &a);
		atomic_store(&sh->pid[i], pids[i]);
	}
	char what[64];
	snprintf(what, sizeof(what), "handoff %s", ops->key);
	gate_open_when_ready(&sh->gate, 2, pids, what);
	int bad = procs_reap(pids, 2, 60000 + (int64_t)iters * 50, what);
	if (atomic_load(&sh->failed))
		bench_fail("%s: %s", what, sh->err);
	else if (bad == 0)
		samples_add(pool, sh->t_release + iters, (size_t)iters);
	*not_asleep += atomic_load(&sh->not_asleep);
	pinned = atomic_load(&sh->cpu[0]) >= 0 &&
				 atomic_load(&sh->cpu[1]) >= 0
			 ? 1
			 : -1;
	p.ops->destroy(&p);
	bench_shared_free(sh, size);
}

void scen_handoff(unsigned prims)
{
	int rounds = bench_cfg.rounds;
	int iters = bench_cfg.handoff_iters;
	struct samples pool[PRIM_COUNT];
	unsigned not_asleep[PRIM_COUNT] = {0};
	memset(pool, 0, sizeof(pool));
	struct scen_runs it;
	scen_runs_start(&it, prims, rounds);
	while (scen_runs_next(&it)) {
		bench_progress("3/7 handoff: round %d/%d, %s", it.round + 1,
			       rounds, prim_table[it.prim]->key);
		ho_round(it.prim, iters, &pool[it.prim], &not_asleep[it.prim]);
	}
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		stats_sort_i64(pool[i].v, pool[i].n);
		results_add(SCEN_HANDOFF, i, "", "p50_ns",
			    stats_pct_sorted(pool[i].v, pool[i].n, 50), "ns");
		results_add(SCEN_HANDOFF, i, "", "p99_ns",
			    stats_pct_sorted(pool[i].v, pool[i].n, 99), "ns");
		results_add(SCEN_HANDOFF, i, "", "samples", (double)pool[i].n,
			    "");
		double asleep = pool[i].n ? 1.0 - (double)not_asleep[i] /
							  (double)pool[i].n
					  : NAN;
		results_add(SCEN_HANDOFF, i, "", "waiter_asleep", asleep,
			    "fraction");
		if (asleep < 1)
			results_note(SCEN_HANDOFF,
				     "%s: the waiter was asleep in only %.0f%% "
				     "of the hand-offs: it spins (runs) while "
				     "it waits, so its hand-off skips a "
				     "wake-up at the cost of a busy CPU",
				     prim_table[i]->key, asleep * 100);
		samples_free(&pool[i]);
	}
	results_note(SCEN_HANDOFF,
		     "2 processes ping-pong, %d x %d hand-offs per primitive; "
		     "each release goes to a waiter already asleep in the "
		     "kernel%s; time from just before release to the waiter's "
		     "acquire returning", rounds, iters,
		     pinned == 1 ? " on the other CPU (the two are pinned)"
				 : " (not pinned: fewer than 2 CPUs)");
}
