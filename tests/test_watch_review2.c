/*
 * test_watch_review2.c - a second outside review of watches and
 * election (shm/watch.c, the changers that call it, client/watch.c,
 * client/election.c). Each case drives one interleaving with a real
 * lockmgrd and checks the property it broke before its fix:
 *
 *  1. overflow_releaser_killed_is_announced: a session that once held
 *     more locks than its held[] records (held_overflow) is cleaned up
 *     by a full scan, which announced only the locks it freed itself: a
 *     releaser SIGKILLed between its give-up and its version bump
 *     ("release.given_up") left its watchers asleep on a free lock,
 *     whether the lock was recorded in held[] or not.
 *  2. failed_grab_seen_as_holder_is_announced: a grab that has stored
 *     its owner words and leases on a majority is the lock's holder to
 *     lm_lock_look (and to lm_leader_get) before it verifies; a watcher
 *     that looked then, and a grab that then failed its verify (its
 *     deadline passed while it stood still) and gave the tables back,
 *     left the watcher believing in a holder that was gone, with no
 *     change announced.
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/region.h"

static struct harness_lockmgrd d;

static lm_client *connect_or_fail(const char *region)
{
	lm_client *c = NULL;
	int rc = lm_connect(region, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", region, rc,
			 lm_strerror(rc));
	return c;
}

static lm_watch *watch_or_fail(lm_client *c, const char *name,
			       lm_watch_event *now)
{
	lm_watch *w = NULL;
	int rc = lm_watch_open(c, name, &w, now);
	if (rc != 0)
		fail_msg("lm_watch_open(%s): %s", name, lm_strerror(rc));
	return w;
}

static void next_or_fail(lm_watch *w, lm_watch_event *ev, const char *what)
{
	int rc = lm_watch_next(w, 5000, ev);
	if (rc != 0)
		fail_msg("no event within 5 s for %s: %s", what,
			 lm_strerror(rc));
}

/* ---- 1. a killed releaser of an overflowed session ------------------- */

struct hoarder {
	char region[LM_REGION_NAME_MAX + 2];
	int watched_first;        /* take /ovw first (recorded) or last */
	_Atomic int holding;      /* holds all 17 */
	_Atomic int release;      /* the test says: release /ovw */
};

#define HOARD 16 /* locks besides /ovw: 17 in all, one more than held[] */

static void hoarder_main(void *arg)
{
	struct hoarder *h = arg;
	lm_client *c = connect_or_fail(h->region);
	lm_grant gw, g[HOARD];
	char name[32];
	if (h->watched_first)
		assert_int_equal(lm_acquire(c, "/ovw", 2000, 5000, &gw), 0);
	for (int i = 0; i < HOARD; i++) {
		snprintf(name, sizeof(name), "/ov%d", i);
		assert_int_equal(lm_acquire(c, name, 2000, 5000, &g[i]), 0);
	}
	if (!h->watched_first)
		assert_int_equal(lm_acquire(c, "/ovw", 2000, 5000, &gw), 0);
	atomic_store(&h->holding, 1);
	HARNESS_WAIT_FOR(atomic_load(&h->release), 20000,
			 "the test to say release");
	lm_release(c, &gw); /* stops at release.given_up, and is killed */
	fail_msg("the hoarder was not stopped in its release");
}

static void overflow_releaser_killed(int watched_first)
{
	harness_lockmgrd_start(&d, "wrv2-ovf", NULL);
	lm_client *wc = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/ovw", NULL);
	struct hoarder *h = harness_shared(sizeof(*h));
	snprintf(h->region, sizeof(h->region), "%s", d.region);
	h->watched_first = watched_first;
	char log[256];
	harness_pause_arm("release.given_up@1", log, sizeof(log));
	pid_t p = harness_fork(hoarder_main, h);
	harness_pause_disarm();
	HARNESS_WAIT_FOR(atomic_load(&h->holding), 10000,
			 "the hoarder to hold its 17 locks");
	lm_watch_event ev;
	next_or_fail(w, &ev, "the grant of /ovw");
	assert_int_equal(ev.holders, 1);

	atomic_store(&h->release, 1);
	assert_int_equal(harness_wait_paused(log, "release.given_up", 5000),
			 p);
	assert_int_equal(kill(p, SIGKILL), 0);
	int status;
	assert_true(harness_wait_pid(p, 5000, &status));

	int rc = lm_watch_next(w, 5000, &ev);
	if (rc != 0)
		fail_msg("a session past its held[] records (%s in them) "
			 "died between a release's give-up and its bump; no "
			 "change was announced within 5 s: %s",
			 watched_first ? "/ovw" : "/ovw not",
			 lm_strerror(rc));
	assert_int_equal(ev.holders, 0);

	lm_watch_close(w);
	lm_disconnect(wc);
	harness_shared_free(h, sizeof(*h));
	harness_lockmgrd_stop(&d);
}

