/*
 * test_modes_faults.c - counted holders (S, IS, IX, SIX) under faults and
 * exact interleavings, with a real lockmgrd and real client processes.
 *
 * Every client is an "actor": a forked process with its own session that
 * does what the case posts to it (acquire, renew, release), one command
 * at a time, and records each grant in a ledger in shared memory: the
 * token, when lm_acquire returned, the grant's valid_until_ns, and when
 * the holder let go (lm_release called, or killed by the case). At the
 * end of each case the ledger is checked: two grants of conflicting
 * modes to different sessions never held at once, each interval being
 * [acquire returned, min(let go, valid_until)). A pause point
 * (shm/test_hook.h) stops an actor at one exact step of the grant
 * protocol; the case makes the others act, then resumes it.
 *
 * Each case says what it would catch; the mutation named there (a change
 * of the protocol code) makes it fail.
 *
 *   MFTEST_FILTER=GLOB  run only the matching cases, e.g. '*phantom*'
 */
#include "harness.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/internal.h"
#include "client/lockmgr.h"
#include "shm/clock.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* ---- the world: actors and the ledger ----------------------------- */

enum { MAX_ACTORS = 10, MAX_ENTRIES = 4096 };

enum act { ACT_NONE, ACT_ACQUIRE, ACT_RENEW, ACT_RELEASE, ACT_QUIT };

#define RC_PENDING 1 /* no answer yet (LM_* codes are 0 or negative) */

struct entry {
	int actor;
	uint32_t mode;
	uint64_t token;
	int64_t got_ns;            /* lm_acquire returned */
	_Atomic int64_t valid_ns;  /* valid_until_ns (raised by a renew) */
	_Atomic int64_t gone_ns;   /* release called / killed; INT64_MAX */
};

struct actor {
	int id;
	char label[16];
	char log[256];             /* pause log ("" if not armed) */
	pid_t pid;
	_Atomic int connected;
	_Atomic int session;       /* its session slot */
	_Atomic int cmd_seq, done_seq;
	int cmd;
	uint32_t mode;
	int64_t ttl_ms, wait_ms;
	_Atomic int rc;
	_Atomic int entry;         /* ledger index of its grant, or -1 */
	_Atomic uint64_t token;
	_Atomic uint32_t mask;     /* tables its grant holds */
	_Atomic int64_t valid_ns, got_ns, started_ns;
};

struct world {
	char region[LM_REGION_NAME_MAX + 2];
	char name[64];             /* the lock every actor takes */
	struct actor a[MAX_ACTORS];
	int nactors;
	_Atomic int nentries;
	struct entry e[MAX_ENTRIES];
};

static struct harness_lockmgrd d;
static struct lm_region r;
static struct world *w;

static const char *mname(uint32_t m)
{
	static const char *const n[] = {"X", "S", "IS", "IX", "SIX"};
	return m < 5 ? n[m] : "?";
}

/* Gray's table, written out here rather than taken from the code under
 * test. Index: LM_MODE_*. */
static bool conflict(uint32_t a, uint32_t b)
{
	static const int ok[5][5] = {
		/*          X  S  IS IX SIX */
		/* X   */ { 0, 0, 0, 0, 0 },
		/* S   */ { 0, 1, 1, 0, 0 },
		/* IS  */ { 0, 1, 1, 1, 1 },
		/* IX  */ { 0, 0, 1, 1, 0 },
		/* SIX */ { 0, 0, 1, 0, 0 },
	};
	return !ok[a][b];
}

static int take(lm_client *c, const char *name, uint32_t mode,
		int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	lm_acquire_opts o = LM_ACQUIRE_OPTS(mode, ttl_ms, wait_ms);
	return lm_acquire_ex(c, name, &o, g);
}

static void actor_main(void *arg)
{
	struct actor *a = arg;
	lm_client *c = NULL;
	int rc = lm_connect(w->region, &c);
	if (rc != 0)
		fail_msg("%s: lm_connect: %s", a->label, lm_strerror(rc));
	atomic_store(&a->session, (int)c->ctx.session);
	atomic_store(&a->connected, 1);
	lm_grant g;
	int seen = 0;
	for (;;) {
		/* Waiting for the case's next command (not a stand-in for
		 * synchronisation: the command is the synchronisation). */
		HARNESS_WAIT_FOR(atomic_load(&a->cmd_seq) != seen, 40000,
				 "%s: no command from the case for 40 s",
				 a->label);
		seen = atomic_load(&a->cmd_seq);
		switch (a->cmd) {
		case ACT_ACQUIRE: {
			atomic_store(&a->started_ns, harness_now_ns());
			rc = take(c, w->name, a->mode, a->ttl_ms, a->wait_ms,
				  &g);
			int64_t got = harness_now_ns();
			if (rc == 0) {
				int k = atomic_fetch_add(&w->nentries, 1);
				assert_true(k < MAX_ENTRIES);
				struct entry *e = &w->e[k];
				e->actor = a->id;
				e->mode = g.mode;
				e->token = g.token;
				e->got_ns = got;
				atomic_store(&e->valid_ns, g.valid_until_ns);
				atomic_store(&e->gone_ns, INT64_MAX);
				atomic_store(&a->entry, k);
				atomic_store(&a->token, g.token);
				atomic_store(&a->mask, G_MASK(&g));
				atomic_store(&a->valid_ns, g.valid_until_ns);
				atomic_store(&a->got_ns, got);
				if (g.mode != a->mode)
					fail_msg("%s: asked for %s, granted %s",
						 a->label, mname(a->mode),
						 mname(g.mode));
			}
			break;
		}
		case ACT_RENEW: {
			rc = lm_renew(c, &g, a->ttl_ms);
			int k = atomic_load(&a->entry);
			if (rc == 0 && k >= 0) {
				atomic_store(&w->e[k].valid_ns,
					     g.valid_until_ns);
				atomic_store(&a->valid_ns, g.valid_until_ns);
			}
			break;
		}
		case ACT_RELEASE: {
			int k = atomic_exchange(&a->entry, -1);
			if (k >= 0)
				atomic_store(&w->e[k].gone_ns,
					     harness_now_ns());
			rc = lm_release(c, &g);
			break;
		}
		case ACT_QUIT:
			lm_disconnect(c);
			atomic_store(&a->rc, 0);
			atomic_store(&a->done_seq, seen);
			return;
		default:
			fail_msg("%s: unknown command %d", a->label, a->cmd);
		}
		atomic_store(&a->rc, rc);
		atomic_store(&a->done_seq, seen);
	}
}

/* Fork actor `label`, armed with pause points `pause` (NULL: none), and
 * wait until it has connected. */
