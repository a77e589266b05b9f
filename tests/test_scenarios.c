/*
 * test_scenarios.c - end-to-end scenarios of the liveness and fencing
 * guarantees (docs/protocol.md, "What it guarantees"), each with real
 * processes and real signals:
 *
 *   death_detection       a holder that dies (SIGKILL, abort(), _exit())
 *                         with a long lease is replaced by a queued
 *                         waiter in milliseconds, flagged RECOVERED,
 *                         with a larger token; the takeover latency is
 *                         measured and reported;
 *   no_release_on_exit    with lockmgrd --no-release-on-exit the waiter
 *                         gets the lock only once the dead holder's
 *                         lease has run out;
 *   clean_release_no_flag a clean release leaves no RECOVERED flag, an
 *                         expired lease does;
 *   frozen_holder         a SIGSTOPped holder (the zombie) loses its
 *                         lease, and once resumed can neither renew,
 *                         write to the fenced store, nor release its
 *                         successor's grant;
 *   lockctl_run_frozen    `lockctl run` stopped past its lease notices on
 *                         SIGCONT, stops its command and exits 70;
 *   resctl_cli_fencing    the fenced store's CLI accepts equal tokens,
 *                         rejects a lower one (exit 3) and shows it all.
 *
 * Synchronisation is by pipes, shared mappings polled in bounded loops
 * and waitpid; no sleep stands in for an event.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "examples/clients.h"
#include "resource/store.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* ---- helpers ------------------------------------------------------ */

static void make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		fail_msg("pipe: %s", strerror(errno));
}

