/*
 * test_mutex.c - mutual exclusion, waiting and takeover with a real
 * lockmgrd and real client processes.
 *
 * Each case runs in its own process group under a timeout (harness.h);
 * clients are forked processes that report through a shared anonymous
 * mapping, and the case waits for them with bounded waits only.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* The lockmgrd of the running case (each case is its own process). */
static struct harness_lockmgrd d;

static lm_client *connect_or_fail(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(d.region, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", d.region, rc,
			 lm_strerror(rc));
	return c;
}

/* An attached view of the case's region, to watch the wait queue. */
struct watch {
	struct lm_region r;
	uint32_t lock;
};

static void watch_open(struct watch *w, const char *lock)
{
	char why[256] = "";
	int rc = lm_region_attach(&w->r, d.region, why, sizeof(why));
	if (rc != 0)
		fail_msg("attach %s: %d (%s)", d.region, rc, why);
	int64_t k = lm_name_lookup(&w->r, lock, strlen(lock), 1);
	assert_true(k >= 0);
	w->lock = (uint32_t)k;
}

static uint32_t watch_waiters(struct watch *w)
{
	return LM_WAITERS_COUNT(
		atomic_load(&lm_queue_of(&w->r, w->lock)->waiters));
}

/* ---- 8 x 1000 critical sections ---------------------------------- */

enum { NCLIENTS = 8, NROUNDS = 1000, NLOG = NCLIENTS * NROUNDS };

struct mutex_shared {
	uint64_t count;           /* plain, non-atomic: the lock guards it */
	uint64_t log[NLOG + 64];  /* token of each critical section */
};

static struct mutex_shared *msh;

static void mutex_client(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	for (int k = 0; k < NROUNDS; k++) {
		lm_grant g;
		int rc = lm_acquire(c, "/test/mutex", 5000, -1, &g);
		if (rc != 0)
			fail_msg("acquire %d: %d (%s)", k, rc, lm_strerror(rc));
		uint64_t n = msh->count;
		/* Widen the window a second holder would race in. */
		if ((k & 15) == 0)
			sched_yield();
		if (n < NLOG + 64)
			msh->log[n] = g.token;
		msh->count = n + 1;
		rc = lm_release(c, &g);
		if (rc != 0)
			fail_msg("release %d: %d (%s)", k, rc, lm_strerror(rc));
	}
	assert_int_equal(lm_disconnect(c), 0);
}