static struct actor *actor_start(const char *label, const char *pause)
{
	assert_true(w->nactors < MAX_ACTORS);
	struct actor *a = &w->a[w->nactors];
	a->id = w->nactors++;
	snprintf(a->label, sizeof(a->label), "%s", label);
	atomic_store(&a->entry, -1);
	atomic_store(&a->rc, RC_PENDING);
	a->log[0] = '\0';
	/* Armed in our environment only for the fork: the child reads it
	 * at lm_connect; we, lockmgrd and lockctl never do. */
	if (pause != NULL)
		harness_pause_arm(pause, a->log, sizeof(a->log));
	a->pid = harness_fork(actor_main, a);
	if (pause != NULL)
		harness_pause_disarm();
	HARNESS_WAIT_FOR(atomic_load(&a->connected), 5000,
			 "actor %s never connected", label);
	return a;
}

static void actor_post(struct actor *a, int cmd, uint32_t mode,
		       int64_t ttl_ms, int64_t wait_ms)
{
	assert_true(atomic_load(&a->done_seq) == atomic_load(&a->cmd_seq));
	a->cmd = cmd;
	a->mode = mode;
	a->ttl_ms = ttl_ms;
	a->wait_ms = wait_ms;
	atomic_store(&a->rc, RC_PENDING);
	atomic_fetch_add(&a->cmd_seq, 1);
}

static bool actor_done(struct actor *a)
{
	return atomic_load(&a->done_seq) == atomic_load(&a->cmd_seq);
}

/* Wait for a's answer to its last command; its LM_* result. */
/* How long to wait for an answer that comes at once on an idle host (a
 * release's wake-up, a prompt refusal): a loaded CI host can leave the
 * actor unscheduled for seconds. Cases whose point is a time bound
 * (a dead reader freed well before its 30 s lease) stay well inside
 * it. */
#define ANSWER_MS 10000

static int actor_wait(struct actor *a, int64_t timeout_ms, const char *what)
{
	HARNESS_WAIT_FOR(actor_done(a), timeout_ms,
			 "%s: %s: no answer within %lld ms (state %c)",
			 a->label, what, (long long)timeout_ms,
			 harness_proc_state(a->pid));
	return atomic_load(&a->rc);
}

static int actor_do(struct actor *a, int cmd, uint32_t mode, int64_t ttl_ms,
		    int64_t wait_ms)
{
	actor_post(a, cmd, mode, ttl_ms, wait_ms);
	return actor_wait(a, 10000 + (wait_ms > 0 ? wait_ms : 0),
			  cmd == ACT_ACQUIRE ? "acquire"
			  : cmd == ACT_RENEW ? "renew"
					     : "release");
}

static void expect_rc(struct actor *a, int got, int want, const char *what)
{
	if (got != want)
		fail_msg("%s: %s returned %d (%s), expected %d (%s)", a->label,
			 what, got, lm_strerror(got), want, lm_strerror(want));
}

static void acquire_ok(struct actor *a, uint32_t mode, int64_t ttl_ms)
{
	int rc = actor_do(a, ACT_ACQUIRE, mode, ttl_ms, 0);
	if (rc != 0)
		fail_msg("%s: %s on %s: %s", a->label, mname(mode), w->name,
			 lm_strerror(rc));
}

static void release_ok(struct actor *a)
{
	expect_rc(a, actor_do(a, ACT_RELEASE, 0, 0, 0), 0, "lm_release");
}

/* SIGKILL a and reap it; its grant, if any, ends now. */
static void actor_kill(struct actor *a)
{
	int k = atomic_exchange(&a->entry, -1);
	if (k >= 0)
		atomic_store(&w->e[k].gone_ns, harness_now_ns());
	kill(a->pid, SIGKILL);
	harness_reap(a->pid, 5000, a->label);
	a->pid = 0;
}

static void actor_quit(struct actor *a)
{
	if (a->pid == 0)
		return;
	if (harness_proc_state(a->pid) == 'T')
		kill(a->pid, SIGCONT);
	actor_post(a, ACT_QUIT, 0, 0, 0);
	harness_expect_exit(a->pid, 10000, 0, a->label);
	a->pid = 0;
}

static void stop_actor(struct actor *a)
{
	kill(a->pid, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(a->pid) == 'T', 5000,
			 "%s never stopped after SIGSTOP", a->label);
}

/* How many times the actor logged `point` in its pause log. */
static int pause_hits(const struct actor *a, const char *point)
{
	char buf[4096];
	if (a->log[0] == '\0' ||
	    harness_read_file(a->log, buf, sizeof(buf)) < 0)
		return 0;
	size_t len = strlen(point);
	int n = 0;
	for (char *line = buf; *line != '\0';) {
		if (strncmp(line, point, len) == 0 && line[len] == ' ')
			n++;
		char *next = strchr(line, '\n');
		if (next == NULL)
			break;
		line = next + 1;
	}
	return n;
}

/* Wait until a is stopped at its n-th hit of point. */
static void wait_paused(struct actor *a, const char *point, int n)
{
	HARNESS_WAIT_FOR(pause_hits(a, point) >= n &&
				 harness_proc_state(a->pid) == 'T',
			 5000, "%s never stopped at %s (hit %d; it answered: "
			 "%s)",
			 a->label, point, n,
			 actor_done(a) ? lm_strerror(atomic_load(&a->rc))
				       : "nothing yet");
}

/* ---- the region as the tables show it ----------------------------- */

static void start_service(const char *tag, const char *name,
			  const char *extra1, const char *extra2)
{
	harness_lockmgrd_start(&d, tag, "--max-ttl", "60000", extra1, extra2,
			       NULL);
	harness_attach(d.region, &r);
	w = harness_shared(sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->region, sizeof(w->region), "%s", d.region);
}

static uint32_t lock_idx(void)
{
	int64_t idx = lm_name_lookup(&r, w->name, strlen(w->name), 0);
	if (idx < 0)
		fail_msg("lock %s has no name slot", w->name);
	return (uint32_t)idx;
}

static struct lm_slot *slot(unsigned table)
{
	return lm_slot_of(&r, table, lock_idx());
}

static uint64_t group(unsigned table)
{
	return atomic_load(&slot(table)->shared);
}

static unsigned main_count(unsigned table)
{
	return LM_GROUP_MAIN(group(table));
}

/* Is a's session queued for the lock? */
static bool queued(struct actor *a)
{
	uint32_t on = atomic_load(&r.sessions[atomic_load(&a->session)]
					   .waiting_on);
	return LM_WAIT_LOCK(on) == lock_idx() + 1;
}

static void wait_queued(struct actor *a)
{
	HARNESS_WAIT_FOR(queued(a) || actor_done(a), 5000,
			 "%s never queued for %s", a->label, w->name);
	if (actor_done(a))
		fail_msg("%s answered %d (%s) where it should wait for %s",
			 a->label, atomic_load(&a->rc),
			 lm_strerror(atomic_load(&a->rc)), w->name);
}

/* Wait until every table's main group counts n holders. */
static void wait_main_count(unsigned n, int64_t timeout_ms, const char *why)
{
	HARNESS_WAIT_FOR(main_count(0) == n && main_count(1) == n &&
				 main_count(2) == n,
			 timeout_ms, "%s: the group counts %u/%u/%u holders on "
			 "tables 0/1/2, expected %u", why, main_count(0),
			 main_count(1), main_count(2), n);
}

/* Local time (ns) at which table i's lease word expires by its server's
 * clock. */
