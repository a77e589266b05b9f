/*
 * test_watch.c - watches (lm_watch_*, lockctl watch) against a real
 * lockmgrd and real client processes.
 *
 *   - each kind of change is reported with the right what, pid, token
 *     and mode: a grant, a release, a holder SIGKILLed (the supervisor
 *     frees it), a holder SIGSTOPped past its lease (a server ends it,
 *     and it is announced once), a mode changed in place (lm_convert);
 *   - no change is ever missed under churn: 16 writers (some SIGKILLed
 *     and restarted) and 8 watchers; every watcher's events add up to
 *     the lock's version delta, step by step, and that delta is exactly
 *     the grants, releases and deaths that happened;
 *   - a watcher blocked in lm_watch_next(-1) wakes on a change;
 *   - lm_watch_fd with poll, lm_watch_next(0) and LM_ETIMEDOUT;
 *   - LM_EPINS past 16 watched names, and a watched name is never
 *     reclaimed however many other names pass through the table;
 *   - a watch counts from the lock's version when it was opened, and
 *     its events carry the lock's version;
 *   - lockctl watch --json --count N, and --timeout's exit status 75.
 *
 * Every wait is bounded; processes are driven through pipes and shared
 * counters, never by sleeping.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"
#include "shm/watch.h"

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

static lm_watch *watch_or_fail(lm_client *c, const char *name,
			       lm_watch_event *now)
{
	lm_watch *w = NULL;
	int rc = lm_watch_open(c, name, &w, now);
	if (rc != 0)
		fail_msg("lm_watch_open(%s): %s", name, lm_strerror(rc));
	return w;
}

static const char *what_name(uint32_t what)
{
	static const char *const names[] = {
		"none", "granted", "released", "died",
		"expired", "changed", "proclaimed",
	};
	return what < sizeof(names) / sizeof(names[0]) ? names[what] : "?";
}

/* The next event, within timeout_ms, or fail saying what was awaited. */
static void next_or_fail(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev,
			 const char *what)
{
	int rc = lm_watch_next(w, timeout_ms, ev);
	if (rc != 0)
		fail_msg("no event within %lld ms waiting for %s: %s",
			 (long long)timeout_ms, what, lm_strerror(rc));
}

static void expect_event(const lm_watch_event *ev, uint32_t what, pid_t pid,
			 uint64_t token, uint32_t mode, uint32_t holders,
			 const char *ctx)
{
	if (ev->what != what || ev->pid != pid || ev->token != token ||
	    ev->mode != mode || ev->holders != holders || ev->changes != 1)
		fail_msg("%s: event %s pid %d token %llu mode %u holders %u "
			 "changes %u; expected %s pid %d token %llu mode %u "
			 "holders %u changes 1",
			 ctx, what_name(ev->what), (int)ev->pid,
			 (unsigned long long)ev->token, ev->mode, ev->holders,
			 ev->changes, what_name(what), (int)pid,
			 (unsigned long long)token, mode, holders);
}

static void expect_quiet(lm_watch *w, const char *ctx)
{
	lm_watch_event ev;
	int rc = lm_watch_next(w, 0, &ev);
	if (rc != LM_ETIMEDOUT)
		fail_msg("%s: expected no further change, got %s (%s pid %d "
			 "token %llu, %u change(s))",
			 ctx, lm_strerror(rc), what_name(ev.what), (int)ev.pid,
			 (unsigned long long)ev.token, ev.changes);
}

/* The lock's version as the region has it (the test's own view). */
static uint32_t region_version(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		fail_msg("%s is not in the name index (%lld)", name,
			 (long long)idx);
	return lm_lock_version(r, (uint32_t)idx);
}

/* ---- an agent: a client process driven through a pipe ------------ */

enum { OP_ACQUIRE = 'a', OP_RELEASE = 'r', OP_CONVERT = 'c', OP_QUIT = 'q' };

struct cmd {
	char op;
	uint32_t mode;
	int64_t ttl_ms;
	int64_t wait_ms;
};

struct reply {
	int rc;
	uint32_t mode;
	uint64_t token;
};

struct agent {
	pid_t pid;
	int to[2];   /* commands: parent writes to[1] */
	int from[2]; /* replies: parent reads from[0] */
	char name[64];
};

