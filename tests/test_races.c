/*
 * test_races.c - each race an outside review reproduced, driven through
 * its exact interleaving.
 *
 * A process is stopped at a named step of the protocol (a pause point,
 * shm/test_hook.h: it stops itself with SIGSTOP there), the test makes
 * the other processes do what the interleaving needs, then resumes it
 * and checks the invariant the race used to break. Each case fails with
 * its fix reverted; the comment above it says what the race was.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "shm/clock.h"
#include "shm/name_index.h"
#include "shm/region.h"
#include "shm/name_reclaim.h"
#include "shm/session.h"
#include "shm/test_hook.h"

/* ---- helpers ------------------------------------------------------ */

/* The slot of the LIVE or CLAIMING session of pid, or -1. */
static int64_t slot_of_pid(struct lm_region *r, pid_t pid)
{
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		uint64_t w = atomic_load(&r->sessions[i].life);
		if (LM_SESS_STATE(w) != LM_SESS_FREE && LM_SESS_PID(w) == pid)
			return i;
	}
	return -1;
}

static uint32_t slot_state(struct lm_region *r, int64_t slot)
{
	return LM_SESS_STATE(atomic_load(&r->sessions[slot].life));
}

/* Start server i (lockmgrd --restart-delay -1); with `up`, wait until
 * it is UP again. */
static void start_server(const char *region, struct lm_region *r, unsigned i,
			 bool up)
{
	char n[8];
	snprintf(n, sizeof(n), "%u", i);
	assert_int_equal(harness_lockctl(region, "server", "start", n, NULL),
			 0);
	if (up)
		HARNESS_WAIT_FOR(harness_server_state(r, i) == LM_SRV_UP, 10000,
				 "server %u never came back up", i);
}

/* Start a second lockmgrd on an existing region (it adopts it). */
static pid_t adopt_region(const char *region)
{
	pid_t pid = harness_lockmgrd_spawn(
		region, (const char *const[]){"--ephemeral", NULL});
	harness_wait_servers_up(region, pid, 10000);
	return pid;
}

/*
 * Block until the supervisor has looked at every session slot at least
 * once: connect a throwaway client, kill it, and wait for the supervisor
 * to free its slot. The registrar scans the whole table in one pass.
 */
struct sentinel {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int connected;
};

static void sentinel_main(void *arg)
{
	struct sentinel *s = arg;
	lm_client *c;
	assert_int_equal(lm_connect(s->region, &c), 0);
	atomic_store(&s->connected, 1);
	for (;;)
		pause();
}

static void supervisor_has_scanned(const char *region, struct lm_region *r)
{
	struct sentinel *s = harness_shared(sizeof(*s));
	snprintf(s->region, sizeof(s->region), "%s", region);
	pid_t pid = harness_fork(sentinel_main, s);
	HARNESS_WAIT_FOR(atomic_load(&s->connected), 5000,
			 "the sentinel client never connected");
	int64_t slot = slot_of_pid(r, pid);
	assert_true(slot >= 0);
	kill(pid, SIGKILL);
	harness_reap(pid, 5000, "sentinel client");
	HARNESS_WAIT_FOR(slot_state(r, slot) == LM_SESS_FREE, 5000,
			 "the supervisor never freed a dead client's session");
	harness_shared_free(s, sizeof(*s));
}

/*
 * A client process that takes one lock, stopping at a pause point on the
 * way if asked, and reports what happened through shared memory.
 */
struct acquirer {
	char region[LM_REGION_NAME_MAX + 2];
	char name[64];
	char pause[64];        /* a pause point, or "" */
	int64_t ttl_ms, wait_ms;
	bool hold;             /* keep the lock until killed */
	_Atomic int64_t started_ms, ended_ms;
	_Atomic int rc;
	_Atomic uint64_t token;
	_Atomic int64_t valid_until_ns; /* the grant's, if granted */
};

static void acquirer_main(void *arg)
{
	struct acquirer *a = arg;
	char log[256];
	if (a->pause[0] != '\0')
		harness_pause_arm(a->pause, log, sizeof(log));
	lm_client *c;
	assert_int_equal(lm_connect(a->region, &c), 0);
	lm_grant g;
	atomic_store(&a->started_ms, harness_now_ms());
	int rc = lm_acquire(c, a->name, a->ttl_ms, a->wait_ms, &g);
	atomic_store(&a->token, rc == 0 ? g.token : 0);
	atomic_store(&a->valid_until_ns, rc == 0 ? g.valid_until_ns : 0);
	atomic_store(&a->rc, rc);
	atomic_store(&a->ended_ms, harness_now_ms());
	if (a->hold)
		for (;;)
			pause(); /* the old region stays mapped until killed */
	if (rc == 0)
		lm_release(c, &g);
	lm_disconnect(c);
}

/* Fork an acquirer of `name` on region (shared memory a, from the case). */
static pid_t start_acquirer(struct acquirer *a, const char *region,
			    const char *name, const char *pause_at,
			    int64_t ttl_ms, int64_t wait_ms, bool hold)
{
	snprintf(a->region, sizeof(a->region), "%s", region);
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->pause, sizeof(a->pause), "%s", pause_at ? pause_at : "");
	a->ttl_ms = ttl_ms;
	a->wait_ms = wait_ms;
	a->hold = hold;
	atomic_store(&a->started_ms, 0);
	atomic_store(&a->ended_ms, 0);
	atomic_store(&a->rc, 1);
	return harness_fork(acquirer_main, a);
}

/* ---- 1. a disconnect cannot free another client's session --------- */

struct disconnect_args {
	char region[LM_REGION_NAME_MAX + 2];
	char points[64];
};

static void disconnecting_client(void *arg)
{
	struct disconnect_args *a = arg;
	char log[256];
	harness_pause_arm(a->points, log, sizeof(log));
	lm_client *c;
	assert_int_equal(lm_connect(a->region, &c), 0);
	assert_int_equal(lm_disconnect(c), 0);
}

/*
 * The review's race: client A disconnects and stops after its first
 * step of giving its slot back (it used to store pid = 0, then bump the
 * generation, then store FREE, as three plain stores). A supervisor
 * that has not seen the slot yet (here: a restarted one) took the
 * half-freed slot for a dead client's and freed it; B claimed it and
 * took lock L; A resumed and wrote FREE over B's live slot; C then saw
 * B's session as not live and took L while B's lease ran. Now A's
 * give-back is one CAS from A's own LIVE word, which fails once the slot
 * has moved on, and a LIVE word always names its pid.
 */
static void disconnect_cannot_free_next_life(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "sessfree", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);

	struct disconnect_args *a = harness_shared(sizeof(*a));
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	snprintf(a->points, sizeof(a->points), "client.disconnect.before_free");
	pid_t pa = harness_fork(disconnecting_client, a);
	HARNESS_WAIT_FOR(harness_proc_state(pa) == 'T', 5000,
			 "client A never stopped in lm_disconnect");

	/* A supervisor that has never seen A's slot. */
	kill(d.pid, SIGKILL);
	harness_reap(d.pid, 5000, "killed lockmgrd");
	d.pid = adopt_region(d.region);
	supervisor_has_scanned(d.region, &r);

	lm_client *b, *c;
	assert_int_equal(lm_connect(d.region, &b), 0);
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant gb, gc;
	assert_int_equal(lm_acquire(b, "race/L", 10000, 0, &gb), 0);

	harness_resume(pa);
	harness_expect_exit(pa, 5000, 0, "client A");

	/* Nobody else can take L while B's lease runs... */
	int rc = lm_acquire(c, "race/L", 10000, 0, &gc);
	if (rc == 0)
		fail_msg("C was granted L (token %llu) while B held it "
			 "(token %llu)", (unsigned long long)gc.token,
			 (unsigned long long)gb.token);
	assert_int_equal(rc, LM_EBUSY);
	/* ...because B's session is still live and still its own. */
	assert_int_equal(atomic_load(&r.sessions[b->ctx.session].life), b->ctx.life);
	assert_true(c->ctx.session != b->ctx.session);
	assert_int_equal(lm_release(b, &gb), 0);

	lm_disconnect(b);
	lm_disconnect(c);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

/* ---- 2. a claim whose claimer died is given back ------------------ */

static void dying_claimer(void *arg)
{
	struct disconnect_args *a = arg;
	char log[256];
	harness_pause_arm("session.claimed", log, sizeof(log));
	lm_client *c;
	lm_connect(a->region, &c); /* stops inside, and is killed there */
	fail_msg("the claimer was not stopped after its claim");
}

/*
 * A client killed between claiming a session slot and making it LIVE
 * used to leak the slot for good (only LIVE slots were watched). With
 * two slots, two such deaths made the service refuse every client.
 */
static void dead_claimer_slot_reclaimed(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "claim", "--max-sessions", "2", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct disconnect_args *a = harness_shared(sizeof(*a));
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	for (int round = 0; round < 2; round++) {
		pid_t p = harness_fork(dying_claimer, a);
		HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 5000,
				 "the claimer never stopped after its claim");
		int64_t slot = slot_of_pid(&r, p);
		assert_true(slot >= 0);
		assert_int_equal(slot_state(&r, slot), LM_SESS_CLAIMING);
		kill(p, SIGKILL);
		harness_reap(p, 5000, "killed claimer");
		HARNESS_WAIT_FOR(slot_state(&r, slot) == LM_SESS_FREE, 5000,
				 "slot %lld, claimed by a client that died, was "
				 "never given back", (long long)slot);
	}
	/* Both slots usable again. */
	lm_client *c1, *c2;
	assert_int_equal(lm_connect(d.region, &c1), 0);
	assert_int_equal(lm_connect(d.region, &c2), 0);
	lm_disconnect(c1);
	lm_disconnect(c2);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