static int64_t lease_end_local_ns(unsigned i)
{
	uint64_t lease = atomic_load(&slot(i)->lease);
	int64_t now = harness_now_ns();
	int64_t srv_now = lm_server_clock_ms(r.servers[i], now);
	return now + (LM_LEASE_EXPIRY(lease) - srv_now) * 1000000;
}

/* Wait until server i has swept its table at least twice from now (its
 * heartbeat, stored each tick just before the sweep, moved 3 times). */
static void wait_server_sweeps(unsigned i)
{
	for (int k = 0; k < 3; k++) {
		int64_t hb = atomic_load(&r.servers[i]->heartbeat_ms);
		HARNESS_WAIT_FOR(atomic_load(&r.servers[i]->heartbeat_ms) != hb,
				 2000, "server %u stopped beating", i);
	}
}

/* ---- the ledger --------------------------------------------------- */

/*
 * No two grants of conflicting modes, to different actors, held at
 * once. Intervals are [acquire returned, min(let go, valid_until)):
 * inside what each holder could rely on, so an overlap is a real one.
 */
static void check_ledger(void)
{
	int n = atomic_load(&w->nentries);
	for (int i = 0; i < n; i++) {
		struct entry *a = &w->e[i];
		int64_t a_end = atomic_load(&a->gone_ns);
		if (atomic_load(&a->valid_ns) < a_end)
			a_end = atomic_load(&a->valid_ns);
		for (int j = i + 1; j < n; j++) {
			struct entry *b = &w->e[j];
			if (a->actor == b->actor)
				continue;
			if (a->token == b->token)
				fail_msg("%s (%s) and %s (%s) were granted the "
					 "same token %llu",
					 w->a[a->actor].label, mname(a->mode),
					 w->a[b->actor].label, mname(b->mode),
					 (unsigned long long)a->token);
			if (!conflict(a->mode, b->mode))
				continue;
			int64_t b_end = atomic_load(&b->gone_ns);
			if (atomic_load(&b->valid_ns) < b_end)
				b_end = atomic_load(&b->valid_ns);
			if (a->got_ns < b_end && b->got_ns < a_end)
				fail_msg("SAFETY: %s held %s (token %llu) and %s "
					 "held %s (token %llu) at once, for "
					 "%.1f ms", w->a[a->actor].label,
					 mname(a->mode),
					 (unsigned long long)a->token,
					 w->a[b->actor].label, mname(b->mode),
					 (unsigned long long)b->token,
					 ((a_end < b_end ? a_end : b_end) -
					  (a->got_ns > b->got_ns ? a->got_ns
								 : b->got_ns)) /
						 1e6);
			/* Conflicting grants: tokens in grant order. */
			struct entry *first = a->got_ns < b->got_ns ? a : b;
			struct entry *second = first == a ? b : a;
			if (second->token <= first->token)
				fail_msg("%s's %s (token %llu) came after %s's "
					 "%s (token %llu): tokens must grow",
					 w->a[second->actor].label,
					 mname(second->mode),
					 (unsigned long long)second->token,
					 w->a[first->actor].label,
					 mname(first->mode),
					 (unsigned long long)first->token);
		}
	}
}

static void finish(void)
{
	for (int i = 0; i < w->nactors; i++)
		actor_quit(&w->a[i]);
	check_ledger();
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

/* ---- 1. SIGKILL of a reader ---------------------------------------- */

/*
 * A reader holding S for 30 s is killed; a writer waiting for X gets the
 * lock within its 10 s wait, because the supervisor leaves the dead session's
 * group through its join records (grant.c, leave_recorded), not when the
 * 30 s lease ends. Catches: a dead reader's count left in the group
 * (mutation: lm_free_session_grants skips leave_recorded -> the writer
 * waits out the lease and its 10 s wait ends first).
 */
static void reader_killed_writer_gets_in(void)
{
	start_service("mfkill", "mf/kill", NULL, NULL);
	struct actor *a = actor_start("reader A", NULL);
	struct actor *wr = actor_start("writer W", NULL);
	acquire_ok(a, LM_MODE_S, 30000);
	wait_main_count(1, ANSWER_MS, "after A's S");
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 10000);
	wait_queued(wr);
	int64_t a_valid = atomic_load(&a->valid_ns);
	int64_t t_kill = harness_now_ns();
	actor_kill(a);
	int rc = actor_wait(wr, ANSWER_MS, "X after the only reader was killed "
				      "(its 30 s lease still runs: the "
				      "supervisor must leave its group)");
	expect_rc(wr, rc, 0, "X");
	int64_t took = atomic_load(&wr->got_ns) - t_kill;
	fprintf(stderr, "  writer in %.1f ms after the kill (A's lease had "
		"%.1f s left)\n", took / 1e6, (a_valid - t_kill) / 1e9);
	if (atomic_load(&wr->got_ns) >= a_valid)
		fail_msg("W got in only after A's lease ended");
	/* The count went with A (X holds; the group is empty). */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (!LM_GROUP_EMPTY(group(i)))
			fail_msg("table %u's group still counts %u holders "
				 "under W's X", i, main_count(i));
	release_ok(wr);
	finish();
}

/*
 * The same with three other readers holding: the dead reader's count
 * leaves at once (4 -> 3 on each table) but the writer gets in only
 * after the last of the others releases. Catches a dead reader's count
 * left behind (the wait for 3 fails) and a writer let in early, which
 * the ledger sees as an overlap (mutation: group_blocks_owner ignoring
 * a running group).
 */
static void reader_killed_among_readers(void)
{
	start_service("mfkill4", "mf/kill4", NULL, NULL);
	struct actor *rd[4];
	for (int i = 0; i < 4; i++) {
		char l[16];
		snprintf(l, sizeof(l), "reader %c", 'A' + i);
		rd[i] = actor_start(l, NULL);
		acquire_ok(rd[i], LM_MODE_S, 30000);
	}
	wait_main_count(4, ANSWER_MS, "four readers");
	struct actor *wr = actor_start("writer W", NULL);
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 15000);
	wait_queued(wr);
	actor_kill(rd[0]);
	wait_main_count(3, ANSWER_MS, "after reader A's SIGKILL (the supervisor "
				 "leaves its group)");
	for (int i = 1; i < 3; i++) {
		release_ok(rd[i]);
		wait_main_count(3 - (unsigned)i, ANSWER_MS, "after a release");
		if (actor_done(wr))
			fail_msg("W answered %d (%s) while %d reader(s) still "
				 "hold S", atomic_load(&wr->rc),
				 lm_strerror(atomic_load(&wr->rc)), 3 - i);
	}
	int last = atomic_load(&rd[3]->entry);
	release_ok(rd[3]);
	expect_rc(wr, actor_wait(wr, ANSWER_MS, "X after the last reader left"),
		  0, "X");
	if (atomic_load(&wr->got_ns) < atomic_load(&w->e[last].gone_ns))
		fail_msg("W got in before the last reader released");
	release_ok(wr);
	finish();
}

/* ---- 2, 3. SIGSTOP of a reader past its lease ---------------------- */