static void mutex_8x1000(void)
{
	harness_lockmgrd_start(&d, "mutex", "--max-ttl", "10000", NULL);
	msh = harness_shared(sizeof(*msh));
	pid_t pids[NCLIENTS];
	int64_t t0 = harness_now_ms();
	for (int i = 0; i < NCLIENTS; i++)
		pids[i] = harness_fork(mutex_client, NULL);
	for (int i = 0; i < NCLIENTS; i++)
		harness_expect_exit(pids[i], 100000, 0, "mutex client");
	int64_t took = harness_now_ms() - t0;
	fprintf(stderr, "  %d x %d critical sections in %lld ms\n", NCLIENTS,
		NROUNDS, (long long)took);
	if (msh->count != NLOG)
		fail_msg("counter is %llu after %d critical sections: mutual "
			 "exclusion was broken", (unsigned long long)msh->count,
			 NLOG);
	for (int i = 1; i < NLOG; i++)
		if (msh->log[i] <= msh->log[i - 1])
			fail_msg("critical section %d had token %llu after %llu",
				 i, (unsigned long long)msh->log[i],
				 (unsigned long long)msh->log[i - 1]);
	assert_true(msh->log[0] > 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(mutex_8x1000, 120)

/* ---- try-lock ---------------------------------------------------- */

struct probe {
	int rc;
	int64_t elapsed_ms;
	int64_t cpu_ms;      /* CPU time the waiter used */
	int64_t granted_ns;
	uint64_t token;
	uint32_t flags;
	uint64_t holder_token;
	int order[4];
	int next;
};

static struct probe *psh;

static void try_client(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int64_t t0 = harness_now_ns();
	psh->rc = lm_acquire(c, "/test/try", 1000, 0, &g);
	psh->elapsed_ms = (harness_now_ns() - t0) / 1000000;
	if (psh->rc == 0)
		lm_release(c, &g);
	assert_int_equal(lm_disconnect(c), 0);
}

static void trylock_busy_at_once(void)
{
	/* A lease that outlasts the try client's fork and connect on a
	 * loaded host. */
	harness_lockmgrd_start(&d, "try", "--max-ttl", "20000", NULL);
	psh = harness_shared(sizeof(*psh));
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/test/try", 20000, 0, &g), 0);

	harness_expect_exit(harness_fork(try_client, NULL), 10000, 0,
			    "try-lock client");
	if (psh->rc != LM_EBUSY)
		fail_msg("try-lock on a held lock returned %d (%s), expected "
			 "LM_EBUSY", psh->rc, lm_strerror(psh->rc));
	/* A try that waited would wait for the lease or a waiter's 1 s
	 * re-check; a descheduled one on a loaded host takes tens of ms. */
	if (psh->elapsed_ms >= 1000)
		fail_msg("try-lock on a held lock took %lld ms: it waited",
			 (long long)psh->elapsed_ms);

	/* Free again: the same try succeeds. */
	assert_int_equal(lm_release(a, &g), 0);
	harness_expect_exit(harness_fork(try_client, NULL), 10000, 0,
			    "try-lock client");
	assert_int_equal(psh->rc, 0);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(trylock_busy_at_once, 30)

/* ---- wait timeout ------------------------------------------------ */

static void timeout_client(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int64_t t0 = harness_now_ns();
	psh->rc = lm_acquire(c, "/test/timeout", 1000, 300, &g);
	psh->elapsed_ms = (harness_now_ns() - t0) / 1000000;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	psh->cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	if (psh->rc == 0)
		lm_release(c, &g);
	assert_int_equal(lm_disconnect(c), 0);
}

static void wait_timeout_honoured(void)
{
	harness_lockmgrd_start(&d, "timeout", "--max-ttl", "10000", NULL);
	psh = harness_shared(sizeof(*psh));
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/test/timeout", 10000, 0, &g), 0);

	harness_expect_exit(harness_fork(timeout_client, NULL), 10000, 0,
			    "waiting client");
	if (psh->rc != LM_ETIMEDOUT)
		fail_msg("a 300 ms wait on a held lock returned %d (%s), "
			 "expected LM_ETIMEDOUT", psh->rc,
			 lm_strerror(psh->rc));
	if (psh->elapsed_ms < 300 || psh->elapsed_ms >= 3000)
		fail_msg("a 300 ms wait returned after %lld ms",
			 (long long)psh->elapsed_ms);
	/* Waiting is sleeping on a futex: a spinning waiter would burn the
	 * whole 300 ms (a bug once seen here). */
	if (psh->cpu_ms > 100)
		fail_msg("the waiter used %lld ms of CPU in a 300 ms wait",
			 (long long)psh->cpu_ms);
	/* The waiter left the queue; the holder still holds. */
	struct watch w;
	watch_open(&w, "/test/timeout");
	assert_int_equal(watch_waiters(&w), 0);
	assert_int_equal(lm_renew(a, &g, 10000), 0);
	assert_int_equal(lm_release(a, &g), 0);
	lm_region_detach(&w.r);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(wait_timeout_honoured, 30)

/* ---- SIGKILL takeover -------------------------------------------- */

struct holder_arg {
	int ready_w; /* write end: one byte once the lock is held */
	int ready_r;
};

static void doomed_holder(void *arg)
{
	struct holder_arg *h = arg;
	close(h->ready_r);
	lm_client *c = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/test/victim", 30000, 0, &g), 0);
	psh->holder_token = g.token;
	assert_int_equal(write(h->ready_w, "h", 1), 1);
	/* Hold until killed (the case's timeout bounds this). */
	for (;;)
		pause();
}

static void takeover_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int64_t t0 = harness_now_ns();
	psh->rc = lm_acquire(c, "/test/victim", 2000, 10000, &g);
	psh->granted_ns = harness_now_ns();
	psh->elapsed_ms = (psh->granted_ns - t0) / 1000000;
	if (psh->rc == 0) {
		psh->token = g.token;
		psh->flags = g.flags;
		assert_int_equal(lm_release(c, &g), 0);
	}
	assert_int_equal(lm_disconnect(c), 0);
}

static void sigkill_takeover(void)
{
	harness_lockmgrd_start(&d, "kill", "--max-ttl", "60000", NULL);
	psh = harness_shared(sizeof(*psh));
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct holder_arg h = {p[1], p[0]};
	pid_t holder = harness_fork(doomed_holder, &h);
	close(p[1]);
	harness_read_byte(p[0], 10000, "the holder to take the lock");
	close(p[0]);

	struct watch w;
	watch_open(&w, "/test/victim");
	pid_t waiter = harness_fork(takeover_waiter, NULL);
	HARNESS_WAIT_FOR(watch_waiters(&w) == 1, 10000,
			 "the waiter to queue for the held lock (waiters %u)",
			 watch_waiters(&w));
	int64_t t_kill = harness_now_ns();
	assert_int_equal(kill(holder, SIGKILL), 0);
	int st = harness_reap(holder, 5000, "SIGKILLed holder");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	harness_expect_exit(waiter, 15000, 0, "takeover waiter");

	if (psh->rc != 0)
		fail_msg("waiter after the holder's SIGKILL: %d (%s)", psh->rc,
			 lm_strerror(psh->rc));
	int64_t after_ms = (psh->granted_ns - t_kill) / 1000000;
	fprintf(stderr, "  lock free %lld ms after SIGKILL (TTL 30000)\n",
		(long long)after_ms);
	if (after_ms >= 5000)
		fail_msg("the waiter got the lock %lld ms after the holder "
			 "died: death was not detected", (long long)after_ms);
	if (!(psh->flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after a SIGKILLed holder lacks "
			 "LM_GRANT_RECOVERED (flags %#x)", psh->flags);
	if (psh->token <= psh->holder_token)
		fail_msg("token after takeover %llu is not above the dead "
			 "holder's %llu", (unsigned long long)psh->token,
			 (unsigned long long)psh->holder_token);
	lm_region_detach(&w.r);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(sigkill_takeover, 60)

/* ---- FIFO -------------------------------------------------------- */

static void fifo_waiter(void *arg)
{
	int id = (int)(intptr_t)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = lm_acquire(c, "/test/fifo", 5000, 20000, &g);
	if (rc != 0)
		fail_msg("fifo waiter %d: %d (%s)", id, rc, lm_strerror(rc));
	/* Under the lock: no atomics needed. */
	psh->order[psh->next++] = id;
	if (g.flags != 0)
		psh->flags |= 1u << id;
	assert_int_equal(lm_release(c, &g), 0);
	assert_int_equal(lm_disconnect(c), 0);
}

static void fifo_order(void)
{
	harness_lockmgrd_start(&d, "fifo", "--max-ttl", "30000", NULL);
	psh = harness_shared(sizeof(*psh));
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/test/fifo", 30000, 0, &g), 0);
	struct watch w;
	watch_open(&w, "/test/fifo");
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = harness_fork(fifo_waiter, (void *)(intptr_t)i);
		HARNESS_WAIT_FOR(watch_waiters(&w) == (uint32_t)i + 1, 10000,
				 "waiter %d to queue (waiters %u)", i,
				 watch_waiters(&w));
	}
	assert_int_equal(lm_release(a, &g), 0);
	for (int i = 0; i < 3; i++)
		harness_expect_exit(pids[i], 20000, 0, "fifo waiter");
	assert_int_equal(psh->next, 3);
	for (int i = 0; i < 3; i++)
		if (psh->order[i] != i)
			fail_msg("grant order %d, %d, %d; expected 0, 1, 2",
				 psh->order[0], psh->order[1], psh->order[2]);
	/* Every hand-off was a clean release. */
	if (psh->flags != 0)
		fail_msg("LM_GRANT_RECOVERED after clean releases (waiters "
			 "mask %#x)", psh->flags);
	assert_int_equal(watch_waiters(&w), 0);
	/* And the holder after them is told nothing either. */
	assert_int_equal(lm_acquire(a, "/test/fifo", 1000, 0, &g), 0);
	assert_int_equal(g.flags, 0);
	assert_int_equal(lm_release(a, &g), 0);
	lm_region_detach(&w.r);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(fifo_order, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(mutex_8x1000),
		harness_case(trylock_busy_at_once),
		harness_case(wait_timeout_honoured),
		harness_case(sigkill_takeover),
		harness_case(fifo_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
