/*
 * test_watch_review.c - an outside review of watches and election (the
 * pins, versions and notes of shm/watch.c, client/election.c). Each case
 * drives one interleaving with a real lockmgrd and checks the property
 * it broke before its fix:
 *
 *  1. renew_after_lease_end_is_announced: a renew that finds its lease
 *     over gives the lock up (abandoned) on every table; it freed the
 *     lock without a version bump, so a watcher never heard of it.
 *  2. killed_releaser_is_announced: a releaser SIGKILLed between its
 *     give-up and its version bump ("release.given_up") left the lock
 *     free and its watchers asleep; the supervisor that cleans up after
 *     it now announces each recorded lock it finds nothing of.
 *  3. crossing_changers_never_tear_the_note: a releaser stopped after its
 *     bump ("watch.bumped") and an acquirer stopped between its token and
 *     its event ("watch.noting"): the releaser's token landed over the
 *     acquirer's, and the note of the acquirer's version went out with
 *     the releaser's token.
 *  4. leader_get_never_mixes_terms: an observer stopped after it found
 *     the leader ("leader.looked") while the leader resigned and won
 *     again with a new value: it paired the first term's token with the
 *     second term's value.
 *  5. disconnect_closes_watches: lm_disconnect with a watch left open
 *     unmapped the region under the watch's thread (lm_watch_fd), which
 *     went on waiting on, and then reading, the unmapped version word.
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
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

static lm_watch *watch_or_fail(lm_client *c, const char *name)
{
	lm_watch *w = NULL;
	int rc = lm_watch_open(c, name, &w, NULL);
	if (rc != 0)
		fail_msg("lm_watch_open(%s): %s", name, lm_strerror(rc));
	return w;
}

/* The next event, within 5 s, or fail saying what we waited for. */
static void next_or_fail(lm_watch *w, lm_watch_event *ev, const char *what)
{
	int rc = lm_watch_next(w, 5000, ev);
	if (rc != 0)
		fail_msg("no event within 5 s for %s: %s", what,
			 lm_strerror(rc));
}

/* ---- 1. a renew past the lease -------------------------------------- */

static void signal_service(const struct lm_region *r, int sig)
{
	/* The supervisor first on stop (it would restart stopped servers),
	 * last on continue. */
	if (sig == SIGSTOP)
		assert_int_equal(kill(d.pid, sig), 0);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		pid_t p = atomic_load(&r->servers[i]->pid);
		assert_true(p > 0);
		assert_int_equal(kill(p, sig), 0);
	}
	if (sig == SIGCONT)
		assert_int_equal(kill(d.pid, sig), 0);
}

/*
 * H holds /late with a 300 ms lease. The supervisor and the servers are
 * stopped, so no server expires it; once the lease is over, H renews:
 * LM_ELEASELOST, and the renew gives the lock up on every table. W, who
 * watches /late, must hear of it as EXPIRED, with H's token.
 */