/*
 * Reader A holds S with a 300 ms lease and is stopped (SIGSTOP). A
 * writer waiting for X gets the lock after A's lease ends: not before
 * A's valid_until (catches a writer that ignores a running group:
 * mutation group_blocks_owner -> false), and not never (catches a group
 * whose ended lease is never reset: mutation lm_group_state never
 * ENDED). Returns A and W, W holding X.
 */
static void stopped_reader_taken_over(struct actor **pa, struct actor **pw)
{
	struct actor *a = actor_start("reader A", NULL);
	struct actor *wr = actor_start("writer W", NULL);
	acquire_ok(a, LM_MODE_S, 300);
	int64_t a_valid = atomic_load(&a->valid_ns);
	stop_actor(a);
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 5000);
	int rc = actor_wait(wr, 300 + ANSWER_MS, "X while the stopped reader's "
					    "300 ms lease ends");
	expect_rc(wr, rc, 0, "X");
	int64_t got = atomic_load(&wr->got_ns);
	fprintf(stderr, "  writer in %.1f ms after A's valid_until\n",
		(got - a_valid) / 1e6);
	if (got < a_valid)
		fail_msg("SAFETY: W got X %.1f ms before the stopped reader's "
			 "S lease ended", (a_valid - got) / 1e6);
	*pa = a;
	*pw = wr;
}

/*
 * ... then SIGCONT A: its late release says LM_ELEASELOST, and leaves
 * no mark on the group of a later generation: with a new reader holding,
 * a writer is still refused and a second reader still admitted. Catches
 * a leave that does not check the generation it joined (mutation:
 * lm_group_leave without its generation test: A's late leave takes the
 * new reader's count, and W's X is granted over it).
 */
static void stopped_reader_late_release(void)
{
	start_service("mfstop", "mf/stop", NULL, NULL);
	struct actor *a, *wr;
	stopped_reader_taken_over(&a, &wr);
	release_ok(wr);
	struct actor *r1 = actor_start("reader R1", NULL);
	acquire_ok(r1, LM_MODE_S, 5000);
	wait_main_count(1, ANSWER_MS, "R1's S");
	/* A wakes up and releases what it no longer holds. */
	actor_post(a, ACT_RELEASE, 0, 0, 0);
	harness_resume(a->pid);
	expect_rc(a, actor_wait(a, ANSWER_MS, "late release"), LM_ELEASELOST,
		  "lm_release after its lease was taken over");
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (main_count(i) != 1 ||
		    LM_GROUP_KIND(group(i)) != LM_GROUP_S)
			fail_msg("table %u: the group counts %u (kind %u) "
				 "after A's late release, R1 alone holds S",
				 i, main_count(i), LM_GROUP_KIND(group(i)));
	int rc = actor_do(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 0);
	if (rc == 0)
		fail_msg("SAFETY: W got X while R1 holds S (A's late release "
			 "lowered R1's count)");
	expect_rc(wr, rc, LM_EBUSY, "X over R1's S");
	struct actor *r2 = actor_start("reader R2", NULL);
	acquire_ok(r2, LM_MODE_S, 5000);
	release_ok(r1);
	expect_rc(wr, actor_do(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 0), LM_EBUSY,
		  "X over R2's S");
	release_ok(r2);
	acquire_ok(wr, LM_MODE_X, 5000);
	release_ok(wr);
	finish();
}

/*
 * ... or A renews after SIGCONT: LM_ELEASELOST, and W's grant is
 * untouched: W's owner word and lease stand on every table, and W's own
 * renew succeeds. Catches a late renew that writes a group lease over
 * the new holder's (mutation: lm_hold_renew without its generation test
 * and lm_group_extend without its tag test: A's renew succeeds, and W's
 * renew fails).
 */
static void stopped_reader_late_renew(void)
{
	start_service("mfrenew", "mf/renew", NULL, NULL);
	struct actor *a, *wr;
	stopped_reader_taken_over(&a, &wr);
	uint64_t owner[LM_NSERVERS], lease[LM_NSERVERS];
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		owner[i] = atomic_load(&slot(i)->owner);
		lease[i] = atomic_load(&slot(i)->lease);
	}
	actor_post(a, ACT_RENEW, 0, 5000, 0);
	harness_resume(a->pid);
	expect_rc(a, actor_wait(a, ANSWER_MS, "late renew"), LM_ELEASELOST,
		  "lm_renew after its lease was taken over");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (atomic_load(&slot(i)->owner) != owner[i] ||
		    LM_LEASE_TAG(atomic_load(&slot(i)->lease)) !=
			    LM_LEASE_TAG(lease[i]))
			fail_msg("table %u: W's owner word or lease changed "
				 "under A's late renew", i);
		if (!LM_GROUP_EMPTY(group(i)))
			fail_msg("table %u: A's late renew left a count "
				 "(%u) under W's X", i, main_count(i));
	}
	expect_rc(wr, actor_do(wr, ACT_RENEW, 0, 5000, 0), 0,
		  "W's renew after A's late one");
	struct actor *r1 = actor_start("reader R1", NULL);
	expect_rc(r1, actor_do(r1, ACT_ACQUIRE, LM_MODE_S, 5000, 0), LM_EBUSY,
		  "S over W's renewed X");
	/* A's grant is spent: its release says so, and changes nothing. */
	expect_rc(a, actor_do(a, ACT_RELEASE, 0, 0, 0), LM_ELEASELOST,
		  "release after the lost renew");
	expect_rc(wr, actor_do(wr, ACT_RENEW, 0, 5000, 0), 0, "W's renew");
	release_ok(wr);
	acquire_ok(r1, LM_MODE_S, 5000);
	release_ok(r1);
	finish();
}

/* ---- 4. interleavings with pause points --------------------------- */

/*
 * (a) Reader R stopped at "grant.group_joined" on table 0: it has
 * started a generation (lease written, then its count CASed in) but not
 * yet looked at the owner word. A writer coming now must see the count
 * under its running lease and back off (LM_EBUSY); R, resumed, is
 * granted; the writer then waits for R's release. Catches a writer that
 * does not look at the group after its owner CAS, or takes a running
 * group for an ended one (mutation: group_blocks_owner -> false: W is
 * granted over R's join).
 */
static void reader_joined_then_writer(void)
{
	start_service("mfjoin", "mf/join", NULL, NULL);
	struct actor *rd = actor_start("reader R", "grant.group_joined");
	struct actor *wr = actor_start("writer W", NULL);
	actor_post(rd, ACT_ACQUIRE, LM_MODE_S, 5000, 0);
	wait_paused(rd, "grant.group_joined", 1);
	assert_int_equal(main_count(0), 1);
	int rc = actor_do(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 0);
	if (rc == 0)
		fail_msg("W was granted X while R's count stood in table 0's "
			 "group under a running lease");
	expect_rc(wr, rc, LM_EBUSY, "X against R's join");
	/* W's owner CAS was undone: R's check of the owner word passes. */
	harness_resume(rd->pid);
	expect_rc(rd, actor_wait(rd, ANSWER_MS, "S after resuming"), 0, "S");
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 5000);
	wait_queued(wr);
	release_ok(rd);
	expect_rc(wr, actor_wait(wr, ANSWER_MS, "X after R's release"), 0, "X");
	release_ok(wr);
	finish();
}

