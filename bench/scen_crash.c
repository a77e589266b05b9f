/*
 * scen_crash.c - scenario 4: a holder is SIGKILLed while a waiter is
 * blocked; how long until the waiter has the lock?
 *
 * The parent is the killer: it stamps the time just before kill(2), the
 * waiter stamps the time its acquire returns. The kernel frees a flock,
 * an OFD lock and a SEM_UNDO count when the holder's files and undo list
 * go at exit, and marks a robust mutex EOWNERDEAD; lockmgr's supervisor
 * sees the death on a pidfd and frees the dead session's grants. A bare
 * futex and a POSIX semaphore know nothing of their holder: their
 * waiter gives up at a deadline, and they are reported as "never".
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

#define MAX_ITERS 64
/* How long the killer waits for the waiter to fall asleep; a waiter
 * still running after it is spinning in its acquire, and is killed
 * behind anyway after SPIN_GRACE_NS (and reported as not asleep). */
#define ASLEEP_MS 200
#define SPIN_GRACE_NS 1000000

struct crash_shared {
	_Atomic uint32_t held;
	_Atomic uint32_t announced;
	int64_t t_acquired;
	int rc;
	int recovered;
	char what[32];
};

struct crash_arg {
	struct prim *p;
	struct crash_shared *sh;
};

/* How long a waiter waits before "never": the scenario's timeout, plus
 * the lease of a lock that only its expiry frees (Redis). */
static int64_t crash_timeout_ms(const struct prim_ops *ops)
{
	return bench_cfg.crash_timeout_ms +
	       (ops->recovery_ms != NULL ? ops->recovery_ms() : 0);
}

static int holder(int id, void *arg)
{
	(void)id;
	struct crash_arg *a = arg;
	struct prim *p = a->p;
	int rc = p->ops->attach(p);
	if (rc == 0)
		rc = p->ops->acquire(p, 0, INT64_MAX);
	if (rc != 0) {
		a->sh->rc = rc;
		snprintf(a->sh->what, sizeof(a->sh->what), "holder acquire");
		return 3;
	}
	atomic_store(&a->sh->held, 1);
	/* Hold it until the SIGKILL. */
	for (;;)
		pause();
}

static int waiter(int id, void *arg)
{
	(void)id;
	struct crash_arg *a = arg;
	struct prim *p = a->p;
	struct crash_shared *sh = a->sh;
	int rc = p->ops->attach(p);
	if (rc != 0) {
		sh->rc = rc;
		snprintf(sh->what, sizeof(sh->what), "waiter attach");
		return 3;
	}
	if (!procs_wait_value(&sh->held, 1, 10000)) {
		snprintf(sh->what, sizeof(sh->what), "holder never held");
		return 3;
	}
	int64_t deadline = bench_now_ns() +
			   crash_timeout_ms(p->ops) * 1000000;
	atomic_store(&sh->announced, 1);
	rc = p->ops->acquire(p, 0, deadline);
	int64_t t = bench_now_ns();
	sh->rc = rc;
	if (rc == 0) {
		sh->t_acquired = t;
		sh->recovered = p->recovered;
		p->ops->release(p, 0);
	} else if (rc != -ETIMEDOUT) {
		snprintf(sh->what, sizeof(sh->what), "waiter acquire");
	}
	p->ops->detach(p);
	return 0;
}

/*
 * One kill. Returns the recovery time in ns, INFINITY if the waiter was
 * not granted the lock within the timeout, NAN on a failure.
 */