static void overflow_releaser_killed_is_announced(void)
{
	overflow_releaser_killed(0);
}

static void overflow_recorded_releaser_killed_is_announced(void)
{
	overflow_releaser_killed(1);
}

/* ---- 2. a grab seen as the holder, then given up --------------------- */

/* How many times the pause log names point. */
static int hits_logged(const char *log, const char *point)
{
	char buf[4096];
	if (harness_read_file(log, buf, sizeof(buf)) < 0)
		return 0;
	int n = 0;
	size_t len = strlen(point);
	for (const char *s = buf; (s = strstr(s, point)) != NULL; s += len)
		n++;
	return n;
}

struct grabber {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int rc;
	_Atomic int done;
};

static void grabber_main(void *arg)
{
	struct grabber *g = arg;
	lm_client *c = connect_or_fail(g->region);
	lm_grant gr;
	/* A try (no wait): three grabs at most, each stopped before its
	 * verify until its deadline has passed. */
	int rc = lm_acquire(c, "/seen", 300, 0, &gr);
	atomic_store(&g->rc, rc);
	atomic_store(&g->done, 1);
	if (rc == 0)
		lm_release(c, &gr);
	lm_disconnect(c);
}

static void failed_grab_seen_as_holder_is_announced(void)
{
	harness_lockmgrd_start(&d, "wrv2-seen", NULL);
	/* Server clocks at a tenth of real speed: a 300 ms lease runs 3 s
	 * of real time, so no server ends it while the grab stands still
	 * past its own (local) deadline. */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		char n[4];
		snprintf(n, sizeof(n), "%u", i);
		char *argv_rate = "--rate";
		char dir[128];
		harness_tmpdir(dir, sizeof(dir));
		int rc = harness_ctl(dir, NULL, 0, NULL, 0, "-r", d.region,
				     "server", "skew", n, argv_rate, "0.1",
				     (char *)NULL);
		harness_remove_flat_dir(dir);
		assert_int_equal(rc, 0);
	}
	lm_client *wc = connect_or_fail(d.region);
	struct grabber *g = harness_shared(sizeof(*g));
	snprintf(g->region, sizeof(g->region), "%s", d.region);
	char log[256];
	harness_pause_arm("grant.before_verify@1,grant.before_verify@2,"
			  "grant.before_verify@3",
			  log, sizeof(log));
	pid_t p = harness_fork(grabber_main, g);
	harness_pause_disarm();

	lm_watch *w = NULL;
	for (int hit = 1; hit <= 3; hit++) {
		HARNESS_WAIT_FOR((hits_logged(log, "grant.before_verify") ==
					  hit &&
				  harness_proc_state(p) == 'T') ||
					 atomic_load(&g->done),
				 5000, "the grab's stop %d before its verify",
				 hit);
		if (atomic_load(&g->done))
			break;
		int64_t stopped_ms = harness_now_ms();
		if (w == NULL) {
			/* The watcher looks while the grab holds a majority
			 * under running leases, unverified. */
			lm_watch_event now;
			w = watch_or_fail(wc, "/seen", &now);
			if (now.holders != 1 || now.holder_pid != p)
				fail_msg("the stopped grab is not the holder "
					 "the watch sees (holders %u pid %d); "
					 "the case needs it to be",
					 now.holders, (int)now.holder_pid);
		}
		/* Past the grab's deadline (its start + 300 ms - drift),
		 * by the clock itself. */
		HARNESS_WAIT_FOR(harness_now_ms() >= stopped_ms + 350, 2000,
				 "350 ms to pass");
		harness_resume(p);
	}
	HARNESS_WAIT_FOR(atomic_load(&g->done), 5000,
			 "the try to end after three failed grabs");
	int rc = atomic_load(&g->rc);
	if (rc == 0)
		fail_msg("a grab stopped past its deadline was granted: the "
			 "case needs each verify to fail");
	harness_expect_exit(p, 5000, 0, "the grabber");

	lm_watch_event ev;
	rc = lm_watch_next(w, 3000, &ev);
	if (rc != 0)
		fail_msg("the watch saw pid %d hold /seen; its grab failed "
			 "and gave the tables back (the try returned %s), "
			 "and no change was announced within 3 s: %s",
			 (int)p, lm_strerror(atomic_load(&g->rc)),
			 lm_strerror(rc));
	assert_int_equal(ev.holders, 0);

	lm_watch_close(w);
	lm_disconnect(wc);
	harness_shared_free(g, sizeof(*g));
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(overflow_releaser_killed_is_announced, 30)
HARNESS_CASE(overflow_recorded_releaser_killed_is_announced, 30)
HARNESS_CASE(failed_grab_seen_as_holder_is_announced, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(overflow_releaser_killed_is_announced),
		harness_case(overflow_recorded_releaser_killed_is_announced),
		harness_case(failed_grab_seen_as_holder_is_announced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