/*
 * (a') Both have CASed on table 0, neither has checked: R stopped at
 * "grant.group_joined", W at "grant.owner_taken". R checks first: it
 * finds W's owner word (a grant in flight) and backs off, leaving the
 * group; W, resumed, finds the group empty and is granted. Never both.
 * Catches a joiner that does not look at the owner word after its join
 * (mutation: join_group without owner_clear after the group CAS: R is
 * granted while W's owner CAS stands).
 */
static void both_cased_reader_checks_first(void)
{
	start_service("mfboth", "mf/both", NULL, NULL);
	struct actor *rd = actor_start("reader R", "grant.group_joined");
	struct actor *wr = actor_start("writer W", "grant.owner_taken");
	actor_post(rd, ACT_ACQUIRE, LM_MODE_S, 5000, 0);
	wait_paused(rd, "grant.group_joined", 1);
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 0);
	wait_paused(wr, "grant.owner_taken", 1);
	assert_int_equal(LM_OWNER_SESSION(atomic_load(&slot(0)->owner)),
			 (uint32_t)atomic_load(&wr->session) + 1);
	harness_resume(rd->pid);
	int rc = actor_wait(rd, ANSWER_MS, "S with W's owner CAS in table 0");
	if (rc == 0)
		fail_msg("R was granted S while W's owner CAS stood in table "
			 "0 (R did not look at the owner word after joining)");
	expect_rc(rd, rc, LM_EBUSY, "S against W's owner CAS");
	harness_resume(wr->pid);
	rc = actor_wait(wr, ANSWER_MS, "X after R backed off");
	expect_rc(wr, rc, 0, "X");
	actor_post(rd, ACT_ACQUIRE, LM_MODE_S, 5000, 5000);
	wait_queued(rd);
	release_ok(wr);
	expect_rc(rd, actor_wait(rd, ANSWER_MS, "S after W's release"), 0, "S");
	release_ok(rd);
	finish();
}

/*
 * (b) Writer W stopped at "grant.owner_taken" on table 0 (owner CASed,
 * group not yet looked at). A reader coming now must be refused (a
 * grant is in flight there) and W, resumed, granted; the reader then
 * waits for W's release. Catches a reader that starts a generation over
 * an owner word without a lease yet (mutation: slot_takeable treating
 * an owner word without its lease as takeable: R is granted, W backs
 * off).
 */
static void writer_owner_taken_then_reader(void)
{
	start_service("mfown", "mf/own", NULL, NULL);
	struct actor *wr = actor_start("writer W", "grant.owner_taken");
	struct actor *rd = actor_start("reader R", NULL);
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 0);
	wait_paused(wr, "grant.owner_taken", 1);
	int rc = actor_do(rd, ACT_ACQUIRE, LM_MODE_S, 5000, 0);
	if (rc == 0)
		fail_msg("R was granted S while W's owner CAS stood in table "
			 "0");
	expect_rc(rd, rc, LM_EBUSY, "S against W's owner CAS");
	if (!LM_GROUP_EMPTY(group(0)))
		fail_msg("R's refused join left a count in table 0");
	harness_resume(wr->pid);
	expect_rc(wr, actor_wait(wr, ANSWER_MS, "X after resuming"), 0, "X");
	actor_post(rd, ACT_ACQUIRE, LM_MODE_S, 5000, 5000);
	wait_queued(rd);
	release_ok(wr);
	expect_rc(rd, actor_wait(rd, ANSWER_MS, "S after W's release"), 0, "S");
	release_ok(rd);
	finish();
}

/*
 * (b') Reader R0 holds S (30 s lease). Writer W stops at
 * "grant.owner_taken" on each table in turn (owner CASed, group not yet
 * looked at), long enough for that table's server to sweep it (as a
 * preempted or SIGSTOPped process would). W must be refused: R0's group
 * runs on every table. And R0's renew must succeed.
 *
 * FAILS (protocol bug, reported): the server's sweep (daemon/server.c,
 * expire_leases) finds W's owner word without a lease of its tag and
 * "caps" it by CASing W's lease over whatever lease word it read, here
 * the running lease of R0's group. The group then looks ENDED (its
 * lease tag is not the group's), so W's group_blocks_owner (or the
 * server's end_group) resets it, and W is granted X while R0's S grant
 * is valid for another ~30 s.
 */
static void writer_frozen_after_owner_cas(void)
{
	start_service("mffrz", "mf/frozen", NULL, NULL);
	struct actor *r0 = actor_start("reader R0", NULL);
	struct actor *wr = actor_start(
		"writer W", "grant.owner_taken@1,grant.owner_taken@2,"
			    "grant.owner_taken@3");
	acquire_ok(r0, LM_MODE_S, 30000);
	wait_main_count(1, ANSWER_MS, "R0's S");
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 10000, 0);
	bool capped[LM_NSERVERS] = {false};
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		/* A correct protocol refuses W at table 0 already: then it
		 * answers instead of stopping again. */
		HARNESS_WAIT_FOR((pause_hits(wr, "grant.owner_taken") >
					  (int)i &&
				  harness_proc_state(wr->pid) == 'T') ||
					 actor_done(wr),
				 5000, "W neither stopped at table %u nor "
				 "answered", i);
		if (actor_done(wr))
			break;
		wait_server_sweeps(i);
		uint64_t ow = atomic_load(&slot(i)->owner);
		capped[i] = LM_LEASE_TAG(atomic_load(&slot(i)->lease)) ==
			    LM_OWNER_TAG(ow);
		harness_resume(wr->pid);
	}
	int rc = actor_wait(wr, 3000, "X against R0's running S");
	int r0_renew = actor_do(r0, ACT_RENEW, 0, 30000, 0);
	if (rc == 0)
		fail_msg("SAFETY: W was granted X (token %llu) while R0 holds "
			 "S (token %llu, valid for another %.1f s). On tables "
			 "0/1/2 the server had capped W's frozen owner word "
			 "over the group's lease: %d/%d/%d; R0's renew then "
			 "returned %d (%s)",
			 (unsigned long long)atomic_load(&wr->token),
			 (unsigned long long)atomic_load(&r0->token),
			 (atomic_load(&r0->valid_ns) - harness_now_ns()) / 1e9,
			 capped[0], capped[1], capped[2], r0_renew,
			 lm_strerror(r0_renew));
	expect_rc(wr, rc, LM_EBUSY, "X against R0's S");
	expect_rc(r0, r0_renew, 0, "R0's renew after W's attempt");
	/* Once R0 leaves, X is free (W itself would stop again at its
	 * pause points still armed: another writer checks). */
	release_ok(r0);
	struct actor *w2 = actor_start("writer W2", NULL);
	acquire_ok(w2, LM_MODE_X, 5000);
	release_ok(w2);
	finish();
}