static void agent_main(void *arg)
{
	struct agent *a = arg;
	close(a->to[1]);
	close(a->from[0]);
	lm_client *c = connect_or_fail();
	lm_grant g;
	struct cmd m;
	while (read(a->to[0], &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		struct reply rp = { 0 };
		switch (m.op) {
		case OP_ACQUIRE: {
			lm_acquire_opts o =
				LM_ACQUIRE_OPTS(m.mode, m.ttl_ms, m.wait_ms);
			rp.rc = lm_acquire_ex(c, a->name, &o, &g);
			break;
		}
		case OP_RELEASE:
			rp.rc = lm_release(c, &g);
			break;
		case OP_CONVERT:
			rp.rc = lm_convert(c, &g, m.mode, m.ttl_ms, m.wait_ms);
			break;
		case OP_QUIT:
			lm_disconnect(c);
			return;
		}
		rp.token = g.token;
		rp.mode = g.mode;
		if (write(a->from[1], &rp, sizeof(rp)) != (ssize_t)sizeof(rp))
			fail_msg("agent: write: %s", strerror(errno));
	}
	lm_disconnect(c);
}

static void agent_start(struct agent *a, const char *name)
{
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (pipe(a->to) != 0 || pipe(a->from) != 0)
		fail_msg("pipe: %s", strerror(errno));
	a->pid = harness_fork(agent_main, a);
	close(a->to[0]);
	close(a->from[1]);
}

static struct reply agent_do(struct agent *a, char op, uint32_t mode,
			     int64_t ttl_ms, int64_t wait_ms)
{
	struct cmd m = { .op = op, .mode = mode, .ttl_ms = ttl_ms,
			 .wait_ms = wait_ms };
	if (write(a->to[1], &m, sizeof(m)) != (ssize_t)sizeof(m))
		fail_msg("write to agent %d: %s", (int)a->pid, strerror(errno));
	struct reply rp;
	struct pollfd p = { .fd = a->from[0], .events = POLLIN };
	int n = poll(&p, 1, 10000);
	if (n != 1 || read(a->from[0], &rp, sizeof(rp)) != (ssize_t)sizeof(rp))
		fail_msg("agent %d did not answer '%c' within 10 s",
			 (int)a->pid, op);
	return rp;
}

static struct reply agent_ok(struct agent *a, char op, uint32_t mode,
			     int64_t ttl_ms, int64_t wait_ms)
{
	struct reply rp = agent_do(a, op, mode, ttl_ms, wait_ms);
	if (rp.rc != 0)
		fail_msg("agent %d '%c' on %s: %s", (int)a->pid, op, a->name,
			 lm_strerror(rp.rc));
	return rp;
}

static void agent_end(struct agent *a)
{
	struct cmd m = { .op = OP_QUIT };
	if (write(a->to[1], &m, sizeof(m)) != (ssize_t)sizeof(m))
		fail_msg("write to agent %d: %s", (int)a->pid, strerror(errno));
	harness_expect_exit(a->pid, 10000, 0, "agent");
	close(a->to[1]);
	close(a->from[0]);
}

/* ---- each kind of change ------------------------------------------ */

/* Every table's owner word of lock is free (no session on it). */
static bool tables_free(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		return false;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (LM_OWNER_SESSION(atomic_load(
			    &lm_slot_of(r, i, (uint32_t)idx)->owner)) != 0)
			return false;
	return true;
}

static void each_kind_of_change(void)
{
	harness_lockmgrd_start(&d, "kinds", "--max-ttl", "10000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c = connect_or_fail();
	lm_watch_event ev;
	lm_watch *w = watch_or_fail(c, "kinds", &ev);
	assert_int_equal(ev.what, LM_WATCH_NONE);
	assert_int_equal(ev.holders, 0);

	/* Granted, then released. */
	struct agent a;
	agent_start(&a, "kinds");
	struct reply g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	next_or_fail(w, 5000, &ev, "the grant");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "grant");
	assert_int_equal(ev.holder_pid, a.pid);
	assert_int_equal(ev.holder_token, g.token);
	agent_ok(&a, OP_RELEASE, 0, 0, 0);
	next_or_fail(w, 5000, &ev, "the release");
	expect_event(&ev, LM_WATCH_RELEASED, a.pid, g.token, LM_MODE_X, 0,
		     "release");
	expect_quiet(w, "after the release");

	/* A mode changed in place: X -> S keeps the token, S -> X takes a
	 * new one. */
	g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	next_or_fail(w, 5000, &ev, "the grant before the downgrade");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "grant before downgrade");
	struct reply s = agent_ok(&a, OP_CONVERT, LM_MODE_S, 5000, 5000);
	assert_int_equal(s.mode, LM_MODE_S);
	next_or_fail(w, 5000, &ev, "the downgrade");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_S, 1,
		     "downgrade X -> S");
	assert_int_equal(ev.held_mode, LM_MODE_S);
	struct reply x = agent_ok(&a, OP_CONVERT, LM_MODE_X, 5000, 5000);
	assert_true(x.token > g.token);
	next_or_fail(w, 5000, &ev, "the upgrade");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, x.token, LM_MODE_X, 1,
		     "upgrade S -> X");
	agent_ok(&a, OP_RELEASE, 0, 0, 0);
	next_or_fail(w, 5000, &ev, "the release after the upgrade");
	expect_event(&ev, LM_WATCH_RELEASED, a.pid, x.token, LM_MODE_X, 0,
		     "release after upgrade");
	agent_end(&a);

	/* Died: the holder is SIGKILLed and the supervisor frees it. */
	agent_start(&a, "kinds");
	g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	next_or_fail(w, 5000, &ev, "the grant before the kill");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "grant before kill");
	kill(a.pid, SIGKILL);
	harness_reap(a.pid, 5000, "SIGKILLed holder");
	close(a.to[1]);
	close(a.from[0]);
	next_or_fail(w, 5000, &ev, "the dead holder's free");
	expect_event(&ev, LM_WATCH_DIED, a.pid, g.token, LM_MODE_X, 0,
		     "holder SIGKILLed");
	expect_quiet(w, "after the death");

	/* Expired: the holder is SIGSTOPped past its 1.5 s lease; a server
	 * ends it, once. (Not shorter: the grant must be read as its own
	 * event before the lease ends, on a loaded host too.) */
	agent_start(&a, "kinds");
	g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 1500, 5000);
	next_or_fail(w, 5000, &ev, "the grant before the freeze");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "grant before freeze");
	kill(a.pid, SIGSTOP);
	next_or_fail(w, 5000, &ev, "the frozen holder's lease to end");
	expect_event(&ev, LM_WATCH_EXPIRED, a.pid, g.token, LM_MODE_X, 0,
		     "holder frozen past its lease");
	/* Every server has swept its table, and finished announcing what
	 * it freed: one lease ended, one change. */
	HARNESS_WAIT_FOR(tables_free(&r, "kinds"), 5000,
			 "the servers did not free the expired grant's tables "
			 "within 5 s");
	harness_servers_loop_once(&r, 0, 5000);
	expect_quiet(w, "after every table of the expired grant was freed");
	/* The next holder takes it. */
	struct agent b;
	agent_start(&b, "kinds");
	struct reply gb = agent_ok(&b, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	assert_true(gb.token > g.token);
	next_or_fail(w, 5000, &ev, "the next holder's grant");
	expect_event(&ev, LM_WATCH_GRANTED, b.pid, gb.token, LM_MODE_X, 1,
		     "next holder after expiry");
	/* The zombie wakes: its late release touches nothing of b's. */
	kill(a.pid, SIGCONT);
	struct reply late = agent_do(&a, OP_RELEASE, 0, 0, 0);
	assert_int_equal(late.rc, LM_ELEASELOST);
	expect_quiet(w, "after the zombie's late release");
	agent_ok(&b, OP_RELEASE, 0, 0, 0);
	next_or_fail(w, 5000, &ev, "the next holder's release");
	expect_event(&ev, LM_WATCH_RELEASED, b.pid, gb.token, LM_MODE_X, 0,
		     "release by the next holder");

	/* A frozen holder taken over by a waiter: the end of its lease and
	 * the new grant, never missed (maybe in one event). */
	g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 1500, 5000);
	next_or_fail(w, 5000, &ev, "the grant before the second freeze");
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "grant before second freeze");
	uint32_t v0 = region_version(&r, "kinds");
	kill(a.pid, SIGSTOP);
	gb = agent_ok(&b, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	uint32_t seen = 0;
	bool expired = false;
	while (seen < region_version(&r, "kinds") - v0) {
		next_or_fail(w, 5000, &ev, "the takeover's changes");
		seen += ev.changes;
		if (ev.what == LM_WATCH_EXPIRED) {
			assert_int_equal(ev.pid, a.pid);
			assert_int_equal(ev.token, g.token);
			expired = true;
		}
	}
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	assert_int_equal(ev.pid, b.pid);
	assert_int_equal(ev.token, gb.token);
	fprintf(stderr, "  takeover: %u change(s), expiry %s\n", seen,
		expired ? "reported on its own" : "coalesced with the grant");
	kill(a.pid, SIGCONT);
	agent_end(&a);
	agent_end(&b);

	lm_watch_close(w);
	lm_disconnect(c);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- never a missed change, under churn --------------------------- */

enum { NWRITERS = 16, NWATCHERS = 8, NKILLS = 8, MIN_ROUNDS = 1200 };

struct churn {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int stop;            /* writers: finish the round and exit */
	_Atomic int victim;          /* writer index + 1 asked to die */
	_Atomic int ready_to_die[NWRITERS];
	_Atomic uint64_t grants[NWRITERS];
	_Atomic uint64_t releases[NWRITERS];
	_Atomic int errors;
	_Atomic int watching;        /* watchers with their watch open */
	_Atomic uint64_t target;     /* the version delta, once known */
	_Atomic uint64_t summed[NWATCHERS];
	_Atomic uint64_t events[NWATCHERS];
	_Atomic uint64_t died_seen[NWATCHERS];
	_Atomic int bad_step[NWATCHERS];
	uint32_t v0;                 /* the lock's version before writers */
};

static struct churn *ch;

static void churn_writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	lm_client *c = connect_or_fail();
	while (!atomic_load(&ch->stop)) {
		lm_grant g;
		int rc = lm_acquire(c, "churn", 10000, 20000, &g);
		if (rc != 0) {
			fprintf(stderr, "writer %d: acquire: %s\n", id,
				lm_strerror(rc));
			atomic_fetch_add(&ch->errors, 1);
			break;
		}
		atomic_fetch_add(&ch->grants[id], 1);
		int me = id + 1;
		if (atomic_compare_exchange_strong(&ch->victim, &me, 0)) {
			/* Die holding a counted grant: the supervisor's free
			 * is the one change we do not count ourselves. */
			atomic_store(&ch->ready_to_die[id], 1);
			for (;;)
				pause();
		}
		rc = lm_release(c, &g);
		if (rc != 0) {
			fprintf(stderr, "writer %d: release: %s\n", id,
				lm_strerror(rc));
			atomic_fetch_add(&ch->errors, 1);
			break;
		}
		atomic_fetch_add(&ch->releases[id], 1);
	}
	lm_disconnect(c);
}