static double crash_once(enum prim_id id, int iter, int *recovered,
			 int *asleep)
{
	const struct prim_ops *ops = prim_table[id];
	char tag[16];
	/* A fresh lockmgr name each time: a lock that was never recovered
	 * stays held by the dead session's lease. */
	snprintf(tag, sizeof(tag), "k%d", iter);
	struct prim p;
	int rc = prim_init(&p, id, 1, tag);
	if (rc != 0) {
		bench_fail("crash %s: init: %s", ops->key, prim_strerror(rc));
		return NAN;
	}
	struct crash_shared *sh = bench_shared_alloc(sizeof(*sh));
	struct crash_arg a = {.p = &p, .sh = sh};
	char what[64];
	snprintf(what, sizeof(what), "crash %s", ops->key);
	double result = NAN;
	pid_t h = procs_fork(holder, 0, &a);
	pid_t w = procs_fork(waiter, 1, &a);
	if (!procs_wait_value(&sh->announced, 1, 10000)) {
		bench_fail("%s: the waiter did not come (%s)", what,
			   sh->what[0] ? sh->what : "timeout");
		procs_kill_reap(h);
		procs_kill_reap(w);
		goto out;
	}
	*asleep = procs_wait_asleep(w, ASLEEP_MS);
	if (!*asleep)
		bench_sleep_ns(SPIN_GRACE_NS);
	int64_t t_kill = bench_now_ns();
	kill(h, SIGKILL);
	/* The waiter's own deadline bounds this. */
	if (procs_reap(&w, 1, crash_timeout_ms(ops) + 20000, what) != 0) {
		procs_kill_reap(h);
		goto out;
	}
	procs_kill_reap(h);
	if (sh->rc == 0) {
		result = (double)(sh->t_acquired - t_kill);
		*recovered = sh->recovered;
		/* A waiter that got it only after our timeout is as good
		 * as never for a lock that should recover at once. */
		if (result > (double)crash_timeout_ms(ops) * 1e6)
			result = INFINITY;
	} else if (sh->rc == -ETIMEDOUT) {
		result = INFINITY;
	} else {
		bench_fail("%s: %s: %s", what, sh->what, prim_strerror(sh->rc));
	}
out:
	p.ops->destroy(&p);
	bench_shared_free(sh, sizeof(*sh));
	return result;
}

void scen_crash(unsigned prims)
{
	int iters = bench_cfg.crash_iters < MAX_ITERS ? bench_cfg.crash_iters
						      : MAX_ITERS;
	double v[PRIM_COUNT][MAX_ITERS];
	int got[PRIM_COUNT] = {0}, never[PRIM_COUNT] = {0},
	    told[PRIM_COUNT] = {0}, slept[PRIM_COUNT] = {0},
	    kills[PRIM_COUNT] = {0};
	/* Each primitive is killed once per round. */
	struct scen_runs it;
	scen_runs_start(&it, prims, iters);
	while (scen_runs_next(&it)) {
		enum prim_id id = it.prim;
		/* A lock that did not recover once will not the next
		 * time: do not wait for its timeout again. */
		if (never[id])
			continue;
		bench_progress("4/7 crash recovery: kill %d/%d, %s",
			       it.round + 1, iters, prim_table[id]->key);
		int rec = 0, asleep = 0;
		double t = crash_once(id, it.round, &rec, &asleep);
		kills[id]++;
		slept[id] += asleep;
		if (isinf(t))
			never[id] = 1;
		else if (!isnan(t))
			v[id][got[id]++] = t;
		told[id] += rec;
	}
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		double p50 = never[i] ? INFINITY
				      : stats_median(v[i], (size_t)got[i]);
		double max = never[i] ? INFINITY : 0;
		for (int k = 0; k < got[i] && !never[i]; k++)
			max = v[i][k] > max ? v[i][k] : max;
		results_add(SCEN_CRASH, i, "", "p50_ns", p50, "ns");
		results_add(SCEN_CRASH, i, "", "max_ns",
			    got[i] || never[i] ? max : NAN, "ns");
		results_add(SCEN_CRASH, i, "", "told_dead",
			    got[i] ? (double)told[i] / got[i] : NAN,
			    "fraction");
		double asleep = kills[i] ? (double)slept[i] / kills[i] : NAN;
		results_add(SCEN_CRASH, i, "", "waiter_asleep", asleep,
			    "fraction");
		if (asleep < 1)
			results_note(SCEN_CRASH,
				     "%s: the waiter was asleep at the kill in "
				     "only %.0f%% of the runs: it spins while "
				     "it waits", prim_table[i]->key,
				     asleep * 100);
	}
	results_note(SCEN_CRASH,
		     "%d kills per primitive; time from kill(SIGKILL) of the "
		     "holder to the blocked waiter's acquire returning; "
		     "\"never\": not granted within %lld ms",
		     iters, (long long)bench_cfg.crash_timeout_ms);
	if (prims & (1u << PRIM_REDIS))
		results_note(SCEN_CRASH,
			     "redis: the dead holder's key goes only when its "
			     "TTL (PX %lld ms) runs out, counted from its SET, "
			     "a little before the kill; its waiter waits that "
			     "much longer before \"never\"",
			     (long long)bench_cfg.redis_ttl_ms);
}