/*
 * (b'') The same bug without a pause point or a signal: reader R0 holds
 * S (30 s lease) and a writer spins on try-X (wait 0) for up to 4 s. Each
 * try CASes W's owner word in and out again; a server sweep that lands
 * in between caps W's owner over the group's lease, and a later try then
 * finds the group ENDED and resets it. W must never be granted, and R0's
 * renew must succeed.
 *
 * FAILS (the protocol bug of (b'), reported): in most runs W is granted
 * X while R0's S is valid for another ~28 s, after 1-8 million tries
 * (well under the 4 s).
 */
struct spin_shared {
	_Atomic int64_t tries, granted_at_try;
	_Atomic uint64_t token;
	_Atomic int64_t got_ns;
};
static struct spin_shared *sp;

static void spinning_writer(void *arg)
{
	(void)arg;
	lm_client *c;
	assert_int_equal(lm_connect(w->region, &c), 0);
	int64_t end = harness_now_ms() + 4000;
	while (harness_now_ms() < end) {
		lm_grant g;
		int64_t k = atomic_fetch_add(&sp->tries, 1);
		int rc = take(c, w->name, LM_MODE_X, 5000, 0, &g);
		if (rc == 0) {
			atomic_store(&sp->got_ns, harness_now_ns());
			atomic_store(&sp->token, g.token);
			atomic_store(&sp->granted_at_try, k + 1);
			lm_release(c, &g);
			break;
		}
		if (rc != LM_EBUSY)
			fail_msg("try X: %s", lm_strerror(rc));
	}
	lm_disconnect(c);
}

static void writer_spinning_against_reader(void)
{
	start_service("mfspin", "mf/spin", NULL, NULL);
	sp = harness_shared(sizeof(*sp));
	struct actor *r0 = actor_start("reader R0", NULL);
	acquire_ok(r0, LM_MODE_S, 30000);
	pid_t p = harness_fork(spinning_writer, NULL);
	harness_expect_exit(p, 10000, 0, "spinning writer");
	int renew = actor_do(r0, ACT_RENEW, 0, 30000, 0);
	int64_t at = atomic_load(&sp->granted_at_try);
	fprintf(stderr, "  %lld tries of X\n",
		(long long)atomic_load(&sp->tries));
	if (at != 0)
		fail_msg("SAFETY: a writer spinning on try-X was granted X "
			 "(token %llu, at try %lld) while R0 holds S (token "
			 "%llu, valid for another %.1f s); R0's renew then "
			 "returned %d (%s)",
			 (unsigned long long)atomic_load(&sp->token),
			 (long long)at,
			 (unsigned long long)atomic_load(&r0->token),
			 (atomic_load(&r0->valid_ns) -
			  atomic_load(&sp->got_ns)) / 1e9,
			 renew, lm_strerror(renew));
	expect_rc(r0, renew, 0, "R0's renew after the writer's tries");
	release_ok(r0);
	finish();
}

/*
 * (c) Reader A stopped at "grant.group_lease" on table 0: it has written
 * the new generation's lease but not yet the group word naming it.
 * Another reader B and a writer W race meanwhile; then A resumes. All
 * three are granted in the end, never S and X at once; the readers
 * coexist when they get in together, and no count is left under an X.
 * Run for each outcome of the race (B in first, W in first) and with
 * both let loose at once. Catches a joiner that, finding an X holder
 * after its group CAS, does not leave the group again (mutation: no
 * lm_group_leave when owner_clear fails after the join: a count stands
 * under W's X), and a writer let in over B's new generation (mutation:
 * group_blocks_owner -> false).
 */
enum race { B_FIRST, W_FIRST, AT_ONCE };

static void reader_at_group_lease_race(enum race how)
{
	start_service("mflease", "mf/lease", NULL, NULL);
	struct actor *a = actor_start("reader A", "grant.group_lease");
	struct actor *b = actor_start("reader B", NULL);
	struct actor *wr = actor_start("writer W", NULL);
	actor_post(a, ACT_ACQUIRE, LM_MODE_S, 5000, 10000);
	wait_paused(a, "grant.group_lease", 1);
	uint64_t g0 = group(0);
	assert_true(LM_GROUP_EMPTY(g0));
	assert_int_equal(LM_LEASE_TAG(atomic_load(&slot(0)->lease)),
			 LM_GROUP_TAG(LM_GROUP_GEN(g0) + 1));
	if (how == AT_ONCE) {
		actor_post(b, ACT_ACQUIRE, LM_MODE_S, 5000, 10000);
		actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 10000);
	} else {
		struct actor *first = how == B_FIRST ? b : wr;
		struct actor *second = how == B_FIRST ? wr : b;
		actor_post(first, ACT_ACQUIRE,
			   first == b ? LM_MODE_S : LM_MODE_X, 5000, 10000);
		expect_rc(first, actor_wait(first, ANSWER_MS, "acquire while A "
					   "stands at grant.group_lease"),
			  0, "acquire");
		actor_post(second, ACT_ACQUIRE,
			   second == b ? LM_MODE_S : LM_MODE_X, 5000, 10000);
	}
	/* One of them gets in; the other conflicts with it and waits. */
	HARNESS_WAIT_FOR(actor_done(b) || actor_done(wr), 3000,
			 "neither B nor W got in while A stood at "
			 "grant.group_lease");
	struct actor *in = actor_done(b) ? b : wr;
	struct actor *out = in == b ? wr : b;
	expect_rc(in, atomic_load(&in->rc), 0, "acquire");
	wait_queued(out);
	harness_resume(a->pid);
	if (in == b) {
		/* A joins B's generation. */
		expect_rc(a, actor_wait(a, ANSWER_MS, "S beside B"), 0, "S");
		wait_main_count(2, ANSWER_MS, "A and B");
		release_ok(a);
		release_ok(b);
		expect_rc(wr, actor_wait(wr, ANSWER_MS, "X after the readers"), 0,
			  "X");
		release_ok(wr);
	} else {
		/* A's group CAS may succeed, but it finds W's X and
		 * leaves: it and B wait for W. */
		wait_queued(a);
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (!LM_GROUP_EMPTY(group(i)))
				fail_msg("table %u counts %u holders under "
					 "W's X", i, main_count(i));
		release_ok(wr);
		expect_rc(a, actor_wait(a, ANSWER_MS, "S after W"), 0, "S");
		expect_rc(b, actor_wait(b, ANSWER_MS, "S after W"), 0, "S");
		wait_main_count(2, ANSWER_MS, "A and B after W");
		release_ok(a);
		release_ok(b);
	}
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (!LM_GROUP_EMPTY(group(i)))
			fail_msg("table %u counts %u holders once all left", i,
				 main_count(i));
	finish();
}

static void reader_at_group_lease_reader_first(void)
{
	reader_at_group_lease_race(B_FIRST);
}

static void reader_at_group_lease_writer_first(void)
{
	reader_at_group_lease_race(W_FIRST);
}

static void reader_at_group_lease_both_at_once(void)
{
	reader_at_group_lease_race(AT_ONCE);
}