static void churn_watcher(void *arg)
{
	int id = (int)(intptr_t)arg;
	lm_client *c = connect_or_fail();
	lm_watch_event ev;
	lm_watch *w = watch_or_fail(c, "churn", &ev);
	uint64_t version = ev.version, sum = 0;
	atomic_fetch_add(&ch->watching, 1);
	int64_t deadline = harness_now_ms() + 50000;
	for (;;) {
		uint64_t target = atomic_load(&ch->target);
		if (target != 0 && sum >= target)
			break;
		if (harness_now_ms() > deadline)
			fail_msg("watcher %d: %llu changes summed in 50 s, the "
				 "lock moved %llu", id,
				 (unsigned long long)sum,
				 (unsigned long long)target);
		int rc = lm_watch_next(w, 100, &ev);
		if (rc == LM_ETIMEDOUT)
			continue;
		if (rc != 0)
			fail_msg("watcher %d: %s", id, lm_strerror(rc));
		/* Every step covered, none counted twice. */
		if (ev.changes == 0 || ev.version != version + ev.changes)
			atomic_fetch_add(&ch->bad_step[id], 1);
		version = ev.version;
		sum += ev.changes;
		atomic_store(&ch->summed[id], sum);
		atomic_fetch_add(&ch->events[id], 1);
		if (ev.what == LM_WATCH_DIED)
			atomic_fetch_add(&ch->died_seen[id], 1);
	}
	/* Nothing more moves: a watcher past the target would show it. */
	if (lm_watch_next(w, 0, &ev) != LM_ETIMEDOUT)
		atomic_fetch_add(&ch->bad_step[id], 1);
	lm_watch_close(w);
	lm_disconnect(c);
}

