/*
 * test_etcd_recipes.c - watches and leader election on the etcd backend
 * (client/etcd/watch.c, watch_stream.c, election.c), against a real
 * one-member etcd (tests/etcd_harness.c):
 *
 *   - a watch sees a grant, a release and a SIGKILLed holder's lease
 *     ending (EXPIRED, not RELEASED), each with its token and pid, at
 *     increasing versions;
 *   - its descriptor becomes readable in poll() on a change, and only
 *     then;
 *   - under churn (writers taking turns on one lock) two watchers, one
 *     blocking in lm_watch_next and one in poll(), count every change:
 *     the sum of `changes` is exactly two per critical section, and
 *     versions only grow;
 *   - `lockctl watch` on an etcd:// address prints those lines;
 *   - one leader at a time among campaigners; a SIGKILLed leader is
 *     replaced within its lease and a margin; lm_proclaim is seen by
 *     lm_leader_get and by a watch (PROCLAIMED); lm_resign leaves no
 *     leader; `lockctl elect` and `lockctl leader --watch` on etcd.
 *
 * Every case runs in its own process group under a timeout; every wait
 * is bounded and says what it waited for. The cases skip, saying so,
 * only when there is no etcd binary.
 *
 * Forks come before the forking process opens a watch. On etcd every
 * watch has a thread (client/etcd/watch.c), and a child forked while a
 * thread of its parent held a lock inherits that lock held, forever:
 * seen here under AddressSanitizer (GCC 12's runtime does not take its
 * allocator's locks around fork), where a child forked after the parent
 * opened its watch hung in its first malloc of that size class, in 2 of
 * 6 runs of the churn case. So each case forks its children first, and
 * they wait for the parent's go (sh->go) before they act.
 *
 * LOCKMGR_TEST_CASE=name runs one case (mutation checks, debugging).
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/etcd/etcd.h"
#include "client/lockmgr.h"
#include "etcd_harness.h"

static struct etcd_h eh;
static char addr[600];

static void start(const char *tag)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "/%s", tag);
	etcd_h_start(&eh, 1, prefix);
	snprintf(addr, sizeof(addr), "%s", eh.addr);
}

static lm_client *conn(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(addr, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", addr, rc, lm_strerror(rc));
	return c;
}

/* The next event within timeout_ms, or fail saying what was awaited. */
static lm_watch_event next_or_fail(lm_watch *w, int64_t timeout_ms,
				   const char *what)
{
	lm_watch_event ev;
	int rc = lm_watch_next(w, timeout_ms, &ev);
	if (rc != 0)
		fail_msg("no watch event for %s within %lld ms: %s", what,
			 (long long)timeout_ms, lm_strerror(rc));
	return ev;
}

static const char *what_name(uint32_t what)
{
	static const char *n[] = {"none", "granted", "released", "died",
				  "expired", "changed", "proclaimed"};
	return what < 7 ? n[what] : "?";
}

static void expect_event(const lm_watch_event *ev, uint32_t what,
			 uint64_t token, int pid, const char *when)
{
	if (ev->what != what || ev->token != token || ev->pid != pid)
		fail_msg("%s: event %s token %llu pid %d (%u changes); "
			 "expected %s token %llu pid %d", when,
			 what_name(ev->what), (unsigned long long)ev->token,
			 (int)ev->pid, ev->changes, what_name(what),
			 (unsigned long long)token, pid);
}

/* How many keys (holder and waiters) `lock` has. */
static unsigned keys_of(const char *lock)
{
	lm_client *c = conn();
	struct etcd_waiter *w;
	size_t n;
	int64_t rev;
	assert_int_equal(etcd_list(lm_etcd_of(c), &w, &n, &rev), 0);
	unsigned k = 0;
	for (size_t i = 0; i < n; i++)
		k += strcmp(w[i].name, lock) == 0;
	free(w);
	lm_disconnect(c);
	return k;
}

/* One term of a leader: from its campaign's return to its resign (or
 * the end of its lease, if sooner). */
struct lead {
	uint64_t token;
	int64_t start, end;
};

struct shared {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;     /* the parent's go, step by step */
	int pid[8];
	uint64_t token[8];
	int rc[8];
	int64_t when[8];
	_Atomic uint64_t sections;
	_Atomic uint32_t nrec;
	struct lead rec[256];
	uint64_t sum, events, last_version;
	uint32_t last_what, last_holders;
	char msg[256];
};
static struct shared *sh;
static int pipefd[2];

/* In a child: wait (bounded) for the parent's step `step`. */
static void wait_go(uint32_t step, const char *what)
{
	HARNESS_WAIT_FOR(atomic_load(&sh->go) >= step, 20000,
			 "the parent's go (step %u) for %s", step, what);
}

/* ---- grant, release, expiry --------------------------------------- */