/* ---- 5. a dead reader's phantom count ------------------------------ */

/*
 * A reader killed between its join and its join record (stopped at
 * "grant.group_joined", hit n = table n-1, then SIGKILL) leaves a count
 * nobody can take back: the supervisor's leave_recorded finds no record
 * for that table. The writer must still get in once that generation's
 * lease ends (1 s TTL), not before (the count is safe) and not never.
 * Catches a group whose lease ended but is never reset (mutation:
 * lm_group_state never ENDED: W never gets in), and a writer let in
 * while the lease runs (mutation: group_blocks_owner -> false).
 */
static void phantom_reader_count(int table_hit)
{
	start_service("mfphantom", "mf/phantom", NULL, NULL);
	char point[64];
	snprintf(point, sizeof(point), "grant.group_joined@%d", table_hit);
	struct actor *rd = actor_start("reader R", point);
	struct actor *wr = actor_start("writer W", NULL);
	actor_post(rd, ACT_ACQUIRE, LM_MODE_S, 1000, 0);
	wait_paused(rd, "grant.group_joined", 1);
	unsigned t = (unsigned)table_hit - 1;
	int sess = atomic_load(&rd->session);
	for (unsigned k = 0; k < LM_HELD_MAX; k++)
		if (LM_JOIN_SET(atomic_load(&r.sessions[sess].joined[k][t])))
			fail_msg("R has a join record for table %u already",
				 t);
	assert_int_equal(main_count(t), 1);
	int64_t lease_end = lease_end_local_ns(t);
	actor_kill(rd);
	HARNESS_WAIT_FOR(LM_SESS_STATE(atomic_load(&r.sessions[sess].life)) ==
				 LM_SESS_FREE,
			 ANSWER_MS, "the supervisor never freed dead R's session");
	/* The recorded joins were left; the unrecorded one stays. */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (main_count(i) != (i == t ? 1u : 0u))
			fail_msg("table %u counts %u after R's death", i,
				 main_count(i));
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 5000, 5000);
	int rc = actor_wait(wr, 1000 + ANSWER_MS, "X after the phantom count's "
					     "lease ends");
	expect_rc(wr, rc, 0, "X");
	int64_t got = atomic_load(&wr->got_ns);
	fprintf(stderr, "  table %u: writer in %.1f ms after the phantom's "
		"lease ended\n", t, (got - lease_end) / 1e6);
	if (got < lease_end - 2000000) {
		uint32_t mask = atomic_load(&wr->mask);
		/* Legitimate only if W's quorum left the phantom's table
		 * out (its server was passed over: a stale heartbeat). */
		if (!(mask & (1u << t))) {
			fprintf(stderr, "  W got in %.1f ms early on tables "
				"0x%x, without table %u's server\n",
				(lease_end - got) / 1e6, mask, t);
		} else {
			char why[512] = "";
			size_t used = 0;
			for (unsigned i = 0; i < LM_NSERVERS; i++) {
				uint64_t ow = atomic_load(&slot(i)->owner);
				bool own = LM_LEASE_TAG(atomic_load(
						   &slot(i)->lease)) ==
					   LM_OWNER_TAG(ow);
				int n = snprintf(
					why + used, sizeof(why) - used,
					" table %u: gen %u count %u, owner "
					"session %u, lease %s;", i,
					LM_GROUP_GEN(group(i)), main_count(i),
					LM_OWNER_SESSION(ow),
					own ? "the owner's"
					    : "not the owner's");
				if (n < 0 || (size_t)n >= sizeof(why) - used)
					break;
				used += (size_t)n;
			}
			fail_msg("W got in %.1f ms before the phantom count's "
				 "lease ended, through its table %u (W's "
				 "session %d, tables 0x%x);%s",
				 (lease_end - got) / 1e6, t,
				 atomic_load(&wr->session) + 1, mask, why);
		}
	}
	release_ok(wr);
	finish();
}

static void phantom_reader_count_table0(void)
{
	phantom_reader_count(1);
}

static void phantom_reader_count_table2(void)
{
	phantom_reader_count(3);
}

/* ---- 6. a server killed under readers ------------------------------ */

/*
 * Four readers hold S; server 0 is killed (and stays down). Their renews
 * go on with the quorum of tables 1 and 2; a writer waits and gets in
 * only after the last reader releases; every grant's token is distinct
 * and the writer's is above the readers'. Catches a counted renew that
 * needs every table (mutation: lm_hold_renew's "ok < LM_QUORUM" as
 * "ok < LM_NSERVERS").
 */
static void server_killed_under_readers(void)
{
	start_service("mfsrv", "mf/srv", "--restart-delay", "-1");
	struct actor *rd[4];
	for (int i = 0; i < 4; i++) {
		char l[16];
		snprintf(l, sizeof(l), "reader %c", 'A' + i);
		rd[i] = actor_start(l, NULL);
		acquire_ok(rd[i], LM_MODE_S, 3000);
	}
	harness_kill_server(d.region, &r, 0, false);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 4; i++)
			expect_rc(rd[i],
				  actor_do(rd[i], ACT_RENEW, 0, 3000, 0), 0,
				  "renew with server 0 down");
	struct actor *wr = actor_start("writer W", NULL);
	actor_post(wr, ACT_ACQUIRE, LM_MODE_X, 3000, 10000);
	wait_queued(wr);
	for (int i = 0; i < 3; i++) {
		release_ok(rd[i]);
		if (actor_done(wr))
			fail_msg("W answered %d (%s) while %d reader(s) hold",
				 atomic_load(&wr->rc),
				 lm_strerror(atomic_load(&wr->rc)), 3 - i);
	}
	release_ok(rd[3]);
	expect_rc(wr, actor_wait(wr, ANSWER_MS, "X after the last reader"), 0, "X");
	for (int i = 0; i < 4; i++)
		if (atomic_load(&wr->token) <= atomic_load(&rd[i]->token))
			fail_msg("W's token %llu is not above %s's %llu",
				 (unsigned long long)atomic_load(&wr->token),
				 rd[i]->label,
				 (unsigned long long)atomic_load(
					 &rd[i]->token));
	release_ok(wr);
	finish();
}

/* ---- 7. tokens ----------------------------------------------------- */

/*
 * Tokens grow over the grants of one lock in grant order, whatever the
 * modes: S, then X (waiting for the S), then two S side by side, then
 * SIX, IX, IS, X. Catches a counted grant that does not raise the
 * tables' token marks (mutation: write_back_token skipping counted
 * modes: the X after an S gets the S's token).
 */