static void send_byte(int fd)
{
	ssize_t n;
	do
		n = write(fd, "x", 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		fail_msg("write to pipe: %s", strerror(errno));
}

/* Waiters queued on lock `name` (0 if the name is not known yet). */
static uint32_t queued_waiters(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		return 0;
	return LM_WAITERS_COUNT(atomic_load(&lm_queue_of(r, idx)->waiters));
}

/* Wait, bounded, until the forked child pid is stopped by a signal. */
static void wait_stopped(pid_t pid, const char *what)
{
	int64_t deadline = harness_now_ms() + 5000;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);
		if (r == pid && WIFSTOPPED(st))
			return;
		if (r == pid) {
			char b[96];
			fail_msg("%s ended (%s) instead of stopping", what,
				 harness_status_str(st, b, sizeof(b)));
		}
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid(%s): %s", what, strerror(errno));
		if (harness_now_ms() > deadline)
			fail_msg("%s did not stop within 5 s of SIGSTOP", what);
		harness_nap_us(500);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double ms_of(int64_t ns)
{
	return (double)ns / 1e6;
}

/* ---- a failing holder and a queued waiter ------------------------- */

/*
 * What the holder (a failing client from examples/clients.c) and the
 * waiter report, through a shared mapping. Times are CLOCK_MONOTONIC,
 * which every process on the host shares.
 */
struct takeover {
	char region[LM_REGION_NAME_MAX + 2];
	char lock[64];
	int64_t holder_ttl_ms;
	int64_t waiter_ttl_ms;
	enum crash_how how;
	int ready_w;   /* holder -> test: "I hold the lock" */
	int go_r;      /* test -> holder: "crash now" */

	_Atomic int holder_refused;     /* acquire rc, if it failed */
	_Atomic uint64_t holder_token;
	_Atomic int64_t holder_acq_ns;  /* right after acquire returned */
	_Atomic int64_t holder_valid_until_ns;
	_Atomic int64_t crash_ns;       /* just before dying (EV_CRASHING) */

	_Atomic int waiter_started;
	_Atomic int waiter_rc;
	_Atomic int waiter_release_rc;
	_Atomic uint64_t waiter_token;
	_Atomic uint32_t waiter_flags;
	_Atomic int64_t waiter_acq_ns;  /* right after acquire returned */
	_Atomic int waiter_done;
};

static void holder_event(const struct client_spec *s, enum client_event ev,
			 int round, const lm_grant *g, int rc,
			 uint64_t highest)
{
	(void)round;
	(void)highest;
	struct takeover *t = s->arg;
	switch (ev) {
	case EV_ACQUIRED:
		atomic_store(&t->holder_acq_ns, harness_now_ns());
		atomic_store(&t->holder_token, g->token);
		atomic_store(&t->holder_valid_until_ns, g->valid_until_ns);
		send_byte(t->ready_w);
		/* Hold until the waiter is queued behind us. */
		harness_read_byte(t->go_r, 20000, "the test's go to crash");
		break;
	case EV_REFUSED:
		atomic_store(&t->holder_refused, rc);
		send_byte(t->ready_w);
		break;
	case EV_CRASHING:
		atomic_store(&t->crash_ns, harness_now_ns());
		break;
	default:
		break;
	}
}

static void holder_main(void *arg)
{
	struct takeover *t = arg;
	/* A dying process that dumps core dies late: keep the measured
	 * latency that of lockmgr, not of the core dump. */
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	struct client_spec spec = {
		.region = t->region,
		.lock = t->lock,
		.id = 1,
		.ttl_ms = t->holder_ttl_ms,
		.wait_ms = 0,
		.rounds = 1,
		.crash_at = CRASH_INSIDE,
		.crash_round = 0,
		.crash_how = t->how,
		.on_event = holder_event,
		.arg = t,
	};
	int rc = run_client(&spec);
	fail_msg("the failing client did not crash (run_client: %s)",
		 lm_strerror(rc));
}

static void waiter_main(void *arg)
{
	struct takeover *t = arg;
	lm_client *c;
	int rc = lm_connect(t->region, &c);
	if (rc != 0)
		fail_msg("waiter connect: %s", lm_strerror(rc));
	atomic_store(&t->waiter_started, 1);
	lm_grant g;
	rc = lm_acquire(c, t->lock, t->waiter_ttl_ms, 15000, &g);
	atomic_store(&t->waiter_acq_ns, harness_now_ns());
	atomic_store(&t->waiter_rc, rc);
	if (rc == 0) {
		atomic_store(&t->waiter_token, g.token);
		atomic_store(&t->waiter_flags, g.flags);
		atomic_store(&t->waiter_release_rc, lm_release(c, &g));
	}
	lm_disconnect(c);
	atomic_store(&t->waiter_done, 1);
}

/*
 * One takeover: the holder takes the lock, the waiter queues behind it,
 * the holder dies the configured way, the waiter gets the lock. Returns
 * the wait status of the holder; everything else is in *t.
 */
static int run_takeover(struct takeover *t, struct lm_region *r)
{
	int ready[2], go[2];
	make_pipe(ready);
	make_pipe(go);
	t->ready_w = ready[1];
	t->go_r = go[0];
	pid_t holder = harness_fork(holder_main, t);
	close(ready[1]);
	close(go[0]);
	harness_read_byte(ready[0], 5000, "the holder's acquire");
	if (atomic_load(&t->holder_refused) != 0)
		fail_msg("holder's acquire of %s failed: %s", t->lock,
			 lm_strerror(atomic_load(&t->holder_refused)));

	pid_t waiter = harness_fork(waiter_main, t);
	HARNESS_WAIT_FOR(queued_waiters(r, t->lock) >= 1 ||
				 atomic_load(&t->waiter_done),
			 5000, "the waiter never queued on %s", t->lock);
	if (atomic_load(&t->waiter_done))
		fail_msg("the waiter returned (rc %d: %s) while the holder "
			 "still held %s", atomic_load(&t->waiter_rc),
			 lm_strerror(atomic_load(&t->waiter_rc)), t->lock);

	send_byte(go[1]);
	int status = harness_reap(holder, 5000, "crashing holder");
	harness_expect_exit(waiter, 20000, 0, "waiter");
	close(ready[0]);
	close(go[1]);
	return status;
}

static void check_crash_status(int status, enum crash_how how)
{
	char b[96];
	bool ok;
	switch (how) {
	case CRASH_ABORT:
		ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
		break;
	case CRASH_EXIT:
		ok = WIFEXITED(status) && WEXITSTATUS(status) == 3;
		break;
	default:
		ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		break;
	}
	if (!ok)
		fail_msg("holder crashing by %s ended with %s",
			 client_crash_how_name(how),
			 harness_status_str(status, b, sizeof(b)));
}

/* ---- cases -------------------------------------------------------- */

#define DD_REPS 5

/*
 * A holder with a 10 s lease dies inside its critical section; a waiter
 * already queued (waiting up to 15 s) must get the lock in milliseconds,
 * through the supervisor's death detection, not the lease.
 */
static void death_detection(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "death", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct takeover *t = harness_shared(sizeof(*t));
	const enum crash_how hows[] = {CRASH_SIGKILL, CRASH_ABORT,
				       CRASH_EXIT};
	enum { NHOW = sizeof(hows) / sizeof(hows[0]) };
	int64_t lat[NHOW][DD_REPS], all[NHOW * DD_REPS];
	int nall = 0;
	uint64_t last_token = 0;
	for (int h = 0; h < NHOW; h++) {
		for (int rep = 0; rep < DD_REPS; rep++) {
			memset(t, 0, sizeof(*t));
			snprintf(t->region, sizeof(t->region), "%s", d.region);
			/* One lock for all: tokens must keep rising across
			 * every takeover too. */
			snprintf(t->lock, sizeof(t->lock), "death/x");
			t->holder_ttl_ms = 10000;
			t->waiter_ttl_ms = 5000;
			t->how = hows[h];
			int status = run_takeover(t, &r);
			check_crash_status(status, hows[h]);
			const char *how = client_crash_how_name(hows[h]);

			int rc = atomic_load(&t->waiter_rc);
			if (rc != 0)
				fail_msg("%s #%d: the waiter's acquire failed: "
					 "%s", how, rep, lm_strerror(rc));
			int64_t crash = atomic_load(&t->crash_ns);
			int64_t acq = atomic_load(&t->waiter_acq_ns);
			assert_true(crash > 0);
			if (acq <= crash)
				fail_msg("%s #%d: the waiter got the lock "
					 "%.3f ms before the holder died", how,
					 rep, ms_of(crash - acq));
			int64_t l = acq - crash;
			/* Well under the holder's 10 s TTL (slack for a
			 * loaded host). */
			if (l >= INT64_C(5000000000))
				fail_msg("%s #%d: takeover took %.1f ms: the "
					 "dead holder's lock was freed by its "
					 "lease, not by death detection", how,
					 rep, ms_of(l));
			uint64_t ht = atomic_load(&t->holder_token);
			uint64_t wt = atomic_load(&t->waiter_token);
			if (wt <= ht || ht <= last_token)
				fail_msg("%s #%d: tokens do not rise: previous "
					 "%" PRIu64 ", holder %" PRIu64
					 ", waiter %" PRIu64, how, rep,
					 last_token, ht, wt);
			last_token = wt;
			if (!(atomic_load(&t->waiter_flags) &
			      LM_GRANT_RECOVERED))
				fail_msg("%s #%d: the grant after a dead holder "
					 "lacks LM_GRANT_RECOVERED (flags %#x)",
					 how, rep, atomic_load(&t->waiter_flags));
			assert_int_equal(atomic_load(&t->waiter_release_rc), 0);
			lat[h][rep] = l;
			all[nall++] = l;
		}
	}
	for (int h = 0; h < NHOW; h++) {
		qsort(lat[h], DD_REPS, sizeof(int64_t), cmp_i64);
		fprintf(stderr, "death_detection: %-8s takeover latency over %d "
				"runs: median %.3f ms, min %.3f ms, max %.3f ms\n",
			client_crash_how_name(hows[h]), DD_REPS,
			ms_of(lat[h][DD_REPS / 2]), ms_of(lat[h][0]),
			ms_of(lat[h][DD_REPS - 1]));
	}
	qsort(all, (size_t)nall, sizeof(int64_t), cmp_i64);
	fprintf(stderr, "death_detection: all %d takeovers (holder's "
			"EV_CRASHING to waiter's grant, 10 s lease): median "
			"%.3f ms, max %.3f ms\n", nall, ms_of(all[nall / 2]),
		ms_of(all[nall - 1]));
	harness_shared_free(t, sizeof(*t));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * With --no-release-on-exit a dead holder's lock is left to its lease:
 * the queued waiter gets it only once the lease has run out.
 */
static void no_release_on_exit(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "norel", "--no-release-on-exit", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct takeover *t = harness_shared(sizeof(*t));
	snprintf(t->region, sizeof(t->region), "%s", d.region);
	snprintf(t->lock, sizeof(t->lock), "norel/x");
	const int64_t ttl = 1000;
	t->holder_ttl_ms = ttl;
	t->waiter_ttl_ms = ttl;
	t->how = CRASH_SIGKILL;
	int status = run_takeover(t, &r);
	check_crash_status(status, CRASH_SIGKILL);

	int rc = atomic_load(&t->waiter_rc);
	if (rc != 0)
		fail_msg("the waiter's acquire failed: %s", lm_strerror(rc));
	int64_t acq = atomic_load(&t->waiter_acq_ns);
	int64_t valid = atomic_load(&t->holder_valid_until_ns);
	int64_t held_from = atomic_load(&t->holder_acq_ns);
	if (acq < valid)
		fail_msg("the waiter got the lock %.3f ms before the dead "
			 "holder's lease ended (--no-release-on-exit)",
			 ms_of(valid - acq));
	if (acq - held_from > (ttl + 5000) * 1000000)
		fail_msg("the waiter got the lock %.1f ms after the holder's "
			 "grant: more than TTL %" PRId64 " ms + 5 s",
			 ms_of(acq - held_from), ttl);
	assert_true(atomic_load(&t->waiter_token) >
		    atomic_load(&t->holder_token));
	if (!(atomic_load(&t->waiter_flags) & LM_GRANT_RECOVERED))
		fail_msg("the grant after an expired lease lacks "
			 "LM_GRANT_RECOVERED");
	assert_int_equal(atomic_load(&t->waiter_release_rc), 0);
	fprintf(stderr, "no_release_on_exit: waiter granted %.1f ms after "
			"the holder's grant (TTL %" PRId64 " ms), %.1f ms "
			"after its valid_until\n", ms_of(acq - held_from), ttl,
		ms_of(acq - valid));
	harness_shared_free(t, sizeof(*t));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

struct clean_waiter {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int rc;
	_Atomic uint32_t flags;
	_Atomic uint64_t token;
	_Atomic int release_rc;
};

static void clean_waiter_main(void *arg)
{
	struct clean_waiter *w = arg;
	lm_client *c;
	int rc = lm_connect(w->region, &c);
	if (rc != 0)
		fail_msg("waiter connect: %s", lm_strerror(rc));
	lm_grant g;
	rc = lm_acquire(c, "clean/x", 1000, 5000, &g);
	atomic_store(&w->rc, rc);
	if (rc == 0) {
		atomic_store(&w->flags, g.flags);
		atomic_store(&w->token, g.token);
		atomic_store(&w->release_rc, lm_release(c, &g));
	}
	lm_disconnect(c);
}

/*
 * LM_GRANT_RECOVERED says "the previous holder did not release": a
 * clean release (to a try-lock or to a queued waiter) leaves it clear,
 * an expired lease sets it, and it does not stick to later grants.
 */
static void clean_release_no_flag(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "clean", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	lm_grant ga, gb;

	/* A new lock, then a clean hand-over to a try-lock. */
	assert_int_equal(lm_acquire(a, "clean/x", 1000, 0, &ga), 0);
	assert_int_equal(ga.flags & LM_GRANT_RECOVERED, 0);
	assert_int_equal(lm_release(a, &ga), 0);
	assert_int_equal(lm_acquire(b, "clean/x", 1000, 0, &gb), 0);
	if (gb.flags & LM_GRANT_RECOVERED)
		fail_msg("LM_GRANT_RECOVERED after a clean release");
	assert_true(gb.token > ga.token);
	assert_int_equal(lm_release(b, &gb), 0);

	/* A clean hand-over to a waiter queued in another process. */
	assert_int_equal(lm_acquire(a, "clean/x", 1000, 0, &ga), 0);
	assert_true(ga.token > gb.token);
	struct clean_waiter *w = harness_shared(sizeof(*w));
	snprintf(w->region, sizeof(w->region), "%s", d.region);
	atomic_store(&w->rc, 1);
	pid_t wp = harness_fork(clean_waiter_main, w);
	HARNESS_WAIT_FOR(queued_waiters(&r, "clean/x") >= 1, 5000,
			 "the waiter never queued on clean/x");
	assert_int_equal(lm_release(a, &ga), 0);
	harness_expect_exit(wp, 10000, 0, "queued waiter");
	assert_int_equal(atomic_load(&w->rc), 0);
	if (atomic_load(&w->flags) & LM_GRANT_RECOVERED)
		fail_msg("LM_GRANT_RECOVERED for a waiter after a clean "
			 "release");
	assert_true(atomic_load(&w->token) > ga.token);
	assert_int_equal(atomic_load(&w->release_rc), 0);
	uint64_t last = atomic_load(&w->token);

	/* A live holder that never renews: its 1 s lease expires. (Not
	 * shorter: a loaded host may stall us that long before the
	 * try-acquire below, which must find it still held.) */
	assert_int_equal(lm_acquire(a, "clean/x", 1000, 0, &ga), 0);
	assert_true(ga.token > last);
	assert_int_equal(lm_acquire(b, "clean/x", 1000, 0, &gb), LM_EBUSY);
	int rc = lm_acquire(b, "clean/x", 1000, 5000, &gb);
	int64_t got = harness_now_ns();
	if (rc != 0)
		fail_msg("the lock was not free within 5 s of a 1 s lease "
			 "that was never renewed: %s", lm_strerror(rc));
	if (got < ga.valid_until_ns)
		fail_msg("granted %.3f ms before the holder's lease ended",
			 ms_of(ga.valid_until_ns - got));
	if (!(gb.flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after an expired lease lacks "
			 "LM_GRANT_RECOVERED");
	assert_true(gb.token > ga.token);
	/* The expired holder can neither renew nor release it now (each
	 * tried on its own copy of the grant: frozen_holder checks the
	 * renew-then-release sequence), and neither touches b's grant. */
	lm_grant ga2 = ga;
	assert_int_equal(lm_release(a, &ga2), LM_ELEASELOST);
	assert_int_equal(lm_renew(a, &ga, 200), LM_ELEASELOST);
	assert_int_equal(lm_renew(b, &gb, 1000), 0);
	assert_int_equal(lm_release(b, &gb), 0);

	/* The flag does not stick: the next clean hand-over is clear. */
	assert_int_equal(lm_acquire(a, "clean/x", 1000, 0, &ga), 0);
	if (ga.flags & LM_GRANT_RECOVERED)
		fail_msg("LM_GRANT_RECOVERED stuck after a clean release");
	assert_true(ga.token > gb.token);
	assert_int_equal(lm_release(a, &ga), 0);

	harness_shared_free(w, sizeof(*w));
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- the frozen holder (the zombie) ------------------------------- */

struct frozen {
	char region[LM_REGION_NAME_MAX + 2];
	char store[512];
	int ready_w, go_r;
	_Atomic int acquire_rc;
	_Atomic uint64_t token;
	_Atomic int64_t acq_ns;
	_Atomic int64_t valid_until_ns;
	_Atomic int renew_rc;
	_Atomic int open_rc;
	_Atomic int write_rc;
	_Atomic uint64_t write_highest;
	_Atomic int release_rc;
	_Atomic int done;
};

static void frozen_main(void *arg)
{
	struct frozen *f = arg;
	lm_client *c;
	int rc = lm_connect(f->region, &c);
	if (rc != 0)
		fail_msg("client 1 connect: %s", lm_strerror(rc));
	lm_grant g;
	rc = lm_acquire(c, "frozen/x", 500, 0, &g);
	atomic_store(&f->acq_ns, harness_now_ns());
	atomic_store(&f->acquire_rc, rc);
	atomic_store(&f->token, g.token);
	atomic_store(&f->valid_until_ns, g.valid_until_ns);
	send_byte(f->ready_w);
	if (rc != 0)
		fail_msg("client 1 acquire: %s", lm_strerror(rc));
	/* Here the test stops us, past our lease. */
	harness_read_byte(f->go_r, 20000, "the test's go after SIGCONT");
	atomic_store(&f->renew_rc, lm_renew(c, &g, 500));
	fs_store *s;
	rc = fs_open(f->store, FS_CREATE, &s);
	atomic_store(&f->open_rc, rc);
	if (rc == 0) {
		uint64_t highest = 0;
		atomic_store(&f->write_rc,
			     fs_write(s, g.token, "zombie", 6, &highest));
		atomic_store(&f->write_highest, highest);
		fs_close(s);
	}
	atomic_store(&f->release_rc, lm_release(c, &g));
	lm_disconnect(c);
	atomic_store(&f->done, 1);
}

struct store_log {
	int n;
	struct fs_record rec[8];
	char data[8][32];
};

static int collect(const struct fs_record *rec, void *arg)
{
	struct store_log *l = arg;
	if (l->n < 8) {
		l->rec[l->n] = *rec;
		size_t len = rec->len < 31 ? rec->len : 31;
		memcpy(l->data[l->n], rec->data, len);
		l->data[l->n][len] = '\0';
		l->rec[l->n].data = NULL;
	}
	l->n++;
	return 0;
}

/*
 * Client 1 takes the lock with a 500 ms lease and is SIGSTOPped (a GC
 * pause). Client 2 gets the lock once the lease ran out, writes to the
 * fenced store and keeps holding. Client 1 resumes: its renew, its
 * write with the old token and its release are all refused, and none of
 * that touches client 2's grant.
 */
static void frozen_holder(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "frozen", "--max-ttl", "10000", NULL);
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	struct frozen *f = harness_shared(sizeof(*f));
	snprintf(f->region, sizeof(f->region), "%s", d.region);
	snprintf(f->store, sizeof(f->store), "%s/store", dir);
	int ready[2], go[2];
	make_pipe(ready);
	make_pipe(go);
	f->ready_w = ready[1];
	f->go_r = go[0];
	pid_t c1 = harness_fork(frozen_main, f);
	close(ready[1]);
	close(go[0]);
	harness_read_byte(ready[0], 5000, "client 1's acquire");
	if (atomic_load(&f->acquire_rc) != 0)
		fail_msg("client 1 acquire: %s",
			 lm_strerror(atomic_load(&f->acquire_rc)));
	kill(c1, SIGSTOP);
	wait_stopped(c1, "client 1");
	uint64_t t1 = atomic_load(&f->token);
	int64_t v1 = atomic_load(&f->valid_until_ns);
	int64_t a1 = atomic_load(&f->acq_ns);

	/* Client 2, here: waits for the frozen holder's lease. */
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g;
	int rc = lm_acquire(c, "frozen/x", 5000, 5000, &g);
	int64_t got = harness_now_ns();
	if (rc != 0)
		fail_msg("client 2 acquire: %s", lm_strerror(rc));
	if (got < v1)
		fail_msg("client 2 got the lock %.3f ms before the frozen "
			 "holder's lease ended", ms_of(v1 - got));
	if (got - a1 > INT64_C(3500) * 1000000)
		fail_msg("client 2 got the lock %.1f ms after client 1's "
			 "grant: more than TTL 500 ms + 3 s", ms_of(got - a1));
	if (g.token <= t1)
		fail_msg("client 2's token %" PRIu64 " is not above client "
			 "1's %" PRIu64, g.token, t1);
	if (!(g.flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after the zombie's expired lease lacks "
			 "LM_GRANT_RECOVERED");
	fs_store *s;
	assert_int_equal(fs_open(f->store, FS_CREATE, &s), 0);
	uint64_t highest = 99;
	assert_int_equal(fs_write(s, g.token, "client 2", 8, &highest), 0);
	assert_int_equal(highest, 0);

	/* Wake the zombie; client 2 keeps holding meanwhile. */
	kill(c1, SIGCONT);
	send_byte(go[1]);
	harness_expect_exit(c1, 10000, 0, "client 1 (the zombie)");
	assert_int_equal(atomic_load(&f->done), 1);
	if (atomic_load(&f->renew_rc) != LM_ELEASELOST)
		fail_msg("the zombie's lm_renew returned %d (%s), not "
			 "LM_ELEASELOST", atomic_load(&f->renew_rc),
			 lm_strerror(atomic_load(&f->renew_rc)));
	assert_int_equal(atomic_load(&f->open_rc), 0);
	if (atomic_load(&f->write_rc) != FS_ESTALE)
		fail_msg("the zombie's write with token %" PRIu64 " returned "
			 "%d (%s), not FS_ESTALE", t1,
			 atomic_load(&f->write_rc),
			 fs_strerror(atomic_load(&f->write_rc)));
	assert_int_equal(atomic_load(&f->write_highest), g.token);

	/* Nothing of client 2's was touched. */
	assert_true(harness_now_ns() < g.valid_until_ns);
	assert_int_equal(lm_renew(c, &g, 5000), 0);
	assert_int_equal(lm_release(c, &g), 0);

	/* The audit: client 2's write, then the zombie's rejection. */
	struct store_log log;
	memset(&log, 0, sizeof(log));
	assert_int_equal(fs_read(s, collect, &log), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.rec[0].type, FS_REC_ACCEPT);
	assert_int_equal(log.rec[0].token, g.token);
	assert_int_equal(log.rec[0].pid, (uint32_t)getpid());
	assert_string_equal(log.data[0], "client 2");
	assert_int_equal(log.rec[1].type, FS_REC_REJECT);
	assert_int_equal(log.rec[1].token, t1);
	assert_int_equal(log.rec[1].highest, g.token);
	assert_int_equal(log.rec[1].pid, (uint32_t)c1);
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.highest, g.token);
	fs_close(s);

	fprintf(stderr, "frozen_holder: client 1 token %" PRIu64 " (frozen), "
			"client 2 token %" PRIu64 " granted %.1f ms after "
			"client 1's grant\n", t1, g.token, ms_of(got - a1));
	close(ready[0]);
	close(go[1]);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
	/* Last, so that everything above is checked whatever it says: the
	 * zombie releases a grant it never released, after its renew
	 * reported the lease lost. lockmgr.h reserves LM_ENOTHELD for a
	 * grant released twice; a holder that learns of the loss from its
	 * renew and then releases must hear LM_ELEASELOST. */
	int rel = atomic_load(&f->release_rc);
	harness_shared_free(f, sizeof(*f));
	if (rel != LM_ELEASELOST)
		fail_msg("the zombie's lm_release (after its lm_renew said "
			 "LM_ELEASELOST, never released before) returned %d "
			 "(%s), not LM_ELEASELOST", rel, lm_strerror(rel));
}

/* ---- lockctl run, stopped past its lease -------------------------- */

/*
 * Spawn argv in a process group of its own, so that the whole group can
 * be stopped without stopping the test. It dies with the case process
 * (PR_SET_PDEATHSIG), since the case runner only cleans up its own
 * group.
 */
static pid_t spawn_own_group(char *const argv[], const char *err_path)
{
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t p = fork();
	if (p < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			       0600);
		if (in < 0 || out < 0 || err < 0)
			_exit(126);
		dup2(in, STDIN_FILENO);
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		alarm(0);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(p, p);
	return p;
}

/* The pids of group pgid other than pgid itself (at most n). */
static int group_members(pid_t pgid, pid_t *out, int n)
{
	int k = 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		fail_msg("opendir /proc: %s", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], st[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (harness_read_file(path, st, sizeof(st)) <= 0)
			continue;
		char *rp = strrchr(st, ')');
		char state;
		int ppid, pgrp;
		if (rp == NULL ||
		    sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 ||
		    pgrp != (int)pgid)
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid != pgid && k < n)
			out[k++] = pid;
	}
	closedir(d);
	return k;
}

static bool file_says(const char *path, const char *what)
{
	char buf[256];
	return harness_read_file(path, buf, sizeof(buf)) > 0 &&
	       strstr(buf, what) != NULL;
}

/*
 * `lockctl run --ttl 500` is stopped (its whole process group: lockctl
 * and CMD) past its lease; another client takes the lock; on SIGCONT
 * lockctl must see the lost lease, say so, stop CMD and exit 70.
 */
static void lockctl_run_frozen(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "ctlrun", "--max-ttl", "20000", NULL);
	char dir[256], flag[512], errf[512], script[600], bin[512];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(flag, sizeof(flag), "%s/started", dir);
	snprintf(errf, sizeof(errf), "%s/lockctl.err", dir);
	snprintf(script, sizeof(script), "echo started >'%s'; exec sleep 30",
		 flag);
	harness_bin_path(bin, sizeof(bin), "lockctl");
	char *argv[] = {bin, "-r", d.region, "run", "--ttl", "500",
			"ctlrun/x", "--", "sh", "-c", script, NULL};
	pid_t lc = spawn_own_group(argv, errf);

	int64_t deadline = harness_now_ms() + 10000;
	while (!file_says(flag, "started")) {
		int st;
		if (waitpid(lc, &st, WNOHANG) == lc) {
			char b[96], msg[1024] = "";
			harness_read_file(errf, msg, sizeof(msg));
			fail_msg("lockctl run ended (%s) before CMD started: %s",
				 harness_status_str(st, b, sizeof(b)), msg);
		}
		if (harness_now_ms() > deadline)
			fail_msg("CMD of lockctl run did not start within 10 s");
		harness_nap_us(500);
	}
	pid_t members[4];
	int nm = group_members(lc, members, 4);
	if (nm != 1)
		fail_msg("lockctl's group has %d processes besides lockctl, "
			 "expected CMD alone", nm);
	pid_t cmd = members[0];

	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "ctlrun/x", 2000, 0, &g), LM_EBUSY);

	assert_int_equal(killpg(lc, SIGSTOP), 0);
	wait_stopped(lc, "lockctl");
	HARNESS_WAIT_FOR(harness_proc_state(cmd) == 'T', 5000,
			 "CMD (pid %d) did not stop with its group", (int)cmd);

	int64_t t0 = harness_now_ns();
	int rc = lm_acquire(c, "ctlrun/x", 2000, 5000, &g);
	int64_t took = harness_now_ns() - t0;
	if (rc != 0)
		fail_msg("the lock of a stopped lockctl (TTL 500 ms) was not "
			 "free within 5 s: %s", lm_strerror(rc));
	if (took < INT64_C(100) * 1000000)
		fail_msg("granted %.1f ms after lockctl stopped: its 500 ms "
			 "lease cannot have run out", ms_of(took));
	if (!(g.flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after lockctl's expired lease lacks "
			 "LM_GRANT_RECOVERED");

	assert_int_equal(killpg(lc, SIGCONT), 0);
	harness_expect_exit(lc, 15000, 70, "lockctl run after SIGCONT");
	HARNESS_WAIT_FOR(kill(cmd, 0) != 0 && errno == ESRCH, 2000,
			 "CMD (pid %d, state %c) outlived lockctl's lost "
			 "lease", (int)cmd, harness_proc_state(cmd));
	char msg[2048];
	assert_true(harness_read_file(errf, msg, sizeof(msg)) > 0);
	if (strstr(msg, "lost") == NULL)
		fail_msg("lockctl's message does not say the lease was lost: "
			 "%s", msg);
	fprintf(stderr, "lockctl_run_frozen: lock free %.1f ms after the "
			"stop; lockctl said: %s", ms_of(took), msg);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);

	/* Plain pass-through of CMD's exit status. */
	char *argv7[] = {bin, "-r", d.region, "run", "ctlrun/y", "--", "sh",
			 "-c", "exit 7", NULL};
	assert_int_equal(harness_run(argv7, NULL, "/dev/null", 10000), 7);
	harness_lockmgrd_stop(&d);
}