static void watch_grant_release(void)
{
	start("wgr");
	lm_client *c = conn(), *o = conn();
	lm_watch *w;
	lm_watch_event now;
	assert_int_equal(lm_watch_open(o, "/w/a", &w, &now), 0);
	assert_int_equal(now.what, LM_WATCH_NONE);
	assert_int_equal(now.holders, 0);
	assert_int_equal(lm_watch_next(w, 0, &now), LM_ETIMEDOUT);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/w/a", 5000, 0, &g), 0);
	lm_watch_event ev = next_or_fail(w, 5000, "a grant");
	expect_event(&ev, LM_WATCH_GRANTED, g.token, (int)getpid(), "grant");
	assert_int_equal(ev.changes, 1);
	assert_int_equal(ev.holders, 1);
	assert_int_equal(ev.holder_token, g.token);
	assert_int_equal(ev.holder_pid, (int)getpid());
	if (ev.version <= now.version)
		fail_msg("grant at version %llu, not after the open's %llu",
			 (unsigned long long)ev.version,
			 (unsigned long long)now.version);
	/* A second watch opened now says the same of the lock. */
	lm_watch *w2;
	lm_watch_event now2;
	assert_int_equal(lm_watch_open(o, "/w/a", &w2, &now2), 0);
	assert_int_equal(now2.holders, 1);
	assert_int_equal(now2.holder_token, g.token);
	assert_true(now2.version >= ev.version);
	assert_int_equal(lm_release(c, &g), 0);
	lm_watch_event rel = next_or_fail(w, 5000, "a release");
	expect_event(&rel, LM_WATCH_RELEASED, g.token, (int)getpid(),
		     "release");
	assert_int_equal(rel.holders, 0);
	assert_true(rel.version > ev.version);
	/* ...and both watches give that change the same version. */
	lm_watch_event rel2 = next_or_fail(w2, 5000, "the release (watch 2)");
	assert_int_equal(rel2.version, rel.version);
	assert_int_equal(rel2.what, LM_WATCH_RELEASED);
	/* Nothing else happened. */
	assert_int_equal(lm_watch_next(w, 200, &ev), LM_ETIMEDOUT);
	lm_watch_close(w2);
	/* A waiter that gives up is no change of the lock. */
	assert_int_equal(lm_acquire(c, "/w/a", 5000, 0, &g), 0);
	ev = next_or_fail(w, 5000, "the second grant");
	lm_grant h;
	assert_int_equal(lm_acquire(o, "/w/a", 5000, 0, &h), LM_EBUSY);
	assert_int_equal(lm_release(c, &g), 0);
	ev = next_or_fail(w, 5000, "the second release");
	expect_event(&ev, LM_WATCH_RELEASED, g.token, (int)getpid(),
		     "the release after a failed try");
	assert_int_equal(ev.changes, 1);
	/* lm_disconnect closes the watch left open. */
	lm_disconnect(o);
	lm_disconnect(c);
	etcd_h_stop(&eh);
}

static void doomed(void *arg)
{
	const char *lock = arg;
	wait_go(1, "the doomed holder's grant");
	lm_client *c = conn();
	lm_grant g;
	assert_int_equal(lm_campaign(c, lock, "doomed", 1000, 0, &g), 0);
	sh->token[0] = g.token;
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	for (;;)
		pause();
}

static void watch_expiry(void)
{
	start("wexp");
	sh = harness_shared(sizeof(*sh));
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid_t p = harness_fork(doomed, "/w/exp");
	lm_client *o = conn();
	lm_watch *w;
	assert_int_equal(lm_watch_open(o, "/w/exp", &w, NULL), 0);
	atomic_store(&sh->go, 1);
	harness_read_byte(pipefd[0], 10000, "the doomed holder's grant");
	lm_watch_event ev = next_or_fail(w, 5000, "the doomed holder's grant");
	expect_event(&ev, LM_WATCH_GRANTED, sh->token[0], (int)p, "grant");
	int64_t t0 = harness_now_ms();
	assert_int_equal(kill(p, SIGKILL), 0);
	harness_reap(p, 5000, "the SIGKILLed holder");
	/* Its 1 s lease ends; etcd deletes its key; no release mark. */
	ev = next_or_fail(w, 6000, "the dead holder's lease to end");
	int64_t took = harness_now_ms() - t0;
	expect_event(&ev, LM_WATCH_EXPIRED, sh->token[0], (int)p,
		     "the SIGKILLed holder");
	assert_int_equal(ev.holders, 0);
	fprintf(stderr, "  expiry seen %lld ms after the SIGKILL (lease 1 s)\n",
		(long long)took);
	lm_disconnect(o);
	etcd_h_stop(&eh);
}

/* ---- the descriptor ------------------------------------------------ */

static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, ms);
	return n > 0 && (p.revents & POLLIN);
}