static void tokens_in_grant_order(void)
{
	start_service("mftok", "mf/tok", NULL, NULL);
	struct actor *a = actor_start("A", NULL);
	struct actor *b = actor_start("B", NULL);
	struct actor *c = actor_start("C", NULL);
	uint64_t last = 0;
#define NEXT(who)                                                          \
	do {                                                               \
		uint64_t t_ = atomic_load(&(who)->token);                  \
		if (t_ <= last)                                            \
			fail_msg("%s's grant got token %llu after %llu",   \
				 (who)->label, (unsigned long long)t_,     \
				 (unsigned long long)last);                \
		last = t_;                                                 \
	} while (0)
	acquire_ok(a, LM_MODE_S, 5000);
	NEXT(a);
	actor_post(b, ACT_ACQUIRE, LM_MODE_X, 5000, 5000);
	wait_queued(b);
	release_ok(a);
	expect_rc(b, actor_wait(b, ANSWER_MS, "X after S"), 0, "X");
	NEXT(b);
	actor_post(a, ACT_ACQUIRE, LM_MODE_S, 5000, 5000);
	wait_queued(a);
	release_ok(b);
	expect_rc(a, actor_wait(a, ANSWER_MS, "S after X"), 0, "S");
	NEXT(a);
	acquire_ok(c, LM_MODE_S, 5000);
	NEXT(c);
	release_ok(a);
	release_ok(c);
	static const uint32_t seq[] = {LM_MODE_SIX, LM_MODE_IX, LM_MODE_IS,
				       LM_MODE_X, LM_MODE_IS, LM_MODE_S};
	for (unsigned k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
		struct actor *who = k % 2 ? b : c;
		acquire_ok(who, seq[k], 5000);
		NEXT(who);
		release_ok(who);
	}
#undef NEXT
	finish();
}

enum { TOK_READERS = 6, TOK_ROUNDS = 10000 };

struct tok_shared {
	_Atomic int ready, go;
	_Atomic int inside, max_inside;
	_Atomic int errors;
	_Atomic int n;
	uint64_t t[TOK_READERS * TOK_ROUNDS];
};

static struct tok_shared *ts;

static void token_reader(void *arg)
{
	(void)arg;
	lm_client *c;
	assert_int_equal(lm_connect(w->region, &c), 0);
	atomic_fetch_add(&ts->ready, 1);
	HARNESS_WAIT_FOR(atomic_load(&ts->go), 10000, "no start signal");
	for (int k = 0; k < TOK_ROUNDS; k++) {
		lm_grant g;
		int rc = take(c, w->name, LM_MODE_S, 5000, 5000, &g);
		if (rc != 0) {
			fprintf(stderr, "reader: %s\n", lm_strerror(rc));
			atomic_fetch_add(&ts->errors, 1);
			continue;
		}
		int in = atomic_fetch_add(&ts->inside, 1) + 1;
		int m = atomic_load(&ts->max_inside);
		while (in > m &&
		       !atomic_compare_exchange_weak(&ts->max_inside, &m, in))
			;
		ts->t[atomic_fetch_add(&ts->n, 1)] = g.token;
		/* Hold a little, so that others join while we hold. */
		for (volatile int spin = 0; spin < 20000; spin++)
			;
		atomic_fetch_sub(&ts->inside, 1);
		if (lm_release(c, &g) != 0)
			atomic_fetch_add(&ts->errors, 1);
	}
	lm_disconnect(c);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Readers granted side by side never share a token: six processes take
 * S in a loop (they overlap: checked), every token is collected, and
 * all differ. Catches counted grants that raise the token marks with a
 * plain CAS-max (mutation: write_back_token's strict mode off: two
 * readers reading the same marks both take max + 1).
 */
static void readers_never_share_a_token(void)
{
	start_service("mftoks", "mf/toks", NULL, NULL);
	ts = harness_shared(sizeof(*ts));
	pid_t p[TOK_READERS];
	for (int i = 0; i < TOK_READERS; i++)
		p[i] = harness_fork(token_reader, NULL);
	/* All connected before any starts, so that they run side by side. */
	HARNESS_WAIT_FOR(atomic_load(&ts->ready) == TOK_READERS, 5000,
			 "the token readers never all connected");
	atomic_store(&ts->go, 1);
	for (int i = 0; i < TOK_READERS; i++)
		harness_expect_exit(p[i], 30000, 0, "token reader");
	assert_int_equal(atomic_load(&ts->errors), 0);
	int n = atomic_load(&ts->n);
	assert_int_equal(n, TOK_READERS * TOK_ROUNDS);
	fprintf(stderr, "  %d grants, at most %d readers at once\n", n,
		atomic_load(&ts->max_inside));
	if (atomic_load(&ts->max_inside) < 2)
		fail_msg("the readers never held together: this tested "
			 "nothing");
	qsort(ts->t, (size_t)n, sizeof(ts->t[0]), cmp_u64);
	int dup = 0;
	for (int k = 1; k < n; k++)
		if (ts->t[k] == ts->t[k - 1])
			dup++;
	if (dup != 0)
		fail_msg("%d of %d reader grants shared a token with another",
			 dup, n);
	finish();
}

HARNESS_CASE(reader_killed_writer_gets_in, 60)
HARNESS_CASE(reader_killed_among_readers, 60)
HARNESS_CASE(stopped_reader_late_release, 60)
HARNESS_CASE(stopped_reader_late_renew, 60)
HARNESS_CASE(reader_joined_then_writer, 60)
HARNESS_CASE(both_cased_reader_checks_first, 60)
HARNESS_CASE(writer_owner_taken_then_reader, 60)
HARNESS_CASE(writer_frozen_after_owner_cas, 60)
HARNESS_CASE(writer_spinning_against_reader, 60)
HARNESS_CASE(reader_at_group_lease_reader_first, 60)
HARNESS_CASE(reader_at_group_lease_writer_first, 60)
HARNESS_CASE(reader_at_group_lease_both_at_once, 60)
HARNESS_CASE(phantom_reader_count_table0, 60)
HARNESS_CASE(phantom_reader_count_table2, 60)
HARNESS_CASE(server_killed_under_readers, 60)
HARNESS_CASE(tokens_in_grant_order, 60)
HARNESS_CASE(readers_never_share_a_token, 40)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(reader_killed_writer_gets_in),
		harness_case(reader_killed_among_readers),
		harness_case(stopped_reader_late_release),
		harness_case(stopped_reader_late_renew),
		harness_case(reader_joined_then_writer),
		harness_case(both_cased_reader_checks_first),
		harness_case(writer_owner_taken_then_reader),
		harness_case(writer_frozen_after_owner_cas),
		harness_case(writer_spinning_against_reader),
		harness_case(reader_at_group_lease_reader_first),
		harness_case(reader_at_group_lease_writer_first),
		harness_case(reader_at_group_lease_both_at_once),
		harness_case(phantom_reader_count_table0),
		harness_case(phantom_reader_count_table2),
		harness_case(server_killed_under_readers),
		harness_case(tokens_in_grant_order),
		harness_case(readers_never_share_a_token),
	};
	/* Not cmocka_set_test_filter: it would also filter the nested
	 * cmocka runs of harness_fork's children, which then pass without
	 * running. */
	const char *filter = getenv("MFTEST_FILTER");
	struct CMUnitTest chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (filter == NULL || fnmatch(filter, tests[i].name, 0) == 0)
			chosen[n++] = tests[i];
	return _cmocka_run_group_tests("test_modes_faults", chosen, n, NULL,
				       NULL);
}