static uint64_t churn_rounds(void)
{
	uint64_t n = 0;
	for (int i = 0; i < NWRITERS; i++)
		n += atomic_load(&ch->releases[i]);
	return n;
}

static void never_a_missed_change(void)
{
	harness_lockmgrd_start(&d, "churn", "--max-ttl", "20000", NULL);
	ch = harness_shared(sizeof(*ch));
	struct lm_region r;
	harness_attach(d.region, &r);
	pid_t watchers[NWATCHERS], writers[NWRITERS];
	for (int i = 0; i < NWATCHERS; i++)
		watchers[i] = harness_fork(churn_watcher, (void *)(intptr_t)i);
	HARNESS_WAIT_FOR(atomic_load(&ch->watching) == NWATCHERS, 10000,
			 "%d of %d watchers opened their watch within 10 s",
			 atomic_load(&ch->watching), NWATCHERS);
	/* Nothing changes the lock until the writers start. */
	ch->v0 = region_version(&r, "churn");
	for (int i = 0; i < NWRITERS; i++)
		writers[i] = harness_fork(churn_writer, (void *)(intptr_t)i);

	/* Kill NKILLS writers, each holding a grant it has counted, and
	 * start another in its place, while the others churn. */
	int kills = 0;
	for (int k = 0; k < NKILLS; k++) {
		uint64_t before = churn_rounds();
		HARNESS_WAIT_FOR(churn_rounds() >= before + 50, 20000,
				 "the writers made %llu rounds in 20 s",
				 (unsigned long long)(churn_rounds() - before));
		int v = (k * 5) % NWRITERS;
		atomic_store(&ch->victim, v + 1);
		HARNESS_WAIT_FOR(atomic_load(&ch->ready_to_die[v]), 20000,
				 "writer %d did not take the lock (to die "
				 "holding it) within 20 s", v);
		kill(writers[v], SIGKILL);
		harness_reap(writers[v], 5000, "SIGKILLed writer");
		kills++;
		atomic_store(&ch->ready_to_die[v], 0);
		writers[v] = harness_fork(churn_writer, (void *)(intptr_t)v);
	}
	HARNESS_WAIT_FOR(churn_rounds() >= MIN_ROUNDS, 40000,
			 "the writers made %llu of %d rounds in 40 s",
			 (unsigned long long)churn_rounds(), MIN_ROUNDS);
	atomic_store(&ch->stop, 1);
	for (int i = 0; i < NWRITERS; i++)
		harness_expect_exit(writers[i], 30000, 0, "writer");
	assert_int_equal(atomic_load(&ch->errors), 0);

	/* Every writer has released and exited, every dead one's grant was
	 * freed (it is the next writer's grant that waited for it). */
	uint64_t grants = 0, releases = 0;
	for (int i = 0; i < NWRITERS; i++) {
		grants += atomic_load(&ch->grants[i]);
		releases += atomic_load(&ch->releases[i]);
	}
	assert_int_equal(grants, releases + (uint64_t)kills);
	uint32_t delta = region_version(&r, "churn") - ch->v0;
	fprintf(stderr,
		"  %llu grants, %llu releases, %d deaths; version moved %u\n",
		(unsigned long long)grants, (unsigned long long)releases,
		kills, delta);
	/* At least once per change: a watch may tell of a change that no
	 * writer counted (such as an attempt that held a majority but never
	 * verified: its give-back is announced, since a watcher could have
	 * seen it as the holder, grant.c), but it may never miss one. One
	 * extra in 14,798 was seen under ASan on a loaded host. The
	 * watchers below must then sum every step. */
	uint64_t changes = grants + releases + (uint64_t)kills;
	if (delta < changes || delta > changes + changes / 100)
		fail_msg("the lock's version moved %u for %llu grants, %llu "
			 "releases and %d deaths (%llu changes)",
			 delta, (unsigned long long)grants,
			 (unsigned long long)releases, kills,
			 (unsigned long long)changes);
	if (delta != changes)
		fprintf(stderr, "  %llu change(s) more than the writers "
			"counted\n", (unsigned long long)(delta - changes));
	atomic_store(&ch->target, delta);
	for (int i = 0; i < NWATCHERS; i++)
		harness_expect_exit(watchers[i], 60000, 0, "watcher");
	for (int i = 0; i < NWATCHERS; i++) {
		uint64_t sum = atomic_load(&ch->summed[i]);
		fprintf(stderr,
			"  watcher %d: %llu events covering %llu changes, "
			"%llu deaths reported\n",
			i, (unsigned long long)atomic_load(&ch->events[i]),
			(unsigned long long)sum,
			(unsigned long long)atomic_load(&ch->died_seen[i]));
		if (sum != delta)
			fail_msg("watcher %d summed %llu changes; the lock "
				 "moved %u", i, (unsigned long long)sum, delta);
		if (atomic_load(&ch->bad_step[i]) != 0)
			fail_msg("watcher %d: %d event(s) whose version did "
				 "not follow the last by its changes", i,
				 atomic_load(&ch->bad_step[i]));
	}
	lm_region_detach(&r);
	harness_shared_free(ch, sizeof(*ch));
	harness_lockmgrd_stop(&d);
}