/* ---- resctl ------------------------------------------------------- */

static int resctl(const char *path, const char *out, const char *err,
		  const char *a1, const char *a2, const char *a3,
		  const char *a4)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "resctl");
	char *argv[] = {bin, "-s", (char *)path, (char *)a1, (char *)a2,
			(char *)a3, (char *)a4, NULL};
	return harness_run(argv, out, err, 10000);
}

/* The fenced store's CLI: equal tokens accepted, a lower one rejected
 * with exit 3 and both tokens named, and `show --json` parses. */
static void resctl_cli_fencing(void)
{
	char dir[256], path[512], err[512], out[512], msg[2048];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(err, sizeof(err), "%s/err.txt", dir);
	snprintf(out, sizeof(out), "%s/show.json", dir);

	assert_int_equal(resctl(path, NULL, err, "write", "--token", "5", "a"),
			 0);
	assert_int_equal(resctl(path, NULL, err, "write", "--token", "5", "b"),
			 0);
	int rc = resctl(path, NULL, err, "write", "--token", "4", "c");
	harness_read_file(err, msg, sizeof(msg));
	if (rc != 3)
		fail_msg("a write with token 4 after 5 exited %d, not 3: %s",
			 rc, msg);
	if (strstr(msg, "token 4") == NULL || strstr(msg, "token 5") == NULL)
		fail_msg("the rejection does not name tokens 4 and 5: %s", msg);

	assert_int_equal(resctl(path, out, err, "show", "--json", NULL, NULL),
			 0);
	char *py[] = {
		"/usr/bin/env", "python3", "-c",
		"import json, sys\n"
		"d = json.load(open(sys.argv[1]))\n"
		"acc = [(r['token'], r['data']) for r in d['accepted']]\n"
		"rej = [(r['token'], r['highest']) for r in d['rejected']]\n"
		"ok = (d['accepted_count'] == 2 and d['rejected_count'] == 1\n"
		"      and [t for t, _ in acc] == [5, 5] and rej == [(4, 5)]\n"
		"      and d['highest_token'] == 5)\n"
		"sys.exit(0 if ok else 'unexpected: %r' % (d,))\n",
		out, NULL};
	rc = harness_run(py, NULL, err, 20000);
	if (rc != 0) {
		char js[4096] = "";
		harness_read_file(out, js, sizeof(js));
		harness_read_file(err, msg, sizeof(msg));
		fail_msg("show --json did not parse as 2 accepted and 1 "
			 "rejected (python3 exit %d: %s):\n%s", rc, msg, js);
	}

	/* The library agrees. */
	fs_store *s;
	assert_int_equal(fs_open(path, FS_RDONLY, &s), 0);
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.highest, 5);
	struct store_log log;
	memset(&log, 0, sizeof(log));
	assert_int_equal(fs_read(s, collect, &log), 0);
	assert_int_equal(log.n, 3);
	assert_string_equal(log.data[0], "a");
	assert_string_equal(log.data[1], "b");
	assert_int_equal(log.rec[2].type, FS_REC_REJECT);
	assert_int_equal(log.rec[2].token, 4);
	assert_int_equal(log.rec[2].highest, 5);
	fs_close(s);
}