struct claimer_args {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int slot; /* +1, once connected */
};

static void slow_claimer(void *arg)
{
	struct claimer_args *a = arg;
	char log[256];
	harness_pause_arm("session.claimed", log, sizeof(log));
	lm_client *c;
	assert_int_equal(lm_connect(a->region, &c), 0);
	atomic_store(&a->slot, (int)c->ctx.session + 1);
	assert_int_equal(lm_disconnect(c), 0);
}

/*
 * A live claimer stopped right after its claim must keep it. A FREE
 * slot used to keep its previous life's start time, which the
 * supervisor compared against the claimer's pid: it took the live
 * claimer for a dead one and freed its claim; the next client claimed
 * the slot, and the first one's late stores then overwrote the second's
 * identity (a new supervisor later reaped the second, alive, client).
 */
static void live_claimer_keeps_its_claim(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "claim2", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	/* Slot 0 has had a life: ours. */
	lm_client *p;
	assert_int_equal(lm_connect(d.region, &p), 0);
	assert_int_equal(p->ctx.session, 0);
	assert_int_equal(lm_disconnect(p), 0);
	struct claimer_args *a = harness_shared(sizeof(*a));
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	pid_t pa = harness_fork(slow_claimer, a);
	HARNESS_WAIT_FOR(harness_proc_state(pa) == 'T', 5000,
			 "the claimer never stopped after its claim");
	assert_int_equal(slot_of_pid(&r, pa), 0);
	/* The supervisor looks at every slot, more than once. */
	supervisor_has_scanned(d.region, &r);
	supervisor_has_scanned(d.region, &r);
	uint64_t w = atomic_load(&r.sessions[0].life);
	if (LM_SESS_STATE(w) != LM_SESS_CLAIMING || LM_SESS_PID(w) != pa)
		fail_msg("the supervisor took slot 0 from its live claimer "
			 "(state %u, pid %d)", LM_SESS_STATE(w),
			 (int)LM_SESS_PID(w));
	harness_resume(pa);
	harness_expect_exit(pa, 5000, 0, "claimer");
	assert_int_equal(atomic_load(&a->slot), 1);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 3. a supervisor killed mid-cleanup ---------------------------- */

struct holder_args {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int holding;
	_Atomic uint64_t token;
};

static void holder_main(void *arg)
{
	struct holder_args *h = arg;
	lm_client *c;
	assert_int_equal(lm_connect(h->region, &c), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "race/dead", 15000, 0, &g), 0);
	atomic_store(&h->token, g.token);
	atomic_store(&h->holding, 1);
	for (;;)
		pause();
}

/*
 * A supervisor killed while it freed a dead client's locks used to leave
 * the client's slot DEAD for good (nobody looked at DEAD slots), and the
 * locks it had not reached yet held until their leases ran out. The next
 * supervisor now finishes the work: every step of it can be repeated.
 */
static void dead_slot_finished_by_next_supervisor(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	char log[256];
	harness_pause_arm("supervisor.freeing_dead", log, sizeof(log));
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "deadslot", "--max-ttl", "20000",
			       "--max-sessions", "2", NULL);
	harness_pause_disarm();
	struct lm_region r;
	harness_attach(d.region, &r);
	struct holder_args *h = harness_shared(sizeof(*h));
	snprintf(h->region, sizeof(h->region), "%s", d.region);
	pid_t ph = harness_fork(holder_main, h);
	HARNESS_WAIT_FOR(atomic_load(&h->holding), 5000,
			 "the holder never took its lock");
	int64_t slot = slot_of_pid(&r, ph);
	assert_true(slot >= 0);
	kill(ph, SIGKILL);
	harness_reap(ph, 5000, "killed holder");
	pid_t sup = harness_wait_paused(log, "supervisor.freeing_dead", 5000);
	assert_int_equal(sup, d.pid);
	assert_int_equal(slot_state(&r, slot), LM_SESS_DEAD);
	kill(d.pid, SIGKILL);
	harness_reap(d.pid, 5000, "killed lockmgrd");

	int64_t t0 = harness_now_ms();
	d.pid = adopt_region(d.region);
	HARNESS_WAIT_FOR(slot_state(&r, slot) == LM_SESS_FREE, 5000,
			 "the next supervisor left the dead client's slot %lld "
			 "DEAD", (long long)slot);
	/* Its lock is free long before its 15 s lease would end, and the
	 * next holder is told. */
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "race/dead", 1000, 0, &g), 0);
	assert_true(harness_now_ms() - t0 < 10000);
	assert_true(g.flags & LM_GRANT_RECOVERED);
	assert_true(g.token > atomic_load(&h->token));
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_shared_free(h, sizeof(*h));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

/* ---- 4. the servers' repair of a waiter count --------------------- */

/*
 * A waiter raises the lock's waiter count, then publishes that it waits.
 * The servers repair counts that a waiter killed in between left too
 * high, and used to do it by zeroing a count with nobody queued. A
 * waiter stopped between its two steps was then queued but uncounted:
 * the next release woke nobody, and it got a lock released long before
 * only when that holder's lease ran out. Now the repair announces itself
 * by bumping a generation before it recounts, and a waiter that sees the
 * generation move after its publish counts itself again.
 */
static void waiter_count_repair(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "count", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h, *h2;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &h2), 0);
	lm_grant g, g2;
	assert_int_equal(lm_acquire(h, "race/count", 10000, 0, &g), 0);
	int64_t idx = lm_name_lookup(&r, "race/count", 10, 0);
	assert_true(idx >= 0);
	struct lm_queue *q = lm_queue_of(&r, (uint32_t)idx);

	struct acquirer *w = harness_shared(sizeof(*w));
	pid_t pw = start_acquirer(w, d.region, "race/count", "queue.counted",
				  10000, 20000, false);
	HARNESS_WAIT_FOR(harness_proc_state(pw) == 'T', 5000,
			 "the waiter never stopped after counting itself");
	assert_int_equal(lm_queue_count(q), 1);
	int64_t ws = slot_of_pid(&r, pw);
	assert_true(ws >= 0);
	assert_int_equal(atomic_load(&r.sessions[ws].waiting_on), 0);

	/* The lock is free with a count and nobody queued: a server
	 * repairs the count. */
	assert_int_equal(lm_release(h, &g), 0);
	HARNESS_WAIT_FOR(lm_queue_count(q) == 0, 5000,
			 "no server repaired the count of a free lock");
	/* A newcomer takes the lock (nobody counted: it may barge). Its
	 * lease (20 s) is what an uncounted waiter would sleep on, far
	 * beyond the 5 s bound below even after a slow resume. */
	assert_int_equal(lm_acquire(h2, "race/count", 20000, 0, &g2), 0);

	harness_resume(pw);
	HARNESS_WAIT_FOR(atomic_load(&r.sessions[ws].waiting_on) ==
					 (uint32_t)idx + 1 &&
				 harness_proc_state(pw) == 'S',
			 5000, "the waiter never queued and slept");
	int64_t released = harness_now_ms();
	assert_int_equal(lm_release(h2, &g2), 0);
	HARNESS_WAIT_FOR(atomic_load(&w->ended_ms) != 0, 15000,
			 "the waiter never got the lock");
	assert_int_equal(atomic_load(&w->rc), 0);
	int64_t took = atomic_load(&w->ended_ms) - released;
	if (took > 5000)
		fail_msg("the waiter got the lock %lld ms after its release: "
			 "it was queued but not counted, so the release woke "
			 "nobody", (long long)took);
	harness_expect_exit(pw, 5000, 0, "waiter");
	lm_disconnect(h);
	lm_disconnect(h2);
	harness_shared_free(w, sizeof(*w));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * The other end of the count: a waiter that leaves (here W1, at the end
 * of its wait) used to clear waiting_on and then lower the count. A
 * recount between the two no longer counted it, and its lowering then
 * took the count below the queue: W2, still queued, went uncounted, and
 * newcomers barged past it (a review saw it get a released lock only at
 * its next timer, 1.9 s later). Now a waiter
 * leaves in three steps (LEAVING, lower, clear) and a recount still
 * counts a LEAVING waiter.
 */
static void leaving_waiter_counted_once(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "leave", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h, *x;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &x), 0);
	lm_grant gh, gx;
	assert_int_equal(lm_acquire(h, "race/leave", 10000, 0, &gh), 0);
	(void)gx;
	int64_t idx = lm_name_lookup(&r, "race/leave", 10, 0);
	assert_true(idx >= 0);
	struct lm_queue *q = lm_queue_of(&r, (uint32_t)idx);
	struct acquirer *w1 = harness_shared(sizeof(*w1));
	struct acquirer *w2 = harness_shared(sizeof(*w2));
	pid_t p1 = start_acquirer(w1, d.region, "race/leave", "queue.leaving",
				  5000, 300, false);
	HARNESS_WAIT_FOR(lm_queue_count(q) == 1, 5000, "W1 never queued");
	pid_t p2 = start_acquirer(w2, d.region, "race/leave", NULL, 5000, 15000,
				  false);
	HARNESS_WAIT_FOR(lm_queue_count(q) == 2, 5000, "W2 never queued");
	HARNESS_WAIT_FOR(harness_proc_state(p1) == 'T', 5000,
			 "W1 never stopped while leaving");
	/* W2 stopped too, so that the lock stays free with a queue: a
	 * server then recounts it. */
	kill(p2, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(p2) == 'T', 5000,
			 "W2 did not stop");
	uint64_t before = atomic_load(&q->waiters);
	assert_int_equal(lm_release(h, &gh), 0);
	HARNESS_WAIT_FOR(LM_WAITERS_GEN(atomic_load(&q->waiters)) !=
				 LM_WAITERS_GEN(before),
			 5000, "no server recounted the free lock's queue");
	harness_resume(p1);
	harness_expect_exit(p1, 5000, 0, "W1");
	if (lm_queue_count(q) == 0)
		fail_msg("W2 is queued, but the count is 0");
	/* So a newcomer does not overtake it (an uncounted queue let every
	 * newcomer barge past W2). */
	int rc = lm_acquire(x, "race/leave", 5000, 0, &gx);
	if (rc == 0)
		fail_msg("a newcomer overtook W2, queued for %lld ms",
			 (long long)(harness_now_ms() -
				     atomic_load(&w2->started_ms)));
	assert_int_equal(rc, LM_EBUSY);
	harness_resume(p2);
	HARNESS_WAIT_FOR(atomic_load(&w2->ended_ms) != 0, 10000,
			 "W2 never got the lock");
	assert_int_equal(atomic_load(&w2->rc), 0);
	harness_expect_exit(p2, 5000, 0, "W2");
	lm_disconnect(h);
	lm_disconnect(x);
	harness_shared_free(w1, sizeof(*w1));
	harness_shared_free(w2, sizeof(*w2));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 5. an acquirer frozen between its owner CAS and its lease ----- */