/* ---- a blocked watcher wakes -------------------------------------- */

/* pid is asleep in the futex system call (its main thread). */
static bool in_futex(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if (harness_read_file(path, buf, sizeof(buf)) <= 0)
		return harness_proc_state(pid) == 'S';
	return atoi(buf) == SYS_futex && harness_proc_state(pid) == 'S';
}

struct blocked {
	int ready[2];  /* the watcher: "about to block" */
	int done[2];   /* the watcher: its event */
};

static void blocked_watcher(void *arg)
{
	struct blocked *b = arg;
	lm_client *c = connect_or_fail();
	lm_watch *w = watch_or_fail(c, "blocked", NULL);
	if (write(b->ready[1], "r", 1) != 1)
		fail_msg("write: %s", strerror(errno));
	lm_watch_event ev;
	int rc = lm_watch_next(w, -1, &ev);
	if (rc != 0)
		fail_msg("lm_watch_next(-1): %s", lm_strerror(rc));
	if (write(b->done[1], &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
		fail_msg("write: %s", strerror(errno));
	lm_watch_close(w);
	lm_disconnect(c);
}

static void wakes_while_blocked(void)
{
	harness_lockmgrd_start(&d, "blocked", "--max-ttl", "10000", NULL);
	struct blocked b;
	if (pipe(b.ready) != 0 || pipe(b.done) != 0)
		fail_msg("pipe: %s", strerror(errno));
	pid_t p = harness_fork(blocked_watcher, &b);
	harness_read_byte(b.ready[0], 10000, "the watcher to open its watch");
	HARNESS_WAIT_FOR(in_futex(p), 10000,
			 "the watcher did not block in lm_watch_next within "
			 "10 s");
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = lm_acquire(c, "blocked", 5000, 5000, &g);
	assert_int_equal(rc, 0);
	struct pollfd pf = { .fd = b.done[0], .events = POLLIN };
	if (poll(&pf, 1, 10000) != 1)
		fail_msg("a watcher blocked in lm_watch_next(-1) did not "
			 "return within 10 s of a grant");
	lm_watch_event ev;
	assert_int_equal(read(b.done[0], &ev, sizeof(ev)), sizeof(ev));
	expect_event(&ev, LM_WATCH_GRANTED, getpid(), g.token, LM_MODE_X, 1,
		     "blocked watcher");
	harness_expect_exit(p, 10000, 0, "blocked watcher");
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
}

/* ---- lm_watch_fd, poll, timeouts ---------------------------------- */

static bool readable(int fd, int timeout_ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int n;
	do
		n = poll(&pf, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n == 1 && (pf.revents & POLLIN);
}

static void watch_fd_and_timeouts(void)
{
	harness_lockmgrd_start(&d, "wfd", "--max-ttl", "10000", NULL);
	lm_client *c = connect_or_fail();
	lm_watch *w = watch_or_fail(c, "wfd", NULL);
	lm_watch_event ev;
	/* Nothing changed: no event, whether asked at once or after a
	 * wait. */
	assert_int_equal(lm_watch_next(w, 0, &ev), LM_ETIMEDOUT);
	assert_int_equal(lm_watch_next(w, 50, &ev), LM_ETIMEDOUT);
	int fd = lm_watch_fd(w);
	if (fd < 0)
		fail_msg("lm_watch_fd: %s", lm_strerror(fd));
	assert_int_equal(lm_watch_fd(w), fd); /* the same one each time */
	assert_false(readable(fd, 0));

	struct agent a;
	agent_start(&a, "wfd");
	struct reply g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	if (!readable(fd, 5000))
		fail_msg("lm_watch_fd not readable within 5 s of a grant");
	assert_int_equal(lm_watch_next(w, 0, &ev), 0);
	expect_event(&ev, LM_WATCH_GRANTED, a.pid, g.token, LM_MODE_X, 1,
		     "after poll");
	assert_int_equal(lm_watch_next(w, 0, &ev), LM_ETIMEDOUT);
	assert_false(readable(fd, 0));

	/* Two changes before we look: one event, two changes. */
	agent_ok(&a, OP_RELEASE, 0, 0, 0);
	g = agent_ok(&a, OP_ACQUIRE, LM_MODE_X, 5000, 5000);
	if (!readable(fd, 5000))
		fail_msg("lm_watch_fd not readable within 5 s of a release");
	uint32_t sum = 0;
	while (sum < 2) {
		next_or_fail(w, 5000, &ev, "a release and a grant");
		sum += ev.changes;
	}
	assert_int_equal(sum, 2);
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	assert_int_equal(ev.token, g.token);
	assert_int_equal(lm_watch_next(w, 0, &ev), LM_ETIMEDOUT);
	agent_ok(&a, OP_RELEASE, 0, 0, 0);
	agent_end(&a);
	lm_watch_close(w);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
}

/* ---- pins: at most 16, and a watched name stays ------------------- */

static void sixteen_watches(void)
{
	harness_lockmgrd_start(&d, "pins", "--max-ttl", "10000", NULL);
	lm_client *c = connect_or_fail();
	lm_watch *w[16];
	char name[32];
	for (int k = 0; k < 16; k++) {
		snprintf(name, sizeof(name), "pins/%d", k);
		w[k] = watch_or_fail(c, name, NULL);
	}
	lm_watch *extra = NULL;
	int rc = lm_watch_open(c, "pins/16", &extra, NULL);
	if (rc != LM_EPINS)
		fail_msg("a 17th watched name: %d (%s), expected LM_EPINS", rc,
			 lm_strerror(rc));
	/* Another client has pins of its own. */
	lm_client *c2 = connect_or_fail();
	lm_watch *w2 = watch_or_fail(c2, "pins/16", NULL);
	lm_watch_close(w2);
	lm_disconnect(c2);
	/* One closed: its pin is free again. */
	lm_watch_close(w[3]);
	w[3] = watch_or_fail(c, "pins/16", NULL);
	for (int k = 0; k < 16; k++)
		lm_watch_close(w[k]);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
}

enum { RECLAIM_SLOTS = 64 };

static void watched_name_not_reclaimed(void)
{
	char slots[16];
	snprintf(slots, sizeof(slots), "%d", RECLAIM_SLOTS);
	harness_lockmgrd_start(&d, "reclaim", "--max-ttl", "10000",
			       "--max-locks", slots, NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c = connect_or_fail();
	lm_watch *w = watch_or_fail(c, "keep", NULL);
	int64_t keep = lm_name_lookup(&r, "keep", 4, 0);
	assert_true(keep >= 0);
	uint64_t life = atomic_load(lm_name_life(&r, (uint32_t)keep));
	/* Ten times as many other names as the table has slots: every slot
	 * nothing holds, waits on or watches is reclaimed, again and
	 * again. */
	char name[32];
	for (int k = 0; k < 10 * RECLAIM_SLOTS; k++) {
		snprintf(name, sizeof(name), "fill/%d", k);
		lm_grant g;
		int rc = lm_acquire(c, name, 5000, 5000, &g);
		if (rc != 0)
			fail_msg("acquire %s (slots all reused?): %s", name,
				 lm_strerror(rc));
		assert_int_equal(lm_release(c, &g), 0);
	}
	/* Names were reclaimed (the table is full of fill/N), not keep. */
	assert_true(lm_names_in_use(&r) <= (uint32_t)RECLAIM_SLOTS);
	assert_true(lm_name_lookup(&r, "fill/0", 6, 0) < 0);
	lm_watch_event ev;
	int rc = lm_watch_next(w, 0, &ev);
	if (rc != LM_ETIMEDOUT)
		fail_msg("the watch of keep reported %s (pid %d, token %llu) "
			 "while only other names changed",
			 what_name(ev.what), (int)ev.pid,
			 (unsigned long long)ev.token);
	assert_int_equal(lm_name_lookup(&r, "keep", 4, 0), keep);
	assert_int_equal(atomic_load(lm_name_life(&r, (uint32_t)keep)), life);
	/* And it still follows keep. */
	lm_grant g;
	assert_int_equal(lm_acquire(c, "keep", 5000, 5000, &g), 0);
	next_or_fail(w, 5000, &ev, "keep's grant, after the reclaims");
	expect_event(&ev, LM_WATCH_GRANTED, getpid(), g.token, LM_MODE_X, 1,
		     "keep after the reclaims");
	assert_int_equal(lm_release(c, &g), 0);
	lm_watch_close(w);
	lm_disconnect(c);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- a watch counts from when it opened --------------------------- */

static void counts_from_open(void)
{
	harness_lockmgrd_start(&d, "fromopen", "--max-ttl", "10000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c = connect_or_fail();
	/* An early watch, so that the changes before the second one's
	 * open really move the lock's version. */
	lm_watch_event ev1, ev2;
	lm_watch *early = watch_or_fail(c, "fromopen", &ev1);
	assert_int_equal(ev1.version, region_version(&r, "fromopen"));
	lm_grant g;
	for (int k = 0; k < 5; k++) {
		assert_int_equal(lm_acquire(c, "fromopen", 5000, 0, &g), 0);
		assert_int_equal(lm_release(c, &g), 0);
	}
	uint32_t v = region_version(&r, "fromopen");
	assert_int_equal(v - (uint32_t)ev1.version, 10);
	lm_watch *late = watch_or_fail(c, "fromopen", &ev2);
	assert_int_equal(ev2.what, LM_WATCH_NONE);
	/* The lock's version, not a count of this watch's own. */
	assert_int_equal(ev2.version, v);
	assert_int_equal(lm_watch_next(late, 0, &ev2), LM_ETIMEDOUT);
	assert_int_equal(lm_acquire(c, "fromopen", 5000, 0, &g), 0);
	next_or_fail(late, 5000, &ev2, "the grant after the late open");
	expect_event(&ev2, LM_WATCH_GRANTED, getpid(), g.token, LM_MODE_X, 1,
		     "late watch: only the change after its open");
	assert_int_equal(ev2.version, v + 1);
	/* The early watch covers all eleven, and reaches the same version. */
	next_or_fail(early, 5000, &ev1, "the early watch's changes");
	assert_int_equal(ev1.changes, 11);
	assert_int_equal(ev1.version, ev2.version);
	assert_int_equal(lm_release(c, &g), 0);
	lm_watch_close(early);
	lm_watch_close(late);
	lm_disconnect(c);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- lockctl watch ------------------------------------------------ */

static int count_lines(const char *path)
{
	char buf[8192];
	if (harness_read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	int n = 0;
	for (char *p = buf; *p; p++)
		n += *p == '\n';
	return n;
}

/* The value of "key": in a JSON line (up to the next , or }), or NULL. */
static const char *json_field(const char *line, const char *key, char *out,
			      size_t n)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(line, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	size_t k = 0;
	bool quoted = *p == '"';
	if (quoted)
		p++;
	while (*p && k + 1 < n &&
	       (quoted ? *p != '"' : (*p != ',' && *p != '}')))
		out[k++] = *p++;
	out[k] = '\0';
	return out;
}

static void expect_field(const char *line, const char *key, const char *want)
{
	char v[128];
	if (json_field(line, key, v, sizeof(v)) == NULL)
		fail_msg("no \"%s\" in %s", key, line);
	if (want != NULL && strcmp(v, want) != 0)
		fail_msg("\"%s\" is %s, expected %s, in %s", key, v, want,
			 line);
}

static void lockctl_watch_json(void)
{
	harness_lockmgrd_start(&d, "ctlwatch", "--max-ttl", "10000", NULL);
	char dir[256], out[512], err[512], lockctl[512];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	char *argv[] = { lockctl, "-r", d.region, "watch", "--json",
			 "--count", "3", "--timeout", "20000", "ctl/w",
			 NULL };
	pid_t p = harness_spawn(argv, out, err);
	/* Its first line says how the lock is now: the watch is open. */
	HARNESS_WAIT_FOR(count_lines(out) >= 1, 10000,
			 "lockctl watch printed no first line within 10 s");
	lm_client *c = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(c, "ctl/w", 5000, 0, &g), 0);
	/* One line per change: wait for each, so none coalesce. */
	HARNESS_WAIT_FOR(count_lines(out) >= 2, 10000,
			 "lockctl watch printed no line for a grant in 10 s");
	assert_int_equal(lm_convert(c, &g, LM_MODE_S, 5000, 0), 0);
	HARNESS_WAIT_FOR(count_lines(out) >= 3, 10000,
			 "lockctl watch printed no line for a downgrade in "
			 "10 s");
	assert_int_equal(lm_release(c, &g), 0);
	harness_expect_exit(p, 10000, 0, "lockctl watch --count 3");

	char buf[8192];
	assert_true(harness_read_file(out, buf, sizeof(buf)) > 0);
	char *lines[8];
	int n = 0;
	for (char *s = strtok(buf, "\n"); s != NULL && n < 8;
	     s = strtok(NULL, "\n"))
		lines[n++] = s;
	if (n != 4)
		fail_msg("lockctl watch --count 3 printed %d lines, expected "
			 "the now line and 3 changes", n);
	char pid[16], tok[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(tok, sizeof(tok), "%llu", (unsigned long long)g.token);
	static const char *const events[] = { "now", "granted", "granted",
					      "released" };
	static const char *const modes[] = { NULL, "X", "S", "S" };
	static const char *const holders[] = { "0", "1", "1", "0" };
	for (int k = 0; k < n; k++) {
		const char *l = lines[k];
		if (l[0] != '{' || l[strlen(l) - 1] != '}')
			fail_msg("not a JSON object: %s", l);
		expect_field(l, "time", NULL);
		expect_field(l, "lock", "ctl/w");
		expect_field(l, "event", events[k]);
		expect_field(l, "version", NULL);
		expect_field(l, "changes", k == 0 ? "0" : "1");
		expect_field(l, "holders", holders[k]);
		if (k == 0)
			continue;
		expect_field(l, "pid", pid);
		expect_field(l, "mode", modes[k]);
		expect_field(l, "token", tok);
	}
	expect_field(lines[1], "holder_pid", pid);
	expect_field(lines[1], "held_mode", "X");
	expect_field(lines[2], "held_mode", "S");
	/* Versions follow each other. */
	char v0[32], v3[32];
	json_field(lines[0], "version", v0, sizeof(v0));
	json_field(lines[3], "version", v3, sizeof(v3));
	assert_int_equal(strtoull(v3, NULL, 10) - strtoull(v0, NULL, 10), 3);

	/* --timeout with nothing changing: 75. */
	char *argv2[] = { lockctl, "-r", d.region, "watch", "--timeout",
			  "200", "ctl/quiet", NULL };
	int st = harness_run(argv2, out, err, 10000);
	if (st != 75)
		fail_msg("lockctl watch --timeout 200 on a quiet lock: exit %d, "
			 "expected 75", st);
	assert_int_equal(count_lines(out), 1);
	/* --count 1 --timeout with a change: 0. */
	char *argv3[] = { lockctl, "-r", d.region, "watch", "--count", "1",
			  "--timeout", "20000", "ctl/quiet", NULL };
	/* A file of its own: the old one's lines would pass for its first
	 * line before it truncated it. */
	snprintf(out, sizeof(out), "%s/out3", dir);
	p = harness_spawn(argv3, out, err);
	HARNESS_WAIT_FOR(count_lines(out) >= 1, 10000,
			 "lockctl watch printed no first line within 10 s");
	assert_int_equal(lm_acquire(c, "ctl/quiet", 5000, 0, &g), 0);
	harness_expect_exit(p, 10000, 0, "lockctl watch --count 1");
	assert_int_equal(lm_release(c, &g), 0);
	assert_true(harness_read_file(out, buf, sizeof(buf)) > 0);
	if (strstr(buf, " granted pid=") == NULL)
		fail_msg("lockctl watch printed no granted line: %s", buf);
	/* SIGTERM ends it, exit 0 (it reads the signal from a signalfd:
	 * no thread of the library may take it first), also one sent as
	 * soon as its first line is out: stopped right after printing it,
	 * it is sent SIGTERM, which must wait for it, not kill it. */
	char *argv4[] = { lockctl, "-r", d.region, "watch", "ctl/quiet",
			  NULL };
	snprintf(out, sizeof(out), "%s/out4", dir);
	char log[256];
	harness_pause_arm("lockctl.watch_printed", log, sizeof(log));
	p = harness_spawn(argv4, out, err);
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "lockctl.watch_printed",
					     10000), p);
	assert_int_equal(count_lines(out), 1);
	kill(p, SIGTERM);
	harness_resume(p);
	harness_expect_exit(p, 10000, 0, "lockctl watch after SIGTERM");
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(each_kind_of_change, 60)
HARNESS_CASE(never_a_missed_change, 120)
HARNESS_CASE(wakes_while_blocked, 60)
HARNESS_CASE(watch_fd_and_timeouts, 60)
HARNESS_CASE(sixteen_watches, 60)
HARNESS_CASE(watched_name_not_reclaimed, 60)
HARNESS_CASE(counts_from_open, 60)
HARNESS_CASE(lockctl_watch_json, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(each_kind_of_change),
		harness_case(never_a_missed_change),
		harness_case(wakes_while_blocked),
		harness_case(watch_fd_and_timeouts),
		harness_case(sixteen_watches),
		harness_case(watched_name_not_reclaimed),
		harness_case(counts_from_open),
		harness_case(lockctl_watch_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