/* ---- a frozen waiter does not block the queue ----------------------- */

struct fw_shared {
	char region[LM_REGION_NAME_MAX + 2];
	int rc;
	int64_t asked_ns;   /* when the next waiter began its acquire */
	int64_t granted_ns;
};

static void frozen_waiter_main(void *arg)
{
	struct fw_shared *f = arg;
	lm_client *c;
	assert_int_equal(lm_connect(f->region, &c), 0);
	lm_grant g;
	/* Queued first; frozen by the test while it waits. */
	if (lm_acquire(c, "fw/x", 2000, 60000, &g) == 0)
		lm_release(c, &g);
	lm_disconnect(c);
}

static void next_waiter_main(void *arg)
{
	struct fw_shared *f = arg;
	lm_client *c;
	assert_int_equal(lm_connect(f->region, &c), 0);
	lm_grant g;
	f->asked_ns = harness_now_ns();
	f->rc = lm_acquire(c, "fw/x", 2000, 5000, &g);
	f->granted_ns = harness_now_ns();
	if (f->rc == 0)
		lm_release(c, &g);
	lm_disconnect(c);
}

/*
 * The head of the queue is frozen with SIGSTOP (Ctrl-Z, a debugger) while
 * it waits. When the lock is released, the waiter behind it must get it
 * within a few server ticks, not be kept off a free lock until its own
 * wait times out.
 */