/*
 * Acquirer A stops between its owner CAS and its lease store on table 0.
 * Its server caps the grant with a lease of A's own TTL (it once used
 * max TTL, so one frozen acquirer kept a lock for a minute), and once
 * that ends B takes the lock. When A resumed, its plain lease store used
 * to overwrite B's lease: B's on-time renew then failed. Now A stores
 * its lease by CAS from the value it saw before its owner CAS, and only
 * while the owner word is still its own.
 */
static void frozen_acquirer_cannot_clobber_lease(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "lease", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct acquirer *a = harness_shared(sizeof(*a));
	pid_t pa = start_acquirer(a, d.region, "race/lease",
				  "grant.owner_taken", 300, 0, false);
	HARNESS_WAIT_FOR(harness_proc_state(pa) == 'T', 5000,
			 "A never stopped after its owner CAS");
	int64_t idx = lm_name_lookup(&r, "race/lease", 10, 0);
	assert_true(idx >= 0);
	struct lm_slot *s0 = lm_slot_of(&r, 0, (uint32_t)idx);
	int64_t as = slot_of_pid(&r, pa);
	assert_int_equal(LM_OWNER_SESSION(atomic_load(&s0->owner)), as + 1);

	/* B holds exactly two tables, 0 and 1, so that losing its lease on
	 * table 0 would cost it the lock. */
	lm_client *b;
	assert_int_equal(lm_connect(d.region, &b), 0);
	atomic_fetch_or(&b->ctx.self->isolated, 1u << 2);
	lm_grant gb;
	int64_t t0 = harness_now_ms();
	/* B's lease (15 s) outlasts A's resume and exit below on a loaded
	 * host; its wait (15 s) still ends before a max-TTL (20 s) cap. */
	int rc = lm_acquire(b, "race/lease", 15000, 15000, &gb);
	int64_t took = harness_now_ms() - t0;
	if (rc != 0)
		fail_msg("B never got the lock behind A's frozen 300 ms "
			 "attempt: %s", lm_strerror(rc));
	if (took > 10000)
		fail_msg("B waited %lld ms behind A's frozen attempt: its cap "
			 "was not A's 300 ms TTL", (long long)took);
	assert_int_equal(LM_OWNER_SESSION(atomic_load(&s0->owner)),
			 b->ctx.session + 1);

	harness_resume(pa);
	HARNESS_WAIT_FOR(atomic_load(&a->ended_ms) != 0, 5000,
			 "A never finished");
	assert_int_equal(atomic_load(&a->rc), LM_EBUSY);
	harness_expect_exit(pa, 5000, 0, "A");
	/* B's lease on table 0 is still B's own. */
	uint64_t lease = atomic_load(&s0->lease);
	assert_int_equal(LM_LEASE_TAG(lease),
			 LM_OWNER_TAG(atomic_load(&s0->owner)));
	rc = lm_renew(b, &gb, 5000);
	if (rc != 0)
		fail_msg("B's on-time renew failed (%s): A overwrote its lease",
			 lm_strerror(rc));
	assert_int_equal(lm_release(b, &gb), 0);
	lm_disconnect(b);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 6. what a restart tells the next holder ----------------------- */

/*
 * A holder on all three tables renews while one of them has restarted.
 * It keeps its lock on the other two, and releases it cleanly later.
 * The table it lost used to be given back ABANDONED, a mark that
 * survived the restart: a later holder whose majority included that
 * table was told LM_GRANT_RECOVERED (the data may be half-written) when
 * nothing had been lost. A table dropped by a grant that goes on is now
 * freed clean, and a table of another life never gets a mark.
 */
static void restart_during_renew_is_not_a_loss(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "renew", "--restart-delay", "-1",
			       "--max-ttl", "10000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h, *n;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &n), 0);
	lm_grant g, g2;
	/* The lease (8 s) outlasts the server kill and start below on a
	 * loaded host: the renew after them must find it still held. */
	assert_int_equal(lm_acquire(h, "race/renew", 8000, 0, &g), 0);
	assert_int_equal(G_MASK(&g), 0x7u);
	harness_kill_server(d.region, &r, 2, false);
	start_server(d.region, &r, 2, false);
	assert_int_equal(lm_renew(h, &g, 8000), 0);
	assert_int_equal(G_MASK(&g), 0x3u);
	/* h holds on, renewing, until table 2 counts again. */
	int64_t deadline = harness_now_ms() + 20000;
	while (harness_server_state(&r, 2) != LM_SRV_UP) {
		if (harness_now_ms() > deadline)
			fail_msg("server 2 never came back up");
		assert_int_equal(lm_renew(h, &g, 8000), 0);
		harness_nap_us(100000);
	}
	assert_int_equal(lm_release(h, &g), 0);
	/* The next majority must use table 2. */
	harness_kill_server(d.region, &r, 0, false);
	assert_int_equal(lm_acquire(n, "race/renew", 1000, 0, &g2), 0);
	if (g2.flags & LM_GRANT_RECOVERED)
		fail_msg("the next holder was told LM_GRANT_RECOVERED after a "
			 "clean release");
	assert_true(g2.token > g.token);
	assert_int_equal(lm_release(n, &g2), 0);
	lm_disconnect(h);
	lm_disconnect(n);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * The other way round: a holder on tables 1 and 2 lets its lease run
 * out (it is hung) while table 2 restarts. Its word on table 2 is from
 * an earlier life; the restarted server used to free such words clean,
 * so a next majority of tables 0 and 2 saw no mark and was not told that
 * its predecessor lost the lock. A grant that lost its majority is
 * abandoned, whichever of its tables restarted.
 */
static void restart_keeps_the_recovered_mark(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "mark", "--restart-delay", "-1", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h, *n;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &n), 0);
	atomic_fetch_or(&h->ctx.self->isolated, 1u << 0);
	lm_grant g, g2;
	assert_int_equal(lm_acquire(h, "race/mark", 300, 0, &g), 0);
	assert_int_equal(G_MASK(&g), 0x6u);
	harness_kill_server(d.region, &r, 2, false);
	start_server(d.region, &r, 2, true);
	/* h never renews: its lease runs out. Then the next majority must
	 * be tables 0 and 2. */
	HARNESS_WAIT_FOR(harness_now_ns() > g.valid_until_ns + 50000000, 5000,
			 "h's lease never ended");
	harness_kill_server(d.region, &r, 1, false);
	assert_int_equal(lm_acquire(n, "race/mark", 1000, 0, &g2), 0);
	if (!(g2.flags & LM_GRANT_RECOVERED))
		fail_msg("the next holder was not told that the last one lost "
			 "its lease");
	assert_true(g2.token > g.token);
	assert_int_equal(lm_release(n, &g2), 0);
	assert_int_equal(lm_release(h, &g), LM_ELEASELOST);
	lm_disconnect(h);
	lm_disconnect(n);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 7. waiting through a loss of quorum --------------------------- */

/*
 * Queued acquires did not notice a lost quorum: a newcomer that found a
 * queue went to wait without looking at the servers and got "timed out:
 * another session held it", and the head slept on its holder's lease.
 * Now whoever reaches its deadline says "no quorum" if that is how
 * things stand.
 */
static void queued_acquires_report_lost_quorum(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "qnoq", "--restart-delay", "-1",
			       "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h, *n;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &n), 0);
	lm_grant g, g2;
	/* The queued waiter's wait (6 s) outlasts the two server kills
	 * below on a loaded host, and h's lease outlasts the wait: the
	 * waiter must end on its deadline with the quorum lost, not with
	 * the servers still up or the lock free. */
	assert_int_equal(lm_acquire(h, "race/qnoq", 15000, 0, &g), 0);
	int64_t idx = lm_name_lookup(&r, "race/qnoq", 9, 0);
	assert_true(idx >= 0);
	struct acquirer *w = harness_shared(sizeof(*w));
	pid_t pw = start_acquirer(w, d.region, "race/qnoq", NULL, 1000, 6000,
				  false);
	HARNESS_WAIT_FOR(lm_queue_count(lm_queue_of(&r, (uint32_t)idx)) == 1 &&
				 harness_proc_state(pw) == 'S',
			 5000, "the waiter never queued");
	harness_kill_server(d.region, &r, 1, false);
	harness_kill_server(d.region, &r, 2, false);

	/* A newcomer behind the queue. */
	int64_t t0 = harness_now_ms();
	int rc = lm_acquire(n, "race/qnoq", 1000, 800, &g2);
	int64_t took = harness_now_ms() - t0;
	if (rc != LM_ENOQUORUM)
		fail_msg("a newcomer behind a queue, with 1 of 3 servers up, "
			 "got \"%s\" after %lld ms", lm_strerror(rc),
			 (long long)took);
	assert_true(took >= 800);
	/* The queued waiter too, at its own deadline. */
	HARNESS_WAIT_FOR(atomic_load(&w->ended_ms) != 0, 15000,
			 "the queued waiter never returned");
	rc = atomic_load(&w->rc);
	if (rc != LM_ENOQUORUM)
		fail_msg("the queued waiter, with 1 of 3 servers up, got \"%s\"",
			 lm_strerror(rc));
	harness_expect_exit(pw, 5000, 0, "waiter");
	lm_disconnect(h);
	lm_disconnect(n);
	harness_shared_free(w, sizeof(*w));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* A wait covers a passing loss of quorum: the acquire is granted soon
 * after a server comes back, instead of failing when it left. */
static void wait_rides_out_quorum_loss(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "ride", "--restart-delay", "-1", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	harness_kill_server(d.region, &r, 1, false);
	harness_kill_server(d.region, &r, 2, false);
	struct acquirer *w = harness_shared(sizeof(*w));
	/* A 20 s wait: one that only looked again at its deadline would
	 * end far beyond the 5 s bound below. */
	pid_t pw = start_acquirer(w, d.region, "race/ride", NULL, 1000, 20000,
				  false);
	/* It has found no quorum, and waits. */
	HARNESS_WAIT_FOR(atomic_load(&w->started_ms) != 0 &&
				 harness_now_ms() >
					 atomic_load(&w->started_ms) + 300,
			 5000, "the acquirer never started");
	if (atomic_load(&w->ended_ms) != 0)
		fail_msg("an acquire with a 20 s wait gave up at once: \"%s\"",
			 lm_strerror(atomic_load(&w->rc)));
	start_server(d.region, &r, 1, true);
	int64_t up = harness_now_ms();
	HARNESS_WAIT_FOR(atomic_load(&w->ended_ms) != 0, 10000,
			 "the acquirer did not finish after the quorum came back");
	assert_int_equal(atomic_load(&w->rc), 0);
	int64_t after = atomic_load(&w->ended_ms) - up;
	if (after > 5000)
		fail_msg("granted %lld ms after the quorum came back",
			 (long long)after);
	harness_expect_exit(pw, 5000, 0, "acquirer");
	harness_shared_free(w, sizeof(*w));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 8. reclaiming a name while it is being acquired --------------- */

struct reclaimer_args {
	char region[LM_REGION_NAME_MAX + 2];
	char pause[64];
	uint32_t idx;
	_Atomic int result; /* enum lm_reclaim + 1, 0 until done */
};

static void reclaimer_main(void *arg)
{
	struct reclaimer_args *a = arg;
	char log[256];
	harness_pause_arm(a->pause, log, sizeof(log));
	lm_hook_init();
	struct lm_region r;
	harness_attach(a->region, &r);
	enum lm_reclaim rc = lm_name_reclaim(&r, a->idx, true);
	atomic_store(&a->result, (int)rc + 1);
	lm_region_detach(&r);
}

/*
 * A reclaimer looks for users of a name, then marks it DYING, and must
 * look again after that: an acquire that took the name between the two
 * looks checked the name's life while it was still LIVE. Here the
 * reclaimer stops between its first look and its DYING, the name is
 * acquired, and the reclaimer resumes: it must find the holder and
 * back off, or a new client would create the name afresh and hold it
 * too.
 */
static void reclaim_rechecks_after_dying(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "rcl1", "--max-ttl", "20000", NULL);
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	lm_lockref ref;
	assert_int_equal(lm_lookup(a, "race/reclaim", &ref), 0);
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	snprintf(ra->region, sizeof(ra->region), "%s", d.region);
	snprintf(ra->pause, sizeof(ra->pause), "names.prechecked");
	ra->idx = (uint32_t)ref.private_[0];
	pid_t pr = harness_fork(reclaimer_main, ra);
	HARNESS_WAIT_FOR(harness_proc_state(pr) == 'T', 5000,
			 "the reclaimer never stopped after its first look");
	lm_grant g, g2;
	assert_int_equal(lm_acquire_ref(a, &ref, 10000, 0, &g), 0);
	harness_resume(pr);
	harness_expect_exit(pr, 5000, 0, "reclaimer");
	if (atomic_load(&ra->result) != LM_IN_USE + 1)
		fail_msg("the name was reclaimed (%d) while a held it",
			 atomic_load(&ra->result) - 1);
	int rc = lm_acquire(b, "race/reclaim", 2000, 0, &g2);
	if (rc == 0)
		fail_msg("b got the name (token %llu) while a held it (token "
			 "%llu)", (unsigned long long)g2.token,
			 (unsigned long long)g.token);
	assert_int_equal(rc, LM_EBUSY);
	assert_int_equal(lm_release(a, &g), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_shared_free(ra, sizeof(*ra));
	harness_lockmgrd_stop(&d);
}

/*
 * The other half: an acquire that resolved a name, then stood still
 * while the name was reclaimed, must see that its name's life ended
 * when it checks after its owner CASes. Without that check it would
 * hold a slot that no longer carries the name, and a new client would
 * create the name again and hold it too.
 */
static void acquire_checks_name_after_owner_cas(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "rcl2", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct acquirer *la = harness_shared(sizeof(*la));
	pid_t pa = start_acquirer(la, d.region, "race/late",
				  "grant.before_tables", 10000, 0, true);
	HARNESS_WAIT_FOR(harness_proc_state(pa) == 'T', 5000,
			 "the acquirer never stopped before the tables");
	int64_t idx = lm_name_lookup(&r, "race/late", 9, 0);
	assert_true(idx >= 0);
	assert_int_equal(lm_name_reclaim(&r, (uint32_t)idx, true),
			 LM_RECLAIMED);
	/* Another name moves into the slot. */
	assert_int_equal(lm_name_lookup(&r, "race/other", 10, 1), idx);
	harness_resume(pa);
	HARNESS_WAIT_FOR(atomic_load(&la->ended_ms) != 0, 5000,
			 "the acquirer never finished");
	assert_int_equal(atomic_load(&la->rc), 0);
	lm_client *b;
	assert_int_equal(lm_connect(d.region, &b), 0);
	lm_grant g;
	int rc = lm_acquire(b, "race/late", 2000, 0, &g);
	if (rc == 0)
		fail_msg("b got race/late (token %llu) while the late acquirer "
			 "held it (token %llu)", (unsigned long long)g.token,
			 (unsigned long long)atomic_load(&la->token));
	assert_int_equal(rc, LM_EBUSY);
	lm_disconnect(b);
	kill(pa, SIGKILL);
	harness_reap(pa, 5000, "late acquirer");
	harness_shared_free(la, sizeof(*la));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * lm_acquire keeps the lockrefs of the names it resolved (client.c, the
 * name cache). One whose name was reclaimed, and whose slot another
 * name moved into, must be found stale and resolved again: the acquire
 * must take its own name, created anew above every token its earlier
 * life issued, and never the name now in the slot.
 */
static void cached_name_reclaimed_is_resolved_again(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "rcl3", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a, *b, *c;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g1, g2, gb, gc;
	assert_int_equal(lm_acquire(a, "race/cached", 2000, 0, &g1), 0);
	assert_int_equal(lm_release(a, &g1), 0);
	int64_t idx = lm_name_lookup(&r, "race/cached", 11, 0);
	assert_true(idx >= 0);
	assert_int_equal(lm_name_reclaim(&r, (uint32_t)idx, true),
			 LM_RECLAIMED);
	/* Another name moves into the slot, and b holds it. */
	assert_int_equal(lm_name_lookup(&r, "race/other", 10, 1), idx);
	assert_int_equal(lm_acquire(b, "race/other", 2000, 0, &gb), 0);
	/* a's cached lockref names the old life of that slot. */
	int rc = lm_acquire(a, "race/cached", 2000, 0, &g2);
	if (rc != 0)
		fail_msg("a's acquire of race/cached by name: %s (its cached "
			 "lockref was taken for the name now in its slot?)",
			 lm_strerror(rc));
	assert_true(g2.token > g1.token);
	int64_t now = lm_name_lookup(&r, "race/cached", 11, 0);
	assert_true(now >= 0 && now != idx);
	/* Each holds its own name. */
	assert_int_equal(lm_acquire(c, "race/cached", 2000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_acquire(c, "race/other", 2000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_release(a, &g2), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	lm_disconnect(c);
	lm_disconnect(b);
	lm_disconnect(a);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 9. a name's insert, stopped half-way -------------------------- */

/* The slot an inserter claimed for a name, and has not linked. */
static int64_t claimed_slot(struct lm_region *r)
{
	for (uint32_t i = 0; i < lm_names_in_use(r); i++)
		if (LM_NAME_STATE(atomic_load(lm_name_life(r, i))) ==
		    LM_NAME_INSERTING)
			return i;
	return -1;
}

/*
 * Wait until the first server up has swept every lock at least twice:
 * let a short lease run out, twice, and see it expired.
 */
static void two_sweeps(lm_client *c, struct lm_region *r)
{
	for (int k = 0; k < 2; k++) {
		lm_grant g;
		assert_int_equal(lm_acquire(c, "race/sweep", 20, 0, &g), 0);
		int64_t idx = lm_name_lookup(r, "race/sweep", 10, 0);
		assert_true(idx >= 0);
		HARNESS_WAIT_FOR(atomic_load(&lm_slot_of(r, 0, (uint32_t)idx)
						      ->owner) ==
					 LM_OWNER_ABANDONED,
				 5000, "no server swept an expired lease");
		assert_int_equal(lm_release(c, &g), LM_ELEASELOST);
	}
}

/*
 * An inserter stopped between claiming a name slot and linking it is
 * alive: its claim must survive any number of server sweeps (a server
 * that freed it would let another name move in, and the inserter would
 * then link a slot that is not its own: the chain would be damaged). An
 * inserter that dies there leaves an orphan, which the servers free.
 */
static void stopped_insert_survives_and_orphan_is_freed(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "insert", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	struct acquirer *a = harness_shared(sizeof(*a));
	pid_t p = start_acquirer(a, d.region, "race/insert", "names.before_link",
				 1000, 0, false);
	HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 5000,
			 "the inserter never stopped before linking");
	int64_t slot = claimed_slot(&r);
	assert_true(slot >= 0);
	two_sweeps(c, &r);
	assert_int_equal(LM_NAME_STATE(atomic_load(lm_name_life(
				 &r, (uint32_t)slot))),
			 LM_NAME_INSERTING);
	harness_resume(p);
	harness_expect_exit(p, 5000, 0, "inserter");
	assert_int_equal(atomic_load(&a->rc), 0);
	assert_int_equal(lm_name_lookup(&r, "race/insert", 11, 0), slot);

	/* Again, and this time it dies there. */
	p = start_acquirer(a, d.region, "race/orphan", "names.before_link", 1000,
			   0, false);
	HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 5000,
			 "the inserter never stopped before linking");
	slot = claimed_slot(&r);
	assert_true(slot >= 0);
	kill(p, SIGKILL);
	harness_reap(p, 5000, "killed inserter");
	HARNESS_WAIT_FOR(LM_NAME_STATE(atomic_load(lm_name_life(
				 &r, (uint32_t)slot))) == LM_NAME_FREE,
			 5000, "the claim of a dead inserter was never freed");
	lm_grant g;
	assert_int_equal(lm_acquire(c, "race/orphan", 1000, 0, &g), 0);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 10. a grab with an out-of-date view of the servers ------------ */

/*
 * S reads the servers' states, takes table 0 and stops. Server 2
 * restarts; H takes the lock on tables 0 and 2 (1 is down); 1 comes back
 * and 0 goes down, so H holds a majority of the servers up. S resumes
 * with its old view: on table 2 it finds H's word from a *later* epoch
 * than the one it read. It used to take that for a word of an earlier
 * life and replace it, and T then got the lock on tables 1 and 2 while
 * H held it. A word from a later life than the one a grab read means
 * the grab's view is out of date: it starts over.
 */
static void stale_view_cannot_take_newer_grant(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "stale", "--max-ttl", "30000",
			       "--restart-delay", "-1", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct acquirer *s = harness_shared(sizeof(*s));
	pid_t ps = start_acquirer(s, d.region, "race/stale",
				  "grant.owner_taken@1,grant.owner_taken@3",
				  50, 0, true);
	HARNESS_WAIT_FOR(harness_proc_state(ps) == 'T', 5000,
			 "S never stopped after its first owner CAS");
	int64_t idx = lm_name_lookup(&r, "race/stale", 10, 0);
	assert_true(idx >= 0);
	harness_kill_server(d.region, &r, 1, false);
	harness_kill_server(d.region, &r, 2, false);
	start_server(d.region, &r, 2, true);
	/* S's frozen attempt on table 0 runs out (its TTL is 50 ms). */
	HARNESS_WAIT_FOR(LM_OWNER_SESSION(atomic_load(
				 &lm_slot_of(&r, 0, (uint32_t)idx)->owner)) == 0,
			 5000, "S's word on table 0 never expired");
	lm_client *h, *t;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &t), 0);
	lm_grant gh, gt;
	assert_int_equal(lm_acquire(h, "race/stale", 20000, 0, &gh), 0);
	assert_int_equal(G_MASK(&gh), 0x5u);
	start_server(d.region, &r, 1, true);
	harness_kill_server(d.region, &r, 0, false);

	harness_resume(ps);
	HARNESS_WAIT_FOR(harness_proc_state(ps) == 'T' ||
				 atomic_load(&s->ended_ms) != 0,
			 5000, "S neither stopped again nor finished");
	uint64_t w2 = atomic_load(&lm_slot_of(&r, 2, (uint32_t)idx)->owner);
	if (w2 != G_OWNER(&gh, 2))
		fail_msg("S replaced H's word on table 2 (%#llx, H's is %#llx)",
			 (unsigned long long)w2,
			 (unsigned long long)G_OWNER(&gh, 2));
	int rc = lm_acquire(t, "race/stale", 20000, 0, &gt);
	if (rc == 0)
		fail_msg("T got the lock (token %llu) while H held it (token "
			 "%llu)", (unsigned long long)gt.token,
			 (unsigned long long)gh.token);
	kill(ps, SIGKILL);
	harness_reap(ps, 5000, "S");
	/* Table 0 is down under it: the grant ends without a majority. */
	assert_int_equal(lm_release(h, &gh), LM_ELEASELOST);
	lm_disconnect(h);
	lm_disconnect(t);
	harness_shared_free(s, sizeof(*s));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 11. two processes for one table ------------------------------- */

/* The reservation server `server` has made durable in dir. */
static uint64_t durable_mark(const char *dir, unsigned server)
{
	char path[512], buf[64];
	snprintf(path, sizeof(path), "%s/server-%u.tokens", dir, server);
	assert_true(harness_read_file(path, buf, sizeof(buf)) >= 24);
	uint64_t v;
	memcpy(&v, buf + 16, sizeof(v)); /* magic, version, server, mark */
	return v;
}

/* The highest token written to table i. */
static uint64_t table_mark(struct lm_region *r, unsigned i)
{
	uint64_t t = 0;
	for (uint32_t k = 0; k < lm_names_in_use(r); k++) {
		uint64_t v = atomic_load(&lm_slot_of(r, i, k)->token);
		t = v > t ? v : t;
	}
	return t;
}

/* Grant and release `lock` until cond holds (within 20 s). */
#define GRANT_UNTIL(c, lock, cond, what)                                   \
	do {                                                               \
		int64_t end_ = harness_now_ms() + 20000;                   \
		while (!(cond)) {                                          \
			lm_grant g_;                                       \
			if (harness_now_ms() > end_)                       \
				fail_msg("%s never happened", what);       \
			if (lm_acquire(c, lock, 1000, 1000, &g_) == 0)     \
				lm_release(c, &g_);                        \
		}                                                          \
	} while (0)

/*
 * A supervisor killed between forking a server and recording its pid
 * leaves that server running, unknown to the next supervisor, which
 * starts another for the same table. Here the orphan then stops in the
 * middle of a reservation (its next mark computed, not yet written),
 * tokens go on, and it resumes. If both processes wrote the table's
 * state file, the orphan's late write would take the durable mark below
 * tokens already written to the table, and a full restart would issue
 * them again. One process per table holds the state file (an flock the
 * kernel drops at its death), so the new one waits for the orphan to go.
 */
static void one_writer_per_state_file(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	char dir[256], log[256];
	harness_tmpdir(dir, sizeof(dir));
	harness_pause_arm("supervisor.server_forked@4,server2.reserving@2",
			  log, sizeof(log));
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "writer", "--state-dir", dir, NULL);
	harness_pause_disarm();
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	/* Server 2 restarts; its supervisor stops right after the fork and
	 * is killed there: the new server 2 is an orphan nobody knows. */
	assert_int_equal(harness_lockctl(d.region, "server", "kill", "2", NULL),
			 0);
	pid_t sup = harness_wait_paused(log, "supervisor.server_forked", 5000);
	assert_int_equal(sup, d.pid);
	kill(d.pid, SIGKILL);
	harness_reap(d.pid, 5000, "killed lockmgrd");
	HARNESS_WAIT_FOR(harness_server_state(&r, 2) == LM_SRV_UP, 5000,
			 "the orphaned server 2 never came up");
	/* Tokens run until the orphan stops inside its second
	 * reservation. */
	GRANT_UNTIL(c, "race/writer",
		    harness_paused(log, "server2.reserving") != 0,
		    "the orphan stopping in a reservation");
	pid_t orphan = harness_paused(log, "server2.reserving");
	/* The next supervisor starts another server 2, and tokens go on. */
	d.pid = harness_lockmgrd_spawn(d.region, (const char *const[]){
						"--state-dir", dir, NULL});
	HARNESS_WAIT_FOR(atomic_load(&r.hdr->supervisor_pid) == d.pid &&
				 LM_SRV_EPOCH(atomic_load(
					 &r.servers[2]->state)) > 2,
			 5000, "the next supervisor never restarted server 2");
	uint64_t before = table_mark(&r, 0) > table_mark(&r, 1)
				  ? table_mark(&r, 0)
				  : table_mark(&r, 1);
	/* Tokens go on for up to two seconds, or until three blocks have
	 * been written to table 2: a second process serving table 2 next
	 * to the stopped orphan would have reserved them by then. */
	int64_t until = harness_now_ms() + 2000;
	GRANT_UNTIL(c, "race/writer",
		    harness_now_ms() > until ||
			    table_mark(&r, 2) > before + 3 * LM_TOKEN_BLOCK,
		    "tokens going on");
	harness_resume(orphan);
	harness_reap(orphan, 5000, "the orphaned server 2");
	HARNESS_WAIT_FOR(harness_server_state(&r, 2) == LM_SRV_UP, 10000,
			 "the new server 2 never came up");
	GRANT_UNTIL(c, "race/writer", table_mark(&r, 2) > before,
		    "tokens on table 2 again");
	uint64_t written = table_mark(&r, 2), mark = durable_mark(dir, 2);
	if (mark < written)
		fail_msg("server 2's durable mark went back to %llu, below token "
			 "%llu written to its table",
			 (unsigned long long)mark, (unsigned long long)written);
	lm_disconnect(c);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

/* ---- 12. a client that dies while the service stops ---------------- */

/*
 * An ephemeral service that stops waits out the leases still held, so
 * that no new service grants them twice. A client that died just as
 * the stop began holds nothing: its death must be handled on the way
 * out, not left to lease expiry. Here the supervisor stops right after
 * its event loop, the holder of a 20 s lease is killed, and the
 * supervisor resumes: it must stop in seconds, not after the lease.
 */
static void stop_frees_a_client_that_died_meanwhile(void)
{
	char log[256];
	harness_pause_arm("supervisor.stopping", log, sizeof(log));
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "stop", "--max-ttl", "20000", NULL);
	harness_pause_disarm();
	struct acquirer *a = harness_shared(sizeof(*a));
	pid_t pa = start_acquirer(a, d.region, "race/stop", NULL, 20000, 0,
				  true);
	HARNESS_WAIT_FOR(atomic_load(&a->ended_ms) != 0, 5000,
			 "the holder never acquired");
	assert_int_equal(atomic_load(&a->rc), 0);
	pid_t sup = d.pid;
	d.pid = 0;
	kill(sup, SIGTERM);
	assert_int_equal(harness_wait_paused(log, "supervisor.stopping", 5000),
			 sup);
	kill(pa, SIGKILL);
	harness_reap(pa, 5000, "the holder");
	harness_resume(sup);
	harness_expect_exit(sup, 5000, 0,
			    "lockmgrd, stopping after its only client died "
			    "(it waited for the dead client's 20 s lease?)");
	harness_shared_free(a, sizeof(*a));
}

/* ---- 13. a name's removal, its finisher stopped ------------------- */

/* The life word of name slot idx. */
static uint64_t name_life(struct lm_region *r, int64_t idx)
{
	return atomic_load(lm_name_life(r, (uint32_t)idx));
}

/* Fork a reclaimer of slot idx that stops where it starts to finish
 * the removal (the name DEAD, the slot still linked), and wait for it. */
static pid_t stopped_finisher(struct reclaimer_args *ra, const char *region,
			      int64_t idx)
{
	snprintf(ra->region, sizeof(ra->region), "%s", region);
	snprintf(ra->pause, sizeof(ra->pause), "names.finishing");
	ra->idx = (uint32_t)idx;
	atomic_store(&ra->result, 0);
	pid_t pr = harness_fork(reclaimer_main, ra);
	HARNESS_WAIT_FOR(harness_proc_state(pr) == 'T', 5000,
			 "the reclaimer never stopped at names.finishing");
	return pr;
}

/*
 * Only a name's finisher frees its slot. A reclaimer stopped after the
 * name was committed DEAD, just before it marks the slot's link, may
 * wake up any time later; had anyone else freed the slot meanwhile and
 * another name moved in, its mark would cut that name out of the
 * index, and the next lookup would create it twice. So while the
 * finisher lives the slot stays DEAD (a name made anew goes elsewhere,
 * and nobody else finishes it, servers' sweeps included); when it
 * resumes it finishes; when it is killed, a server takes over.
 */
static void only_the_finisher_frees_a_name(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "fin", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);

	/* 1. Stopped, then resumed. */
	int64_t idx = lm_name_lookup(&r, "race/fin", 8, 1);
	assert_true(idx >= 0);
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	pid_t pr = stopped_finisher(ra, d.region, idx);
	uint64_t dead = name_life(&r, idx);
	assert_int_equal(LM_NAME_STATE(dead), LM_NAME_DEAD);
	/* The name is made anew, in another slot. */
	int64_t again = lm_name_lookup(&r, "race/fin", 8, 1);
	assert_true(again >= 0);
	assert_int_not_equal(again, idx);
	/* Nobody else finishes the removal: not a settle by this process,
	 * not two sweeps of the servers. */
	lm_name_settle(&r, (uint32_t)idx, LM_NAME_GEN(dead));
	two_sweeps(c, &r);
	if (name_life(&r, idx) != dead)
		fail_msg("slot %lld went from DEAD to %u while its finisher "
			 "was stopped", (long long)idx,
			 LM_NAME_STATE(name_life(&r, idx)));
	harness_resume(pr);
	harness_expect_exit(pr, 5000, 0, "resumed finisher");
	assert_int_equal(atomic_load(&ra->result), LM_RECLAIMED + 1);
	assert_int_equal(LM_NAME_STATE(name_life(&r, idx)), LM_NAME_FREE);
	assert_int_equal(lm_name_lookup(&r, "race/fin", 8, 0), again);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "race/fin", 1000, 0, &g), 0);
	assert_int_equal(lm_release(c, &g), 0);

	/* 2. Stopped, then killed: the servers take over. */
	pr = stopped_finisher(ra, d.region, again);
	dead = name_life(&r, again);
	assert_int_equal(LM_NAME_STATE(dead), LM_NAME_DEAD);
	kill(pr, SIGKILL);
	harness_reap(pr, 5000, "killed finisher");
	HARNESS_WAIT_FOR(LM_NAME_STATE(name_life(&r, again)) == LM_NAME_FREE,
			 5000, "no server finished the removal of a name "
			 "whose finisher was killed");
	assert_int_equal(lm_name_lookup(&r, "race/fin", 8, 0), LM_ENOTHELD);
	harness_shared_free(ra, sizeof(*ra));
	lm_disconnect(c);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * A lockref names its lock's slot and the life of the name there. The
 * life counter must not come round while a ref may still be held, or a
 * ref kept across that many reuses of its slot would take whatever
 * name lives there then. Here the slot's counter is moved on as if
 * 2^29 names (what a 29-bit counter held) had lived and died in it
 * since the ref was made, and another name moves in: the ref must find
 * its own name again, and leave the other alone.
 */
static void lockref_survives_many_reuses_of_its_slot(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "wrap", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	lm_lockref ref;
	assert_int_equal(lm_lookup(a, "race/wrap", &ref), 0);
	uint32_t idx = (uint32_t)ref.private_[0];
	assert_int_equal(lm_name_reclaim(&r, idx, true),
			 LM_RECLAIMED);
	_Atomic uint64_t *life = lm_name_life(&r, idx);
	uint64_t l = atomic_load(life);
	assert_int_equal(LM_NAME_STATE(l), LM_NAME_FREE);
	uint64_t later = LM_NAME_LIFE(LM_NAME_GEN(l) + (UINT64_C(1) << 29) - 1,
				      LM_NAME_FREE);
	assert_true(atomic_compare_exchange_strong(life, &l, later));
	assert_int_equal(lm_name_lookup(&r, "race/other", 10, 1), idx);
	lm_grant g, g2;
	assert_int_equal(lm_acquire_ref(a, &ref, 1000, 0, &g), 0);
	if (ref.private_[0] == idx)
		fail_msg("a ref to race/wrap, made 2^29 lives of slot %u ago, "
			 "took the slot of race/other", idx);
	int rc = lm_acquire(b, "race/other", 1000, 0, &g2);
	if (rc != 0)
		fail_msg("race/other: %s (the old ref to race/wrap holds its "
			 "slot?)", lm_strerror(rc));
	assert_int_equal(lm_release(b, &g2), 0);
	assert_int_equal(lm_release(a, &g), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 14. two clock settings at once -------------------------------- */

/* Server 1's clock, ahead of this host's by how many ms. */
static int64_t server1_offset_ms(struct lm_region *r)
{
	int64_t now = harness_now_ms();
	return lm_server_clock_ms(r->servers[1], now * 1000000) - now;
}

/*
 * A server's clock setting is double-buffered: a setter writes the
 * spare entry, then publishes it. Two setters at once write the same
 * spare entry, and the second publishes it while the first is still
 * writing: readers then use a setting that is half one, half the
 * other, and nothing tells them. So lockctl sets one server's clock at
 * a time. Here the first setter stops half-way through its entry; the
 * second must give up, and the clock ends as the first set it.
 */
static void one_clock_setting_at_a_time(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "clock", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	char bin[512], log[256];
	harness_bin_path(bin, sizeof(bin), "lockctl");
	char *first[] = {bin, "-r", d.region, "server", "skew", "1",
			 "--offset", "5000", NULL};
	char *second[] = {bin, "-r", d.region, "server", "skew", "1",
			  "--offset", "-3000", "--rate", "2", NULL};
	harness_pause_arm("clock.skew_writing", log, sizeof(log));
	pid_t a = harness_spawn(first, "/dev/null", "/dev/null");
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "clock.skew_writing", 5000),
			 a);
	int rc = harness_run(second, "/dev/null", "/dev/null", 10000);
	if (rc == 0)
		fail_msg("a second lockctl set server 1's clock while the "
			 "first was half-way through setting it");
	assert_int_equal(rc, 69); /* EX_CTL_UNAVAILABLE: try again */
	harness_resume(a);
	harness_expect_exit(a, 5000, 0, "the first lockctl server skew");
	int64_t off = server1_offset_ms(&r);
	if (off < 4900 || off > 5100)
		fail_msg("server 1's clock is %+lld ms off, not the +5000 the "
			 "first lockctl set", (long long)off);
	/* Done: the next setting goes through. At rate 2 the server's
	 * clock gains a millisecond on ours for each one after the
	 * setting, so the offset read later is -3000 plus at most the
	 * time since we started lockctl (under ASan on a loaded host,
	 * hundreds of ms). */
	int64_t t_set = harness_now_ms();
	assert_int_equal(harness_run(second, "/dev/null", "/dev/null", 10000),
			 0);
	off = server1_offset_ms(&r);
	int64_t gained = harness_now_ms() - t_set;
	if (off < -3100 || off > -2900 + gained)
		fail_msg("server 1's clock is %+lld ms off after --offset "
			 "-3000 --rate 2 (%lld ms ago at most)", (long long)off,
			 (long long)gained);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 15. a table dropped at the last check ------------------------- */

/*
 * An acquire checks its tables once more after it has written its
 * token, and counts only those still its own. How long its grant is
 * valid must come from those same tables: one dropped there holds
 * nothing, however long its lease looked. Here server 2's clock runs at
 * twice real speed, so its lease of 4 s ends after 2 s; the acquirer
 * stops before its last check, server 0 is killed, and the grant rests
 * on tables 1 and 2: it must not be trusted past table 2's 2 s.
 */
static void validity_comes_from_verified_tables(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "verify", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockctl");
	char *fast[] = {bin, "-r", d.region, "server", "skew", "2", "--rate",
			"2", NULL};
	assert_int_equal(harness_run(fast, "/dev/null", "/dev/null", 10000),
			 0);
	struct acquirer *a = harness_shared(sizeof(*a));
	pid_t pa = start_acquirer(a, d.region, "race/verify",
				  "grant.before_verify", 4000, 0, true);
	HARNESS_WAIT_FOR(harness_proc_state(pa) == 'T', 5000,
			 "the acquirer never stopped before its last check");
	harness_kill_server(d.region, &r, 0, false);
	harness_resume(pa);
	HARNESS_WAIT_FOR(atomic_load(&a->ended_ms) != 0, 5000,
			 "the acquirer never finished");
	assert_int_equal(atomic_load(&a->rc), 0);
	int64_t valid_ms = atomic_load(&a->valid_until_ns) / 1000000 -
			   atomic_load(&a->started_ms);
	if (valid_ms > 2000)
		fail_msg("the grant on tables 1 and 2 is valid for %lld ms, "
			 "past the 2000 ms of table 2's lease (server 0's "
			 "dropped table counted)", (long long)valid_ms);
	kill(pa, SIGKILL);
	harness_reap(pa, 5000, "the acquirer");
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 16. a removal's rounds and its finisher ------------------------ */

/*
 * Only a name's finisher decides a DYING round. Were any process that
 * met the name DYING allowed to commit it, one that looked during an
 * earlier round (the name was used, the removal called off, then begun
 * again) could commit the later round with its stale look: a name
 * acquired in between would die under its holder, and be created again
 * for a second holder. So while the finisher stands still the name
 * stays DYING through the servers' sweeps; a client that wants it calls
 * the removal off and holds it; and the finisher, resumed, backs off.
 */
static void only_the_finisher_decides(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "decide", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	int64_t idx = lm_name_lookup(&r, "race/decide", 11, 1);
	assert_true(idx >= 0);
	uint64_t g = LM_NAME_GEN(name_life(&r, idx));
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	snprintf(ra->region, sizeof(ra->region), "%s", d.region);
	snprintf(ra->pause, sizeof(ra->pause), "names.dying");
	ra->idx = (uint32_t)idx;
	pid_t pr = harness_fork(reclaimer_main, ra);
	HARNESS_WAIT_FOR(harness_proc_state(pr) == 'T', 5000,
			 "the reclaimer never stopped at names.dying");
	uint64_t dying = LM_NAME_LIFE(g, LM_NAME_DYING);
	assert_int_equal(name_life(&r, idx), dying);
	two_sweeps(a, &r);
	if (name_life(&r, idx) != dying)
		fail_msg("a DYING name went to state %u while its finisher was "
			 "stopped: someone else decided its round",
			 LM_NAME_STATE(name_life(&r, idx)));
	lm_grant ga, gb;
	assert_int_equal(lm_acquire(a, "race/decide", 10000, 0, &ga), 0);
	assert_int_equal(G_LOCK(&ga), (uint32_t)idx);
	assert_int_equal(name_life(&r, idx), LM_NAME_LIFE(g, LM_NAME_LIVE));
	harness_resume(pr);
	harness_expect_exit(pr, 5000, 0, "resumed reclaimer");
	assert_int_equal(atomic_load(&ra->result), LM_IN_USE + 1);
	assert_int_equal(name_life(&r, idx), LM_NAME_LIFE(g, LM_NAME_LIVE));
	int rc = lm_acquire(b, "race/decide", 1000, 0, &gb);
	if (rc == 0)
		fail_msg("b got race/decide (token %llu, lock %u) while a holds "
			 "it (token %llu, lock %u)", (unsigned long long)gb.token,
			 G_LOCK(&gb), (unsigned long long)ga.token, G_LOCK(&ga));
	assert_int_equal(rc, LM_EBUSY);
	assert_int_equal(lm_release(a, &ga), 0);
	harness_shared_free(ra, sizeof(*ra));
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * A finisher is a process, and only its death frees its job. A server
 * orphaned by a supervisor killed between forking it and recording it
 * runs on in an old epoch after the next supervisor starts its table
 * anew; had the epoch named it, others would take its removal over
 * while it still ran, and when it woke it would mark the link of
 * whatever name had moved into the slot. Here the orphan takes over a
 * removal whose first finisher was killed and stops inside it; the slot
 * must stay DEAD, its finisher the orphan, through the new servers'
 * sweeps; resumed, the orphan finishes, and the names are whole.
 */
static void an_orphaned_server_keeps_its_removal(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	char log[256];
	harness_pause_arm("supervisor.server_forked@4,names.finishing", log,
			  sizeof(log));
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "orphan", "--max-ttl", "20000", NULL);
	harness_pause_disarm();
	struct lm_region r;
	harness_attach(d.region, &r);
	/* Server 0 restarts; its supervisor stops right after the fork and
	 * is killed there: the new server 0 is an orphan nobody knows. */
	assert_int_equal(harness_lockctl(d.region, "server", "kill", "0", NULL),
			 0);
	assert_int_equal(harness_wait_paused(log, "supervisor.server_forked",
					     5000),
			 d.pid);
	kill(d.pid, SIGKILL);
	harness_reap(d.pid, 5000, "killed lockmgrd");
	HARNESS_WAIT_FOR(harness_server_state(&r, 0) == LM_SRV_UP, 5000,
			 "the orphaned server 0 never came up");
	uint64_t e1 = LM_SRV_EPOCH(atomic_load(&r.servers[0]->state));
	/* A removal whose finisher is killed inside it: the first server
	 * up, the orphan, takes it over and stops there too. */
	int64_t idx = lm_name_lookup(&r, "race/x", 6, 1);
	assert_true(idx >= 0);
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	pid_t pr = stopped_finisher(ra, d.region, idx);
	uint64_t dead = name_life(&r, idx);
	assert_int_equal(LM_NAME_STATE(dead), LM_NAME_DEAD);
	kill(pr, SIGKILL);
	harness_reap(pr, 5000, "killed finisher");
	pid_t orphan = harness_wait_paused(log, "names.finishing", 5000);
	/* (The region does not name the orphan: its supervisor died before
	 * recording it. It is neither of the other two servers.) */
	assert_true(orphan != atomic_load(&r.servers[1]->pid) &&
		    orphan != atomic_load(&r.servers[2]->pid));
	/* The next supervisor starts server 0 anew. */
	d.pid = harness_lockmgrd_spawn(
		d.region, (const char *const[]){"--ephemeral", NULL});
	HARNESS_WAIT_FOR(atomic_load(&r.hdr->supervisor_pid) == d.pid &&
				 LM_SRV_EPOCH(atomic_load(
					 &r.servers[0]->state)) > e1 &&
				 harness_server_state(&r, 0) == LM_SRV_UP,
			 10000, "the next supervisor never restarted server 0");
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);
	two_sweeps(a, &r);
	if (name_life(&r, idx) != dead)
		fail_msg("slot %lld went from DEAD to %u while its finisher, the "
			 "orphaned server (pid %d), still ran", (long long)idx,
			 LM_NAME_STATE(name_life(&r, idx)), (int)orphan);
	harness_resume(orphan);
	HARNESS_WAIT_FOR(LM_NAME_STATE(name_life(&r, idx)) == LM_NAME_FREE,
			 5000, "the resumed orphan never finished its removal");
	harness_reap(orphan, 5000, "the superseded orphan");
	lm_grant ga, gb;
	assert_int_equal(lm_acquire(a, "race/y", 10000, 0, &ga), 0);
	assert_int_equal(lm_name_lookup(&r, "race/y", 6, 0), G_LOCK(&ga));
	int rc = lm_acquire(b, "race/y", 1000, 0, &gb);
	if (rc == 0)
		fail_msg("b got race/y (token %llu, lock %u) while a holds it "
			 "(token %llu, lock %u)", (unsigned long long)gb.token,
			 G_LOCK(&gb), (unsigned long long)ga.token, G_LOCK(&ga));
	assert_int_equal(rc, LM_EBUSY);
	assert_int_equal(lm_release(a, &ga), 0);
	harness_shared_free(ra, sizeof(*ra));
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

struct settler_args {
	char region[LM_REGION_NAME_MAX + 2];
	uint32_t idx;
	uint64_t gen;
	_Atomic int done;
};

static void settler_main(void *arg)
{
	struct settler_args *a = arg;
	char log[256];
	harness_pause_arm("names.settling", log, sizeof(log));
	lm_hook_init();
	struct lm_region r;
	harness_attach(a->region, &r);
	lm_name_settle(&r, a->idx, a->gen);
	atomic_store(&a->done, 1);
	for (;;)
		pause(); /* a long-lived process, as the supervisor is */
}

/*
 * A process that met a name DEAD and means to help may find, by the time
 * it takes the finisher word, that the finisher has freed the slot and
 * given the word back. Holding on to it would bar every later name in
 * that slot from being reclaimed by anyone else for as long as it
 * lives. Here the helper stops between its look and its take, the
 * finisher completes, another name moves in, and it must be
 * reclaimable.
 */
static void a_late_helper_gives_the_word_back(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "late", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	int64_t idx = lm_name_lookup(&r, "race/late", 9, 1);
	assert_true(idx >= 0);
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	pid_t pr = stopped_finisher(ra, d.region, idx);
	uint64_t dead = name_life(&r, idx);
	assert_int_equal(LM_NAME_STATE(dead), LM_NAME_DEAD);
	struct settler_args *sa = harness_shared(sizeof(*sa));
	snprintf(sa->region, sizeof(sa->region), "%s", d.region);
	sa->idx = (uint32_t)idx;
	sa->gen = LM_NAME_GEN(dead);
	pid_t ps = harness_fork(settler_main, sa);
	HARNESS_WAIT_FOR(harness_proc_state(ps) == 'T', 5000,
			 "the helper never stopped at names.settling");
	harness_resume(pr);
	harness_expect_exit(pr, 5000, 0, "resumed finisher");
	assert_int_equal(LM_NAME_STATE(name_life(&r, idx)), LM_NAME_FREE);
	harness_resume(ps);
	HARNESS_WAIT_FOR(atomic_load(&sa->done), 5000,
			 "the helper never finished its settle");
	assert_int_equal(lm_name_lookup(&r, "race/next", 9, 1), idx);
	uint64_t f = atomic_load(&r.names[idx].finisher);
	if (f != 0)
		fail_msg("slot %lld: the helper kept the finisher word (%llx) of "
			 "a life that had ended", (long long)idx,
			 (unsigned long long)f);
	assert_int_equal(lm_name_reclaim(&r, (uint32_t)idx, true),
			 LM_RECLAIMED);
	kill(ps, SIGKILL);
	harness_reap(ps, 5000, "the helper");
	harness_shared_free(ra, sizeof(*ra));
	harness_shared_free(sa, sizeof(*sa));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 17. proving a finisher gone ------------------------------------ */

struct blind_args {
	char region[LM_REGION_NAME_MAX + 2];
	uint32_t idx;
	_Atomic int blind, result; /* result: enum lm_reclaim + 1 */
	_Atomic uint64_t word;     /* the finisher word it left */
};

/* Reclaim while out of file descriptors: /proc/self/stat unreadable. */
static void blind_reclaimer_main(void *arg)
{
	struct blind_args *a = arg;
	struct lm_region r;
	harness_attach(a->region, &r);
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	int last = -1;
	for (int fd; (fd = open("/dev/null", O_RDONLY)) >= 0;)
		last = fd;
	atomic_store(&a->blind, open("/proc/self/stat", O_RDONLY) < 0);
	enum lm_reclaim rc = lm_name_reclaim(&r, a->idx, true);
	atomic_store(&a->word, atomic_load(&r.names[a->idx].finisher));
	atomic_store(&a->result, (int)rc + 1);
	(void)last;
}

/*
 * Others judge a finisher by its pid and start time; a process that
 * cannot read its own start time (out of file descriptors, here) would
 * name itself with none, and anyone who can read /proc would then find
 * "another start time" and judge it gone while it ran, take its
 * removal over and free the slot under it. So it claims nothing until
 * it can name itself.
 */
static void a_finisher_that_cannot_name_itself_claims_nothing(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "blind", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	int64_t idx = lm_name_lookup(&r, "race/blind", 10, 1);
	assert_true(idx >= 0);
	uint64_t live = name_life(&r, idx);
	struct blind_args *a = harness_shared(sizeof(*a));
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	a->idx = (uint32_t)idx;
	pid_t p = harness_fork(blind_reclaimer_main, a);
	harness_expect_exit(p, 5000, 0, "the reclaimer out of descriptors");
	assert_true(atomic_load(&a->blind));
	if (atomic_load(&a->word) != 0 ||
	    atomic_load(&a->result) != LM_IN_USE + 1)
		fail_msg("a process that could not read its start time "
			 "claimed the removal (finisher word %llx, result %d)",
			 (unsigned long long)atomic_load(&a->word),
			 atomic_load(&a->result) - 1);
	assert_int_equal(name_life(&r, idx), live);
	assert_int_equal(lm_name_reclaim(&r, (uint32_t)idx, true),
			 LM_RECLAIMED);
	harness_shared_free(a, sizeof(*a));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/*
 * A finisher killed inside a removal, but not yet reaped by its parent
 * (a zombie: kill(pid, 0) still finds it, and /proc still shows its
 * start time), is gone all the same: the servers take its removal over
 * and free the slot, rather than leave it out of use until the parent
 * gets round to wait().
 */
static void a_zombie_finisher_is_gone(void)
{
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "zombie", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	int64_t idx = lm_name_lookup(&r, "race/zombie", 11, 1);
	assert_true(idx >= 0);
	struct reclaimer_args *ra = harness_shared(sizeof(*ra));
	pid_t pr = stopped_finisher(ra, d.region, idx);
	assert_int_equal(LM_NAME_STATE(name_life(&r, idx)), LM_NAME_DEAD);
	kill(pr, SIGKILL);
	HARNESS_WAIT_FOR(harness_proc_state(pr) == 'Z', 5000,
			 "the killed finisher never became a zombie");
	HARNESS_WAIT_FOR(LM_NAME_STATE(name_life(&r, idx)) == LM_NAME_FREE,
			 5000, "no server took over from a zombie finisher "
			 "(pid %d, not yet reaped)", (int)pr);
	assert_int_equal(harness_proc_state(pr), 'Z');
	harness_reap(pr, 5000, "the zombie finisher");
	harness_shared_free(ra, sizeof(*ra));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(disconnect_cannot_free_next_life, 60)
HARNESS_CASE(dead_claimer_slot_reclaimed, 60)
HARNESS_CASE(live_claimer_keeps_its_claim, 60)
HARNESS_CASE(dead_slot_finished_by_next_supervisor, 60)
HARNESS_CASE(waiter_count_repair, 60)
HARNESS_CASE(leaving_waiter_counted_once, 60)
HARNESS_CASE(frozen_acquirer_cannot_clobber_lease, 60)
HARNESS_CASE(restart_during_renew_is_not_a_loss, 60)
HARNESS_CASE(restart_keeps_the_recovered_mark, 60)
HARNESS_CASE(queued_acquires_report_lost_quorum, 60)
HARNESS_CASE(wait_rides_out_quorum_loss, 60)
HARNESS_CASE(reclaim_rechecks_after_dying, 60)
HARNESS_CASE(acquire_checks_name_after_owner_cas, 60)
HARNESS_CASE(cached_name_reclaimed_is_resolved_again, 60)
HARNESS_CASE(stopped_insert_survives_and_orphan_is_freed, 60)
HARNESS_CASE(stale_view_cannot_take_newer_grant, 60)
HARNESS_CASE(one_writer_per_state_file, 90)
HARNESS_CASE(stop_frees_a_client_that_died_meanwhile, 60)
HARNESS_CASE(only_the_finisher_frees_a_name, 60)
HARNESS_CASE(lockref_survives_many_reuses_of_its_slot, 60)
HARNESS_CASE(one_clock_setting_at_a_time, 60)
HARNESS_CASE(validity_comes_from_verified_tables, 60)
HARNESS_CASE(only_the_finisher_decides, 60)
HARNESS_CASE(an_orphaned_server_keeps_its_removal, 90)
HARNESS_CASE(a_late_helper_gives_the_word_back, 60)
HARNESS_CASE(a_finisher_that_cannot_name_itself_claims_nothing, 60)
HARNESS_CASE(a_zombie_finisher_is_gone, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(disconnect_cannot_free_next_life),
		harness_case(dead_claimer_slot_reclaimed),
		harness_case(live_claimer_keeps_its_claim),
		harness_case(dead_slot_finished_by_next_supervisor),
		harness_case(waiter_count_repair),
		harness_case(leaving_waiter_counted_once),
		harness_case(frozen_acquirer_cannot_clobber_lease),
		harness_case(restart_during_renew_is_not_a_loss),
		harness_case(restart_keeps_the_recovered_mark),
		harness_case(queued_acquires_report_lost_quorum),
		harness_case(wait_rides_out_quorum_loss),
		harness_case(reclaim_rechecks_after_dying),
		harness_case(acquire_checks_name_after_owner_cas),
		harness_case(cached_name_reclaimed_is_resolved_again),
		harness_case(stopped_insert_survives_and_orphan_is_freed),
		harness_case(stale_view_cannot_take_newer_grant),
		harness_case(one_writer_per_state_file),
		harness_case(stop_frees_a_client_that_died_meanwhile),
		harness_case(only_the_finisher_frees_a_name),
		harness_case(lockref_survives_many_reuses_of_its_slot),
		harness_case(one_clock_setting_at_a_time),
		harness_case(validity_comes_from_verified_tables),
		harness_case(only_the_finisher_decides),
		harness_case(an_orphaned_server_keeps_its_removal),
		harness_case(a_late_helper_gives_the_word_back),
		harness_case(a_finisher_that_cannot_name_itself_claims_nothing),
		harness_case(a_zombie_finisher_is_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