static void renew_after_lease_end_is_announced(void)
{
	harness_lockmgrd_start(&d, "wrv-late", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *h = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/late");
	lm_grant g;
	/* 1 s: the grant is read as its own event, and the service
	 * stopped, before the lease ends (on a loaded host too). */
	assert_int_equal(lm_acquire(h, "/late", 1000, 0, &g), 0);
	int64_t granted_ms = harness_now_ms();
	lm_watch_event ev;
	next_or_fail(w, &ev, "the grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);

	signal_service(&r, SIGSTOP);
	/* The lease is what this case is about: wait it out (plus the
	 * drift margin), bounded by the clock itself. */
	HARNESS_WAIT_FOR(harness_now_ms() >= granted_ms + 1300, 3000,
			 "1300 ms to pass");
	int rc = lm_renew(h, &g, 300);
	if (rc != LM_ELEASELOST)
		fail_msg("renew past the lease: %s, expected LM_ELEASELOST",
			 lm_strerror(rc));
	rc = lm_watch_next(w, 0, &ev);
	signal_service(&r, SIGCONT);
	if (rc != 0)
		fail_msg("the renew gave the lock up, but the watch saw no "
			 "change: %s", lm_strerror(rc));
	assert_int_equal(ev.what, LM_WATCH_EXPIRED);
	assert_int_equal(ev.token, g.token);
	assert_int_equal(ev.holders, 0);

	lm_release(h, &g);
	lm_watch_close(w);
	lm_disconnect(h);
	lm_disconnect(wc);
	harness_wait_servers_up(d.region, d.pid, 10000);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- a process that takes a lock and, told to, releases it ---------- */

struct actor {
	char region[LM_REGION_NAME_MAX + 2];
	char name[64];
	_Atomic int holding;      /* granted */
	_Atomic int release;      /* the test says: release now */
	_Atomic int done;         /* released */
	_Atomic uint64_t token;
	_Atomic int32_t pid;
};

static void actor_main(void *arg)
{
	struct actor *a = arg;
	lm_client *c = connect_or_fail(a->region);
	lm_grant g;
	assert_int_equal(lm_acquire(c, a->name, 2000, 5000, &g), 0);
	atomic_store(&a->token, g.token);
	atomic_store(&a->pid, getpid());
	atomic_store(&a->holding, 1);
	HARNESS_WAIT_FOR(atomic_load(&a->release), 20000,
			 "the test to say release");
	assert_int_equal(lm_release(c, &g), 0);
	atomic_store(&a->done, 1);
	lm_disconnect(c);
}

static pid_t start_actor(struct actor *a, const char *name,
			 const char *pause, char *log, size_t logn)
{
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (pause != NULL)
		harness_pause_arm(pause, log, logn);
	pid_t p = harness_fork(actor_main, a);
	if (pause != NULL)
		harness_pause_disarm();
	return p;
}

/* ---- 2. a releaser killed before its bump --------------------------- */

static void killed_releaser_is_announced(void)
{
	harness_lockmgrd_start(&d, "wrv-kill", NULL);
	lm_client *wc = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/kill");
	struct actor *a = harness_shared(sizeof(*a));
	char log[256];
	pid_t p = start_actor(a, "/kill", "release.given_up@1", log,
			      sizeof(log));
	lm_watch_event ev;
	next_or_fail(w, &ev, "the grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);

	atomic_store(&a->release, 1);
	assert_int_equal(harness_wait_paused(log, "release.given_up", 5000),
			 p);
	assert_int_equal(kill(p, SIGKILL), 0);
	int status;
	assert_true(harness_wait_pid(p, 5000, &status));

	/* The lock is free on every table; the supervisor, cleaning up
	 * after the dead session, must say so. */
	int rc = lm_watch_next(w, 5000, &ev);
	if (rc != 0)
		fail_msg("the releaser died after freeing the lock and "
			 "before its bump; no change was announced within "
			 "5 s: %s", lm_strerror(rc));
	assert_int_equal(ev.holders, 0);

	lm_watch_close(w);
	lm_disconnect(wc);
	harness_shared_free(a, sizeof(*a));
	harness_lockmgrd_stop(&d);
}

/* ---- 3. two changers crossing --------------------------------------- */

static void crossing_changers_never_tear_the_note(void)
{
	harness_lockmgrd_start(&d, "wrv-tear", NULL);
	lm_client *wc = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/tear");
	struct actor *a = harness_shared(sizeof(*a));
	struct actor *b = harness_shared(sizeof(*b));
	char loga[256], logb[256];
	/* A's first bump is its grant, its second its release. */
	pid_t pa = start_actor(a, "/tear", "watch.bumped@2", loga,
			       sizeof(loga));
	HARNESS_WAIT_FOR(atomic_load(&a->holding), 5000, "A to hold /tear");
	atomic_store(&a->release, 1);
	assert_int_equal(harness_wait_paused(loga, "watch.bumped", 5000), pa);

	/* A has freed the lock and bumped; B takes it and stops between
	 * writing its token and its event. */
	pid_t pb = start_actor(b, "/tear", "watch.noting@1", logb,
			       sizeof(logb));
	assert_int_equal(harness_wait_paused(logb, "watch.noting", 5000), pb);
	harness_resume(pa);
	HARNESS_WAIT_FOR(atomic_load(&a->done), 5000, "A to finish");
	harness_resume(pb);
	HARNESS_WAIT_FOR(atomic_load(&b->holding), 5000, "B to hold /tear");

	/* Everything up to B's grant, in as few events as it comes. */
	lm_watch_event ev;
	uint64_t tb = atomic_load(&b->token), ta = atomic_load(&a->token);
	do
		next_or_fail(w, &ev, "B's grant");
	while (ev.holders == 0);
	if (ev.what == LM_WATCH_GRANTED && ev.token != tb)
		fail_msg("the note says B (pid %d) was granted with token %llu "
			 "(A's was %llu, B's is %llu): a torn note",
			 (int)ev.pid, (unsigned long long)ev.token,
			 (unsigned long long)ta, (unsigned long long)tb);
	if (ev.what == LM_WATCH_GRANTED)
		assert_int_equal(ev.pid, atomic_load(&b->pid));

	atomic_store(&b->release, 1);
	harness_expect_exit(pa, 5000, 0, "A");
	harness_expect_exit(pb, 5000, 0, "B");
	lm_watch_close(w);
	lm_disconnect(wc);
	harness_shared_free(a, sizeof(*a));
	harness_shared_free(b, sizeof(*b));
	harness_lockmgrd_stop(&d);
}

/* ---- 4. lm_leader_get across two terms ------------------------------ */

struct observer {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int done;
	_Atomic int rc;
	_Atomic uint64_t token;
	char value[LM_VALUE_MAX + 1];
};

static void observer_main(void *arg)
{
	struct observer *o = arg;
	lm_client *c = connect_or_fail(o->region);
	lm_leader l;
	int rc = lm_leader_get(c, "/elect", &l);
	atomic_store(&o->token, l.token);
	memcpy(o->value, l.value, sizeof(o->value));
	atomic_store(&o->rc, rc);
	atomic_store(&o->done, 1);
	lm_disconnect(c);
}

static void leader_get_never_mixes_terms(void)
{
	harness_lockmgrd_start(&d, "wrv-term", NULL);
	lm_client *l = connect_or_fail(d.region);
	lm_grant g1, g2;
	assert_int_equal(lm_campaign(l, "/elect", "first:1", 2000, 0, &g1), 0);

	struct observer *o = harness_shared(sizeof(*o));
	snprintf(o->region, sizeof(o->region), "%s", d.region);
	char log[256];
	harness_pause_arm("leader.looked@1", log, sizeof(log));
	pid_t p = harness_fork(observer_main, o);
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "leader.looked", 5000), p);

	/* The observer has found the first term; a second begins. */
	assert_int_equal(lm_resign(l, &g1), 0);
	assert_int_equal(lm_campaign(l, "/elect", "second:2", 2000, 0, &g2),
			 0);
	harness_resume(p);
	harness_expect_exit(p, 5000, 0, "the observer");
	assert_int_equal(atomic_load(&o->rc), 0);
	uint64_t t = atomic_load(&o->token);
	const char *want = t == g1.token ? "first:1" : "second:2";
	if (t != g1.token && t != g2.token)
		fail_msg("lm_leader_get: token %llu is neither term's",
			 (unsigned long long)t);
	if (strcmp(o->value, want) != 0)
		fail_msg("lm_leader_get: token %llu (the %s term's) with value "
			 "'%s', which that term never proclaimed",
			 (unsigned long long)t,
			 t == g1.token ? "first" : "second", o->value);

	assert_int_equal(lm_resign(l, &g2), 0);
	lm_disconnect(l);
	harness_shared_free(o, sizeof(*o));
	harness_lockmgrd_stop(&d);
}

/* ---- 5. lm_disconnect with a watch open ---------------------------- */

static int threads_of_self(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void disconnect_closes_watches(void)
{
	harness_lockmgrd_start(&d, "wrv-disc", NULL);
	int before = threads_of_self();
	lm_client *c = connect_or_fail(d.region);
	lm_watch *w1 = watch_or_fail(c, "/disc1");
	lm_watch *w2 = watch_or_fail(c, "/disc2");
	(void)w1;
	assert_true(lm_watch_fd(w2) >= 0);
	assert_int_equal(threads_of_self(), before + 1);
	assert_int_equal(lm_disconnect(c), 0);
	int after = threads_of_self();
	if (after != before)
		fail_msg("%d thread(s) of a watch outlived lm_disconnect, on "
			 "a region it unmapped", after - before);
	/* Nothing pins the names now: a new client sees no pins left. */
	lm_client *c2 = connect_or_fail(d.region);
	lm_watch *w[16];
	char name[32];
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "/disc-again%d", i);
		w[i] = watch_or_fail(c2, name);
	}
	for (int i = 0; i < 16; i++)
		lm_watch_close(w[i]);
	lm_disconnect(c2);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(renew_after_lease_end_is_announced, 30)
HARNESS_CASE(killed_releaser_is_announced, 30)
HARNESS_CASE(crossing_changers_never_tear_the_note, 30)
HARNESS_CASE(leader_get_never_mixes_terms, 30)
HARNESS_CASE(disconnect_closes_watches, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(renew_after_lease_end_is_announced),
		harness_case(killed_releaser_is_announced),
		harness_case(crossing_changers_never_tear_the_note),
		harness_case(leader_get_never_mixes_terms),
		harness_case(disconnect_closes_watches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