static void watch_fd_poll(void)
{
	start("wfd");
	lm_client *c = conn(), *o = conn();
	lm_watch *w;
	assert_int_equal(lm_watch_open(o, "/w/fd", &w, NULL), 0);
	int fd = lm_watch_fd(w);
	assert_true(fd >= 0);
	assert_int_equal(lm_watch_fd(w), fd);
	if (readable(fd, 200))
		fail_msg("the watch fd is readable with no change");
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/w/fd", 5000, 0, &g), 0);
	if (!readable(fd, 5000))
		fail_msg("the watch fd did not become readable within 5 s of "
			 "a grant");
	lm_watch_event ev;
	assert_int_equal(lm_watch_next(w, 0, &ev), 0);
	expect_event(&ev, LM_WATCH_GRANTED, g.token, (int)getpid(), "grant");
	/* Taken: not readable again until the next change. */
	if (readable(fd, 100))
		fail_msg("the watch fd stays readable after lm_watch_next "
			 "took the change");
	assert_int_equal(lm_release(c, &g), 0);
	if (!readable(fd, 5000))
		fail_msg("the watch fd did not become readable within 5 s of "
			 "a release");
	assert_int_equal(lm_watch_next(w, 0, &ev), 0);
	expect_event(&ev, LM_WATCH_RELEASED, g.token, (int)getpid(),
		     "release");
	lm_watch_close(w);
	lm_disconnect(o);
	lm_disconnect(c);
	etcd_h_stop(&eh);
}

/* ---- churn ---------------------------------------------------------- */

enum { CW = 3, CROUNDS = 15 };

static void churn_writer(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	wait_go(1, "a churn writer");
	for (int k = 0; k < CROUNDS; k++) {
		lm_grant g;
		int64_t t0 = harness_now_ms();
		int rc = lm_acquire(c, "/w/churn", 5000, 20000, &g);
		if (rc != 0)
			fail_msg("churn writer %d, round %d: acquire after "
				 "%lld ms: %d (%s)", (int)getpid(), k,
				 (long long)(harness_now_ms() - t0), rc,
				 lm_strerror(rc));
		atomic_fetch_add(&sh->sections, 1);
		rc = lm_release(c, &g);
		if (rc != 0)
			fail_msg("churn writer: release: %d (%s)", rc,
				 lm_strerror(rc));
	}
	lm_disconnect(c);
}

/* Sum the changes of one watch until `want`; check each event. */
struct tally {
	uint64_t sum, events, version;
	uint32_t what, holders;
};

static void tally_add(struct tally *t, const lm_watch_event *ev)
{
	if (ev->version <= t->version)
		fail_msg("version %llu after %llu: versions must grow",
			 (unsigned long long)ev->version,
			 (unsigned long long)t->version);
	if (ev->changes == 0)
		fail_msg("an event of 0 changes");
	if (ev->what == LM_WATCH_GRANTED &&
	    (ev->holders != 1 || ev->holder_token != ev->token))
		fail_msg("a grant of token %llu, but the lock after it: %u "
			 "holders, token %llu",
			 (unsigned long long)ev->token, ev->holders,
			 (unsigned long long)ev->holder_token);
	t->sum += ev->changes;
	t->events++;
	t->version = ev->version;
	t->what = ev->what;
	t->holders = ev->holders;
}

static void churn_watcher(void *arg)
{
	(void)arg;
	lm_client *o = conn();
	lm_watch *w;
	lm_watch_event now;
	assert_int_equal(lm_watch_open(o, "/w/churn", &w, &now), 0);
	struct tally t = {.version = now.version};
	atomic_fetch_add(&sh->ready, 1);
	const uint64_t want = 2 * CW * CROUNDS;
	while (t.sum < want) {
		lm_watch_event ev;
		int rc = lm_watch_next(w, 20000, &ev);
		if (rc != 0)
			fail_msg("blocking watcher: no event in 20 s after %llu "
				 "of %llu changes", (unsigned long long)t.sum,
				 (unsigned long long)want);
		tally_add(&t, &ev);
	}
	sh->sum = t.sum;
	sh->events = t.events;
	sh->last_what = t.what;
	sh->last_holders = t.holders;
	lm_disconnect(o);
}