static void frozen_waiter(void)
{
	struct harness_lockmgrd d;
	/* The holder's lease outlasts two forks and queueing on a loaded
	 * host: the lock must be freed by the release, not the lease. */
	harness_lockmgrd_start(&d, "fwait", "--max-ttl", "30000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct fw_shared *f = harness_shared(sizeof(*f));
	snprintf(f->region, sizeof(f->region), "%s", d.region);
	lm_client *a;
	assert_int_equal(lm_connect(d.region, &a), 0);
	lm_grant ga;
	assert_int_equal(lm_acquire(a, "fw/x", 30000, 0, &ga), 0);

	pid_t head = harness_fork(frozen_waiter_main, f);
	HARNESS_WAIT_FOR(queued_waiters(&r, "fw/x") == 1, 5000,
			 "the first waiter never queued");
	kill(head, SIGSTOP);
	wait_stopped(head, "the first waiter");
	pid_t next = harness_fork(next_waiter_main, f);
	HARNESS_WAIT_FOR(queued_waiters(&r, "fw/x") == 2, 5000,
			 "the second waiter never queued");

	int64_t released = harness_now_ns();
	assert_int_equal(lm_release(a, &ga), 0);
	harness_expect_exit(next, 10000, 0, "second waiter");
	if (f->rc != 0)
		fail_msg("the waiter behind a frozen one got %d (%s) instead "
			 "of the free lock", f->rc, lm_strerror(f->rc));
	double took = ms_of(f->granted_ns - released);
	fprintf(stderr, "frozen_waiter: the next waiter had the lock %.1f ms "
			"after the release\n", took);
	/* Servers look for stalled queues every 20 ms tick; a waiter's own
	 * periodic re-check (1 s after it began waiting) must not be what
	 * saves it. A slow grant before that re-check was due is a loaded
	 * host, not a stalled queue. */
	double waited = ms_of(f->granted_ns - f->asked_ns);
	if (took > 500 && waited >= 1000)
		fail_msg("the lock stayed free for %.0f ms behind a frozen "
			 "waiter (%.0f ms after the next one began to wait: "
			 "its own re-check may have got it the lock)", took,
			 waited);

	kill(head, SIGKILL);
	harness_reap(head, 5000, "frozen waiter");
	lm_disconnect(a);
	lm_region_detach(&r);
	harness_shared_free(f, sizeof(*f));
	harness_lockmgrd_stop(&d);
}

/* ---- a dead client holding many locks --------------------------------- */

struct many_arg {
	char region[LM_REGION_NAME_MAX + 2];
	int nlocks;
	int ready_fd;
};

static void many_holder(void *arg)
{
	struct many_arg *m = arg;
	lm_client *c;
	assert_int_equal(lm_connect(m->region, &c), 0);
	for (int i = 0; i < m->nlocks; i++) {
		char name[32];
		snprintf(name, sizeof(name), "many/%d", i);
		lm_grant g;
		assert_int_equal(lm_acquire(c, name, 15000, 0, &g), 0);
	}
	send_byte(m->ready_fd);
	for (;;)
		pause(); /* SIGKILLed by the test */
}

/*
 * A client that dies holding several locks has every one of them freed by
 * the supervisor at once, both when it held few enough for its session to
 * list them (the supervisor visits just those) and when it held more
 * (the supervisor scans every lock).
 */
static void death_frees_every_lock(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "many", "--max-ttl", "20000", NULL);
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	const int counts[] = {3, (int)LM_HELD_MAX + 4};
	for (size_t k = 0; k < 2; k++) {
		struct many_arg m;
		snprintf(m.region, sizeof(m.region), "%s", d.region);
		m.nlocks = counts[k];
		int p[2];
		make_pipe(p);
		m.ready_fd = p[1];
		pid_t holder = harness_fork(many_holder, &m);
		close(p[1]);
		harness_read_byte(p[0], 10000, "the holder taking its locks");
		close(p[0]);
		struct lm_region r;
		harness_attach(d.region, &r);
		uint32_t slot = UINT32_MAX;
		for (uint32_t si = 0; si < r.max_sessions; si++)
			if (LM_SESS_PID(atomic_load(&r.sessions[si].life)) == holder)
				slot = si;
		assert_true(slot != UINT32_MAX);
		kill(holder, SIGKILL);
		harness_reap(holder, 5000, "killed holder");
		/* Once its session slot is free, a new client takes it over:
		 * any grant the supervisor missed would then look like the
		 * new session's and stay blocked for its 15 s lease. */
		HARNESS_WAIT_FOR(LM_SESS_STATE(atomic_load(
					 &r.sessions[slot].life)) ==
					 LM_SESS_FREE,
				 5000, "the dead holder's session was not freed");
		lm_region_detach(&r);
		lm_client *heir;
		assert_int_equal(lm_connect(d.region, &heir), 0);
		assert_int_equal(heir->ctx.session, slot);
		assert_int_equal(lm_disconnect(heir), 0);
		assert_int_equal(lm_connect(d.region, &heir), 0);
		int64_t t0 = harness_now_ms();
		for (int i = 0; i < m.nlocks; i++) {
			char name[32];
			snprintf(name, sizeof(name), "many/%d", i);
			lm_grant g;
			/* Far less than the 15 s lease: only death detection
			 * can free it this soon. */
			int rc = lm_acquire(c, name, 1000, 3000, &g);
			if (rc != 0)
				fail_msg("%d locks: %s was not freed: %s",
					 m.nlocks, name, lm_strerror(rc));
			assert_true(g.flags & LM_GRANT_RECOVERED);
			assert_int_equal(lm_release(c, &g), 0);
		}
		assert_int_equal(lm_disconnect(heir), 0);
		fprintf(stderr, "death_frees_every_lock: %d locks free again "
				"%lld ms after the holder was reaped\n",
			m.nlocks, (long long)(harness_now_ms() - t0));
	}
	assert_int_equal(lm_disconnect(c), 0);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(death_detection, 60)
HARNESS_CASE(no_release_on_exit, 30)
HARNESS_CASE(clean_release_no_flag, 30)
HARNESS_CASE(frozen_holder, 30)
HARNESS_CASE(lockctl_run_frozen, 40)
HARNESS_CASE(resctl_cli_fencing, 30)
HARNESS_CASE(frozen_waiter, 30)
HARNESS_CASE(death_frees_every_lock, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(death_detection),
		harness_case(no_release_on_exit),
		harness_case(clean_release_no_flag),
		harness_case(frozen_holder),
		harness_case(lockctl_run_frozen),
		harness_case(resctl_cli_fencing),
		harness_case(frozen_waiter),
		harness_case(death_frees_every_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