static void watch_churn(void)
{
	start("wch");
	sh = harness_shared(sizeof(*sh));
	/* Every child before our watch's thread (see the top). */
	pid_t wp = harness_fork(churn_watcher, NULL);
	pid_t p[CW];
	for (int i = 0; i < CW; i++)
		p[i] = harness_fork(churn_writer, NULL);
	lm_client *o = conn();
	lm_watch *w;
	lm_watch_event now;
	assert_int_equal(lm_watch_open(o, "/w/churn", &w, &now), 0);
	struct tally t = {.version = now.version};
	HARNESS_WAIT_FOR(atomic_load(&sh->ready) == 1, 10000,
			 "the blocking watcher to open its watch");
	int64_t t0 = harness_now_ms();
	atomic_store(&sh->go, 1);
	/* This one follows the lock through poll(), as lockctl does. */
	const uint64_t want = 2 * CW * CROUNDS;
	int fd = lm_watch_fd(w);
	while (t.sum < want) {
		if (!readable(fd, 20000))
			fail_msg("poll watcher: fd not readable for 20 s after "
				 "%llu of %llu changes (%llu sections done)",
				 (unsigned long long)t.sum,
				 (unsigned long long)want,
				 (unsigned long long)atomic_load(&sh->sections));
		lm_watch_event ev;
		if (lm_watch_next(w, 0, &ev) == 0)
			tally_add(&t, &ev);
	}
	for (int i = 0; i < CW; i++)
		harness_expect_exit(p[i], 30000, 0, "churn writer");
	int64_t took = harness_now_ms() - t0;
	harness_expect_exit(wp, 30000, 0, "blocking watcher");
	assert_int_equal(atomic_load(&sh->sections), CW * CROUNDS);
	/* No change beyond those: a short bounded look, not a sync. */
	lm_watch_event ev;
	if (lm_watch_next(w, 300, &ev) == 0)
		fail_msg("a change beyond the %llu expected: %s",
			 (unsigned long long)want, what_name(ev.what));
	if (t.sum != want || sh->sum != want)
		fail_msg("changes counted: poll %llu, blocking %llu; "
			 "expected %llu (a grant and a release per section)",
			 (unsigned long long)t.sum, (unsigned long long)sh->sum,
			 (unsigned long long)want);
	if (t.what != LM_WATCH_RELEASED || t.holders != 0 ||
	    sh->last_what != LM_WATCH_RELEASED || sh->last_holders != 0)
		fail_msg("the last event is %s/%s, not a release of a free "
			 "lock", what_name(t.what), what_name(sh->last_what));
	fprintf(stderr, "  %d sections in %lld ms; %llu changes in %llu "
		"(poll) and %llu (blocking) events\n", CW * CROUNDS,
		(long long)took, (unsigned long long)want,
		(unsigned long long)t.events, (unsigned long long)sh->events);
	lm_disconnect(o);
	etcd_h_stop(&eh);
}

/* ---- lockctl watch -------------------------------------------------- */

static bool file_has(const char *path, const char *what)
{
	char buf[8192];
	return harness_read_file(path, buf, sizeof(buf)) >= 0 &&
	       strstr(buf, what) != NULL;
}

static void watch_lockctl(void)
{
	start("wctl");
	char dir[256], out[512], err[512], lockctl[512], want[128];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	char *argv[] = {lockctl, "-r", addr, "watch", "--count", "2",
			"--timeout", "20000", "/w/ctl", NULL};
	pid_t p = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(file_has(out, "/w/ctl now free"), 10000,
			 "lockctl watch's first line");
	lm_client *c = conn();
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/w/ctl", 5000, 0, &g), 0);
	snprintf(want, sizeof(want), "/w/ctl granted pid=%d mode=X token=%llu",
		 (int)getpid(), (unsigned long long)g.token);
	HARNESS_WAIT_FOR(file_has(out, want), 10000,
			 "lockctl watch to print '%s'", want);
	assert_int_equal(lm_release(c, &g), 0);
	harness_expect_exit(p, 10000, 0, "lockctl watch --count 2");
	snprintf(want, sizeof(want), "/w/ctl released pid=%d mode=X token=%llu",
		 (int)getpid(), (unsigned long long)g.token);
	if (!file_has(out, want)) {
		char buf[8192];
		harness_read_file(out, buf, sizeof(buf));
		fail_msg("lockctl watch printed\n%s\nwith no '%s'", buf, want);
	}
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	etcd_h_stop(&eh);
}

/* ---- election -------------------------------------------------------- */

enum { EC = 3, EROUNDS = 4 };

static void campaigner(void *arg)
{
	int i = (int)(intptr_t)arg;
	lm_client *c = conn(), *o = conn();
	char value[32];
	snprintf(value, sizeof(value), "cand-%d", i);
	for (int k = 0; k < EROUNDS; k++) {
		lm_grant g;
		int rc = lm_campaign(c, "/e/one", value, 5000, 20000, &g);
		if (rc != 0)
			fail_msg("campaign: %d (%s)", rc, lm_strerror(rc));
		int64_t t = harness_now_ns();
		/* While it leads, an observer sees it, with its value. */
		lm_leader l;
		rc = lm_leader_get(o, "/e/one", &l);
		if (rc != 0 || l.pid != (int)getpid() || l.token != g.token ||
		    strcmp(l.value, value) != 0)
			fail_msg("leader %d (token %llu, %s) sees rc %d, pid "
				 "%d, token %llu, value '%s'", (int)getpid(),
				 (unsigned long long)g.token, value, rc, l.pid,
				 (unsigned long long)l.token, l.value);
		harness_nap_us(2000);
		int64_t end = harness_now_ns();
		uint32_t n = atomic_fetch_add(&sh->nrec, 1);
		sh->rec[n].token = g.token;
		sh->rec[n].start = t;
		sh->rec[n].end = end < g.valid_until_ns ? end : g.valid_until_ns;
		rc = lm_resign(c, &g);
		if (rc != 0)
			fail_msg("resign: %d (%s)", rc, lm_strerror(rc));
	}
	lm_disconnect(o);
	lm_disconnect(c);
}

static int by_start(const void *a, const void *b)
{
	const struct lead *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void election_one_leader(void)
{
	start("eone");
	sh = harness_shared(sizeof(*sh));
	pid_t p[EC];
	for (int i = 0; i < EC; i++)
		p[i] = harness_fork(campaigner, (void *)(intptr_t)i);
	for (int i = 0; i < EC; i++)
		harness_expect_exit(p[i], 60000, 0, "campaigner");
	uint32_t n = atomic_load(&sh->nrec);
	assert_int_equal(n, EC * EROUNDS);
	qsort(sh->rec, n, sizeof(sh->rec[0]), by_start);
	for (uint32_t i = 1; i < n; i++) {
		if (sh->rec[i].start < sh->rec[i - 1].end)
			fail_msg("two leaders at once: token %llu from %lld, "
				 "token %llu until %lld",
				 (unsigned long long)sh->rec[i].token,
				 (long long)sh->rec[i].start,
				 (unsigned long long)sh->rec[i - 1].token,
				 (long long)sh->rec[i - 1].end);
		if (sh->rec[i].token <= sh->rec[i - 1].token)
			fail_msg("leader token %llu after %llu",
				 (unsigned long long)sh->rec[i].token,
				 (unsigned long long)sh->rec[i - 1].token);
	}
	lm_client *c = conn();
	lm_leader l;
	assert_int_equal(lm_leader_get(c, "/e/one", &l), LM_ENOLEADER);
	lm_disconnect(c);
	etcd_h_stop(&eh);
}

static void successor(void *arg)
{
	(void)arg;
	wait_go(2, "the successor's campaign");
	lm_client *c = conn();
	lm_grant g;
	sh->rc[1] = lm_campaign(c, "/e/fail", "next", 5000, 20000, &g);
	sh->when[1] = harness_now_ms();
	sh->token[1] = g.token;
	/* Lead until the observer has seen it (its resign would otherwise
	 * be coalesced into the same event). */
	HARNESS_WAIT_FOR(atomic_load(&sh->ready) == 1, 10000,
			 "the observer to see the successor's lead");
	if (sh->rc[1] == 0)
		lm_resign(c, &g);
	lm_disconnect(c);
}

static void election_failover(void)
{
	start("efail");
	sh = harness_shared(sizeof(*sh));
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid_t a = harness_fork(doomed, "/e/fail");
	pid_t b = harness_fork(successor, NULL);
	lm_client *o = conn();
	lm_watch *w;
	assert_int_equal(lm_watch_open(o, "/e/fail", &w, NULL), 0);
	atomic_store(&sh->go, 1);
	harness_read_byte(pipefd[0], 10000, "the first leader's campaign");
	lm_leader l;
	assert_int_equal(lm_leader_get(o, "/e/fail", &l), 0);
	assert_int_equal(l.pid, (int)a);
	assert_string_equal(l.value, "doomed");
	assert_int_equal(l.token, sh->token[0]);
	lm_watch_event ev = next_or_fail(w, 5000, "the first leader's grant");
	expect_event(&ev, LM_WATCH_GRANTED, sh->token[0], (int)a, "first lead");
	atomic_store(&sh->go, 2);
	HARNESS_WAIT_FOR(keys_of("/e/fail") == 2, 10000,
			 "the successor to campaign (%u keys)",
			 keys_of("/e/fail"));
	int64_t t0 = harness_now_ms();
	assert_int_equal(kill(a, SIGKILL), 0);
	harness_reap(a, 5000, "the SIGKILLed leader");
	/* The dead leader's lease ends and the successor's key is the
	 * oldest: one revision, two changes (an expiry, then a grant). */
	ev = next_or_fail(w, 6000, "the successor's lead");
	if (ev.what != LM_WATCH_GRANTED || ev.pid != (int)b || ev.changes != 2)
		fail_msg("after the leader's SIGKILL: %s pid %d (%u changes); "
			 "expected granted pid %d (2 changes: the expiry and "
			 "the grant)", what_name(ev.what), ev.pid, ev.changes,
			 (int)b);
	atomic_store(&sh->ready, 1);
	harness_expect_exit(b, 10000, 0, "the successor");
	assert_int_equal(sh->rc[1], 0);
	int64_t took = sh->when[1] - t0;
	fprintf(stderr, "  new leader %lld ms after the SIGKILL (lease 1 s)\n",
		(long long)took);
	if (took > 1000 + 3000)
		fail_msg("a killed leader with a 1 s lease was replaced after "
			 "%lld ms", (long long)took);
	assert_true(sh->token[1] > sh->token[0]);
	lm_disconnect(o);
	etcd_h_stop(&eh);
}

static void election_proclaim_resign(void)
{
	start("eproc");
	lm_client *c = conn(), *o = conn();
	lm_leader l;
	assert_int_equal(lm_leader_get(o, "/e/p", &l), LM_ENOLEADER);
	lm_watch *w;
	assert_int_equal(lm_watch_open(o, "/e/p", &w, NULL), 0);
	lm_grant g;
	assert_int_equal(lm_campaign(c, "/e/p", "v1", 5000, 0, &g), 0);
	assert_int_equal(lm_leader_get(o, "/e/p", &l), 0);
	assert_string_equal(l.value, "v1");
	assert_int_equal(l.pid, (int)getpid());
	assert_int_equal(l.token, g.token);
	lm_watch_event ev = next_or_fail(w, 5000, "the campaign");
	expect_event(&ev, LM_WATCH_GRANTED, g.token, (int)getpid(), "lead");
	/* A second campaigner waits; it is not the leader. */
	lm_grant h;
	assert_int_equal(lm_campaign(o, "/e/p", "other", 5000, 0, &h),
			 LM_EBUSY);
	assert_int_equal(lm_proclaim(c, &g, "v2"), 0);
	ev = next_or_fail(w, 5000, "the proclaim");
	expect_event(&ev, LM_WATCH_PROCLAIMED, g.token, (int)getpid(),
		     "proclaim");
	assert_int_equal(lm_leader_get(o, "/e/p", &l), 0);
	assert_string_equal(l.value, "v2");
	assert_int_equal(l.token, g.token);
	assert_true(l.version >= ev.version);
	/* The key kept its lease: a leader that dies after a proclaim
	 * still loses the lead when its lease ends. */
	{
		struct etcd_waiter *kw;
		size_t n;
		int64_t rev;
		assert_int_equal(etcd_list(lm_etcd_of(o), &kw, &n, &rev), 0);
		assert_int_equal(n, 1);
		if (kw[0].lease == 0 || (uint64_t)kw[0].create_rev != g.token)
			fail_msg("after lm_proclaim the leader's key has lease "
				 "%lld, create revision %llu",
				 (long long)kw[0].lease,
				 (unsigned long long)kw[0].create_rev);
		free(kw);
	}
	assert_int_equal(lm_renew(c, &g, 5000), 0);
	assert_int_equal(lm_resign(c, &g), 0);
	ev = next_or_fail(w, 5000, "the resign");
	expect_event(&ev, LM_WATCH_RELEASED, g.token, (int)getpid(), "resign");
	assert_int_equal(lm_leader_get(o, "/e/p", &l), LM_ENOLEADER);
	assert_int_equal(lm_proclaim(c, &g, "v3"), LM_ENOTHELD);
	/* A leader whose lease ended cannot proclaim. */
	assert_int_equal(lm_campaign(c, "/e/p", "short", 1000, 0, &g), 0);
	ev = next_or_fail(w, 5000, "the second campaign");
	ev = next_or_fail(w, 6000, "the unrenewed lease to end");
	expect_event(&ev, LM_WATCH_EXPIRED, g.token, (int)getpid(), "expiry");
	assert_int_equal(lm_proclaim(c, &g, "late"), LM_ELEASELOST);
	assert_int_equal(lm_leader_get(o, "/e/p", &l), LM_ENOLEADER);
	lm_disconnect(o);
	lm_disconnect(c);
	etcd_h_stop(&eh);
}

static int lines_in(const char *path, char *buf, size_t n)
{
	if (harness_read_file(path, buf, n) < 0)
		return 0;
	int k = 0;
	for (char *s = buf; *s; s++)
		k += *s == '\n';
	return k;
}

static void election_lockctl(void)
{
	start("ectl");
	char dir[256], out[512], err[512], eout[512], eerr[512], log[512];
	char lockctl[512], buf[4096], script[1024];
	harness_tmpdir(dir, sizeof(dir));
	/* Not "out" and "err": harness_ctl's own files in dir. */
	snprintf(out, sizeof(out), "%s/wout", dir);
	snprintf(err, sizeof(err), "%s/werr", dir);
	snprintf(eout, sizeof(eout), "%s/eout", dir);
	snprintf(eerr, sizeof(eerr), "%s/eerr", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	/* lockctl leader --watch: a line per change an observer sees. */
	char *wargv[] = {lockctl, "-r", addr, "leader", "--watch", "/e/ctl",
			 NULL};
	pid_t wp = harness_spawn(wargv, out, err);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 1, 10000,
			 "lockctl leader --watch printed nothing in 10 s");
	assert_string_equal(buf, "none\n");
	/* lockctl elect runs its command while it leads. */
	snprintf(script, sizeof(script),
		 "echo started >> %s; while :; do sleep 0.05; done", log);
	char *eargv[] = {lockctl, "-r", addr, "elect", "--value", "v1",
			 "--ttl", "1000", "--grace", "500", "/e/ctl", "--",
			 "/bin/sh", "-c", script, NULL};
	pid_t ep = harness_spawn(eargv, eout, eerr);
	HARNESS_WAIT_FOR(file_has(log, "started"), 10000,
			 "lockctl elect did not start its command");
	char o[1024], e[1024], want[128];
	int st = harness_ctl(dir, o, sizeof(o), e, sizeof(e), "-r", addr,
			     "leader", "/e/ctl", NULL);
	snprintf(want, sizeof(want), "pid=%d ", (int)ep);
	if (st != 0 || strstr(o, want) == NULL ||
	    strstr(o, " value=v1") == NULL)
		fail_msg("lockctl leader: exit %d, \"%s\" (%s); expected %s... "
			 "value=v1", st, o, e, want);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 2, 10000,
			 "lockctl leader --watch: no line for the leader: "
			 "\"%s\"", buf);
	/* Stopped past its lease, it loses the lead to a campaigner. */
	kill(ep, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(ep) == 'T', 5000,
			 "lockctl elect did not stop");
	lm_client *c = conn();
	lm_grant g;
	int rc = lm_campaign(c, "/e/ctl", "taker", 5000, 10000, &g);
	if (rc != 0)
		fail_msg("campaign against a stopped leader: %s",
			 lm_strerror(rc));
	kill(ep, SIGCONT);
	harness_expect_exit(ep, 15000, 70, "lockctl elect after its lead "
			    "was lost");
	/* It stopped the command's whole tree before it exited, the
	 * shell's current `sleep 0.05` included. */
	if (harness_group_runs("sleep"))
		fail_msg("a sleep of lockctl elect's command still runs after "
			 "lockctl exited");
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 3, 10000,
			 "lockctl leader --watch: no line for the taker");
	assert_int_equal(lm_proclaim(c, &g, "w:2"), 0);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 4, 10000,
			 "lockctl leader --watch: no line for a proclaim");
	assert_int_equal(lm_resign(c, &g), 0);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 5, 10000,
			 "lockctl leader --watch: no line for a resign");
	kill(wp, SIGTERM);
	harness_expect_exit(wp, 10000, 0, "lockctl leader --watch");
	lines_in(out, buf, sizeof(buf));
	char expect[1024];
	/* The stopped leader's lead ends and the taker's begins at one
	 * revision: the observer may see "none" between them or not. */
	snprintf(expect, sizeof(expect),
		 "pid=%d token=%llu value=taker\n"
		 "pid=%d token=%llu value=w:2\nnone\n",
		 (int)getpid(), (unsigned long long)g.token, (int)getpid(),
		 (unsigned long long)g.token);
	size_t bl = strlen(buf), xl = strlen(expect);
	if (strncmp(buf, "none\npid=", 9) != 0 || bl < xl ||
	    strcmp(buf + bl - xl, expect) != 0)
		fail_msg("lockctl leader --watch printed\n%s\nexpected none, "
			 "the first leader, then\n%s", buf, expect);
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	etcd_h_stop(&eh);
	harness_reap_orphans();
}

/* ---- entry ----------------------------------------------------------- */

/* ---- a watch across the SIGKILL of its stream's member ----------- */

/* Events until `changes` changes are counted (bounded), versions only
 * growing; the last event into *last. */
static uint32_t count_changes(lm_watch *w, uint32_t changes,
			      uint64_t after, lm_watch_event *last,
			      const char *what)
{
	uint32_t sum = 0;
	int64_t until = harness_now_ms() + 20000;
	while (sum < changes) {
		int64_t left = until - harness_now_ms();
		lm_watch_event ev;
		int rc = lm_watch_next(w, left > 0 ? left : 0, &ev);
		if (rc != 0)
			fail_msg("%s: %u of %u changes seen within 20 s: %s",
				 what, sum, changes, lm_strerror(rc));
		if (ev.version <= after)
			fail_msg("%s: version %llu after %llu", what,
				 (unsigned long long)ev.version,
				 (unsigned long long)after);
		after = ev.version;
		sum += ev.changes;
		*last = ev;
	}
	if (sum != changes)
		fail_msg("%s: %u changes counted, %u made", what, sum, changes);
	return sum;
}

static void watch_member_killed(void)
{
	etcd_h_start(&eh, 3, "/wkill");
	snprintf(addr, sizeof(addr), "%s", eh.addr);
	lm_client *o = conn();
	lm_watch *w;
	lm_watch_event now, last;
	assert_int_equal(lm_watch_open(o, "/wk/a", &w, &now), 0);
	/* The member the stream uses: the one the client last talked to,
	 * read before anything can move it (client/etcd/watch_stream.c). */
	unsigned victim = w->e2->cur % eh.n;
	/* The writer talks to the two other members only. */
	char waddr[600];
	unsigned a = (victim + 1) % eh.n, b = (victim + 2) % eh.n;
	snprintf(waddr, sizeof(waddr), "etcd://127.0.0.1:%d,127.0.0.1:%d/wkill",
		 eh.client_port[a], eh.client_port[b]);
	lm_client *c = NULL;
	int rc = lm_connect(waddr, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %s", waddr, lm_strerror(rc));
	lm_grant g;
	/* The stream runs: a grant and a release are seen. */
	assert_int_equal(lm_acquire(c, "/wk/a", 5000, 0, &g), 0);
	assert_int_equal(lm_release(c, &g), 0);
	count_changes(w, 2, now.version, &last, "before the kill");
	uint64_t token = g.token;
	/* Frozen first: the changes made meanwhile reach the stream only
	 * if it resumes, after the kill, from the revision it was at (not
	 * from "now"); then killed, and changes after that too. */
	fprintf(stderr, "  freezing, then killing member %u (port %d), the "
		"watch's\n", victim, eh.client_port[victim]);
	assert_int_equal(kill(eh.pid[victim], SIGSTOP), 0);
	enum { ROUNDS = 5, FROZEN = 3 };
	for (int k = 0; k < ROUNDS; k++) {
		if (k == FROZEN)
			etcd_h_kill(&eh, victim);
		rc = lm_acquire(c, "/wk/a", 5000, 10000, &g);
		if (rc != 0)
			fail_msg("acquire %d with member %u %s: %s", k, victim,
				 k < FROZEN ? "frozen" : "killed",
				 lm_strerror(rc));
		assert_true(g.token > token);
		token = g.token;
		assert_int_equal(lm_release(c, &g), 0);
	}
	/* The watch went on at another member from where it was, and
	 * missed none. */
	count_changes(w, 2 * ROUNDS, last.version, &last, "after the kill");
	assert_int_equal(last.what, LM_WATCH_RELEASED);
	assert_int_equal(last.token, token);
	assert_int_equal(last.holders, 0);
	/* Nothing more, nothing twice. */
	lm_watch_event ev;
	assert_int_equal(lm_watch_next(w, 300, &ev), LM_ETIMEDOUT);
	lm_watch_close(w);
	lm_disconnect(c);
	lm_disconnect(o);
	etcd_h_stop(&eh);
}

#define ETCD_CASE(fn, timeout_s)                                         \
	static void fn##_proc(void **state)                              \
	{                                                                \
		(void)state;                                             \
		if (etcd_h_binary() == NULL) {                           \
			fprintf(stderr, "SKIP " #fn ": no etcd binary "  \
					"(/usr/bin/etcd or $LOCKMGR_ETCD; " \
					"Debian: etcd-server)\n");       \
			skip();                                          \
		}                                                        \
		harness_run_case(#fn, fn, timeout_s);                    \
	}

ETCD_CASE(watch_grant_release, 30)
ETCD_CASE(watch_expiry, 30)
ETCD_CASE(watch_fd_poll, 30)
ETCD_CASE(watch_churn, 120)
ETCD_CASE(watch_lockctl, 30)
ETCD_CASE(election_one_leader, 90)
ETCD_CASE(election_failover, 30)
ETCD_CASE(election_proclaim_resign, 30)
ETCD_CASE(election_lockctl, 60)
ETCD_CASE(watch_member_killed, 90)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(watch_grant_release),
		harness_case(watch_expiry),
		harness_case(watch_fd_poll),
		harness_case(watch_churn),
		harness_case(watch_lockctl),
		harness_case(election_one_leader),
		harness_case(election_failover),
		harness_case(election_proclaim_resign),
		harness_case(election_lockctl),
		harness_case(watch_member_killed),
	};
	/* One case, for the mutation checks and debugging. (Not cmocka's
	 * own filter: it would also filter out the nested run that
	 * harness_fork's children and each case's process are.) */
	const char *only = getenv("LOCKMGR_TEST_CASE");
	struct CMUnitTest chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++)
		if (only == NULL || strcmp(only, tests[k].name) == 0)
			chosen[n++] = tests[k];
	return _cmocka_run_group_tests("test_etcd_recipes", chosen, n, NULL,
				       NULL);
}
