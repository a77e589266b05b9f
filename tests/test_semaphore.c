/*
 * test_semaphore.c - counting semaphores (lm_sem_acquire) with a real
 * lockmgrd and real client processes: N holders and a waiter, the FIFO
 * order of waiters, tokens per slot, a SIGKILLed and a SIGSTOPped
 * holder, kinds and arguments, and `lockctl run --slots`.
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"
#include "shm/wait_queue.h"

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

static void sem_or_fail(lm_client *c, const char *name, uint32_t slots,
			int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	int rc = lm_sem_acquire(c, name, slots, ttl_ms, wait_ms, g);
	if (rc != 0)
		fail_msg("lm_sem_acquire(%s, %u slots, wait %lld): %s", name,
			 slots, (long long)wait_ms, lm_strerror(rc));
}

/* Waiters queued at the gate of semaphore `name` (0 if it has none). */
static uint32_t gate_waiters(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		return 0;
	return lm_queue_count(lm_queue_of(r, (uint32_t)idx));
}

/* Lines of s that begin with c (a copy's log: '+' entries). */
static int lines_starting(const char *s, char c)
{
	int n = 0;
	bool start = true;
	for (; *s != '\0'; s++) {
		if (start && *s == c)
			n++;
		start = *s == '\n';
	}
	return n;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

/* ---- N holders at once, the N+1th waits ---------------------------- */

static int waiter_pipe[2];

static void one_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	/* A wait (20 s) that outlasts the queueing and the release below
	 * on a loaded host: the grant must come from the release. */
	sem_or_fail(c, "pool", 3, 10000, 20000, &g);
	char slot = (char)('0' + lm_sem_slot(&g));
	assert_int_equal(write(waiter_pipe[1], &slot, 1), 1);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
}

static void n_holders_and_a_waiter(void)
{
	harness_lockmgrd_start(&d, "semn", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *c[4];
	lm_grant g[4];
	bool seen[3] = {false, false, false};
	for (int k = 0; k < 3; k++) {
		c[k] = connect_or_fail();
		/* 20 s leases: the waiter below, if no release woke it,
		 * would wait for them, far beyond its 8 s bound. */
		sem_or_fail(c[k], "pool", 3, 20000, 0, &g[k]);
		int s = lm_sem_slot(&g[k]);
		if (s < 0 || s > 2 || seen[s])
			fail_msg("holder %d got slot %d: each of 3 holders "
				 "must have its own slot of 0..2", k, s);
		seen[s] = true;
		assert_true(g[k].token > 0);
		assert_int_equal(g[k].mode, LM_MODE_X);
	}
	/* Full: a try fails at once, a short wait times out. */
	c[3] = connect_or_fail();
	int rc = lm_sem_acquire(c[3], "pool", 3, 10000, 0, &g[3]);
	if (rc != LM_EBUSY)
		fail_msg("a 4th holder of 3 slots: %d (%s), expected "
			 "LM_EBUSY", rc, lm_strerror(rc));
	assert_int_equal(lm_sem_slot(&g[3]), -1);
	rc = lm_sem_acquire(c[3], "pool", 3, 10000, 50, &g[3]);
	if (rc != LM_ETIMEDOUT)
		fail_msg("a 4th holder waiting 50 ms: %d (%s), expected "
			 "LM_ETIMEDOUT", rc, lm_strerror(rc));

	/* The 4th in another process waits, and gets the slot released. */
	assert_int_equal(pipe(waiter_pipe), 0);
	pid_t w = harness_fork(one_waiter, NULL);
	HARNESS_WAIT_FOR(gate_waiters(&r, "pool") == 1, 10000,
			 "the 4th holder never queued at the gate");
	if (readable(waiter_pipe[0]))
		fail_msg("the 4th holder of 3 slots was granted while all "
			 "3 were held");
	int freed = lm_sem_slot(&g[1]);
	assert_int_equal(lm_renew(c[1], &g[1], 20000), 0);
	assert_int_equal(lm_release(c[1], &g[1]), 0);
	/* 8 s, against 20 s leases: only the release's wake-up (or the
	 * servers' sweep) gets it there. */
	harness_read_byte(waiter_pipe[0], 8000,
			  "the waiter was not granted the released slot");
	harness_expect_exit(w, 5000, 0, "waiter");
	/* (harness_read_byte consumed the byte: ask the child's slot
	 * another way: the slot is free again, and a try takes it.) */
	rc = lm_sem_acquire(c[1], "pool", 3, 10000, 0, &g[1]);
	if (rc != 0 || lm_sem_slot(&g[1]) != freed)
		fail_msg("after the waiter's release, slot %d should be "
			 "free: %s, slot %d", freed, lm_strerror(rc),
			 lm_sem_slot(&g[1]));
	for (int k = 0; k < 3; k++) {
		assert_int_equal(lm_release(c[k], &g[k]), 0);
		/* Released twice: not held. */
		assert_int_equal(lm_release(c[k], &g[k]), LM_ENOTHELD);
	}
	for (int k = 0; k < 4; k++)
		lm_disconnect(c[k]);
	close(waiter_pipe[0]);
	close(waiter_pipe[1]);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- a release wakes the gate's queue ------------------------------ */

enum { HANDOFFS = 15 };

struct handoff {
	_Atomic int errors;
};
static struct handoff *ho;
static int go_pipe[2], back_pipe[2];

static void handoff_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	for (int k = 0; k < HANDOFFS; k++) {
		harness_read_byte(go_pipe[0], 5000, "the holder's go");
		lm_grant g;
		/* Longer than the parent waits for us: a grant must come
		 * from the release's wake, not from our wait's end. */
		int rc = lm_sem_acquire(c, "gate1", 1, 10000, 20000, &g);
		if (rc != 0) {
			fprintf(stderr, "handoff %d: %s\n", k, lm_strerror(rc));
			atomic_fetch_add(&ho->errors, 1);
		} else {
			assert_int_equal(lm_release(c, &g), 0);
		}
		char b = 1;
		assert_int_equal(write(back_pipe[1], &b, 1), 1);
	}
	lm_disconnect(c);
}

static void release_wakes_the_gate(void)
{
	/* Without the servers' wake of a stalled queue, only the release
	 * itself can wake the waiter. */
	setenv("LOCKMGR_TEST_OFF", "unstall", 1);
	harness_lockmgrd_start(&d, "semwake", "--max-ttl", "20000", NULL);
	unsetenv("LOCKMGR_TEST_OFF");
	struct lm_region r;
	harness_attach(d.region, &r);
	ho = harness_shared(sizeof(*ho));
	assert_int_equal(pipe(go_pipe), 0);
	assert_int_equal(pipe(back_pipe), 0);
	pid_t w = harness_fork(handoff_waiter, NULL);
	lm_client *c = connect_or_fail();
	for (int k = 0; k < HANDOFFS; k++) {
		lm_grant g;
		sem_or_fail(c, "gate1", 1, 10000, 0, &g);
		char b = 1;
		assert_int_equal(write(go_pipe[1], &b, 1), 1);
		HARNESS_WAIT_FOR(gate_waiters(&r, "gate1") == 1, 3000,
				 "handoff %d: the waiter never queued", k);
		assert_int_equal(lm_release(c, &g), 0);
		harness_read_byte(back_pipe[0], 5000,
				  "the waiter was not granted the released "
				  "slot: the release did not wake the gate's "
				  "queue (the servers' unstall is off)");
	}
	harness_expect_exit(w, 5000, 0, "waiter");
	assert_int_equal(atomic_load(&ho->errors), 0);
	lm_disconnect(c);
	harness_shared_free(ho, sizeof(*ho));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- FIFO ---------------------------------------------------------- */

enum { FIFO_WAITERS = 5 };

struct fifo {
	_Atomic int next;
	_Atomic int order[FIFO_WAITERS];
};
static struct fifo *ff;

static void fifo_waiter(void *arg)
{
	int id = (int)(intptr_t)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	sem_or_fail(c, "line", 2, 10000, 10000, &g);
	atomic_store(&ff->order[atomic_fetch_add(&ff->next, 1)], id);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
}

static void waiters_in_fifo_order(void)
{
	harness_lockmgrd_start(&d, "semfifo", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	ff = harness_shared(sizeof(*ff));
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	sem_or_fail(a, "line", 2, 10000, 0, &ga);
	sem_or_fail(b, "line", 2, 10000, 0, &gb);
	pid_t w[FIFO_WAITERS];
	for (int k = 0; k < FIFO_WAITERS; k++) {
		w[k] = harness_fork(fifo_waiter, (void *)(intptr_t)k);
		HARNESS_WAIT_FOR(gate_waiters(&r, "line") == (uint32_t)k + 1,
				 3000, "waiter %d never queued", k);
	}
	/* One slot at a time: each waiter takes it and gives it back, and
	 * the next in line gets it. */
	assert_int_equal(lm_release(a, &ga), 0);
	for (int k = 0; k < FIFO_WAITERS; k++)
		harness_expect_exit(w[k], 10000, 0, "fifo waiter");
	assert_int_equal(atomic_load(&ff->next), FIFO_WAITERS);
	for (int k = 0; k < FIFO_WAITERS; k++)
		if (atomic_load(&ff->order[k]) != k)
			fail_msg("grant %d went to waiter %d, which queued "
				 "%s: waiters must be served in the order "
				 "they queued", k, atomic_load(&ff->order[k]),
				 atomic_load(&ff->order[k]) > k ? "later"
								: "earlier");
	assert_int_equal(lm_release(b, &gb), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_shared_free(ff, sizeof(*ff));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- tokens per slot, and never more than N inside ------------------ */

enum { TK_PROCS = 4, TK_ROUNDS = 40, TK_SLOTS = 2 };

struct tokens {
	_Atomic int inside;
	_Atomic int max_inside;
	_Atomic int in_slot[TK_SLOTS];
	_Atomic int overlaps;
	_Atomic int errors;
	_Atomic int n[TK_SLOTS];
	_Atomic uint64_t log[TK_SLOTS][TK_PROCS * TK_ROUNDS];
};
static struct tokens *tk;

static void token_worker(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	for (int k = 0; k < TK_ROUNDS; k++) {
		lm_grant g;
		int rc = lm_sem_acquire(c, "tok", TK_SLOTS, 10000, 10000, &g);
		if (rc != 0) {
			fprintf(stderr, "token worker: %s\n", lm_strerror(rc));
			atomic_fetch_add(&tk->errors, 1);
			continue;
		}
		int s = lm_sem_slot(&g);
		if (s < 0 || s >= TK_SLOTS) {
			atomic_fetch_add(&tk->errors, 1);
			lm_release(c, &g);
			continue;
		}
		/* Holds of one slot never overlap, so this is grant order. */
		if (atomic_fetch_add(&tk->in_slot[s], 1) != 0)
			atomic_fetch_add(&tk->overlaps, 1);
		int i = atomic_fetch_add(&tk->n[s], 1);
		atomic_store(&tk->log[s][i], g.token);
		int in = atomic_fetch_add(&tk->inside, 1) + 1;
		int m = atomic_load(&tk->max_inside);
		while (in > m &&
		       !atomic_compare_exchange_weak(&tk->max_inside, &m, in))
			;
		for (volatile int spin = 0; spin < 20000; spin++)
			;
		atomic_fetch_sub(&tk->inside, 1);
		atomic_fetch_sub(&tk->in_slot[s], 1);
		if (lm_release(c, &g) != 0)
			atomic_fetch_add(&tk->errors, 1);
	}
	lm_disconnect(c);
}

static void tokens_increase_per_slot(void)
{
	harness_lockmgrd_start(&d, "semtok", "--max-ttl", "20000", NULL);
	tk = harness_shared(sizeof(*tk));
	pid_t p[TK_PROCS];
	for (int k = 0; k < TK_PROCS; k++)
		p[k] = harness_fork(token_worker, NULL);
	for (int k = 0; k < TK_PROCS; k++)
		harness_expect_exit(p[k], 30000, 0, "token worker");
	assert_int_equal(atomic_load(&tk->errors), 0);
	if (atomic_load(&tk->overlaps) != 0)
		fail_msg("%d grants of one slot overlapped another's",
			 atomic_load(&tk->overlaps));
	if (atomic_load(&tk->max_inside) > TK_SLOTS)
		fail_msg("%d holders at once of a semaphore of %d slots",
			 atomic_load(&tk->max_inside), TK_SLOTS);
	assert_int_equal(atomic_load(&tk->n[0]) + atomic_load(&tk->n[1]),
			 TK_PROCS * TK_ROUNDS);
	for (int s = 0; s < TK_SLOTS; s++)
		for (int i = 1; i < atomic_load(&tk->n[s]); i++)
			if (atomic_load(&tk->log[s][i]) <=
			    atomic_load(&tk->log[s][i - 1]))
				fail_msg("slot %d: grant %d has token %llu "
					 "after %llu: tokens of a slot must "
					 "strictly increase", s, i,
					 (unsigned long long)atomic_load(
						 &tk->log[s][i]),
					 (unsigned long long)atomic_load(
						 &tk->log[s][i - 1]));
	harness_shared_free(tk, sizeof(*tk));
	harness_lockmgrd_stop(&d);
}

/* ---- a SIGKILLed holder -------------------------------------------- */

enum { KILLS = 7 };

struct killed {
	_Atomic int64_t granted_ns;
	_Atomic uint32_t flags;
	_Atomic int slot;
	_Atomic int rc;
};
static struct killed *kd;
static int held_pipe[2];

static void killed_holder(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	/* A 20 s lease: a waiter let in only by its end would be far
	 * beyond the 8 s bound in sigkilled_holder_freed. */
	sem_or_fail(c, "k", 1, 20000, 0, &g);
	char b = 1;
	assert_int_equal(write(held_pipe[1], &b, 1), 1);
	for (;;)
		pause();
}

static void kill_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	/* A wait (20 s) that outlasts the queueing and the kill on a
	 * loaded host, and ends far beyond the 8 s bound. */
	int rc = lm_sem_acquire(c, "k", 1, 10000, 20000, &g);
	atomic_store(&kd->granted_ns, harness_now_ns());
	atomic_store(&kd->rc, rc);
	if (rc == 0) {
		atomic_store(&kd->flags, g.flags);
		atomic_store(&kd->slot, lm_sem_slot(&g));
		lm_release(c, &g);
	}
	lm_disconnect(c);
}

static void sigkilled_holder_freed(void)
{
	/* Without the servers' wake of a stalled queue, only the
	 * supervisor's free can wake the waiter before the lease ends. */
	setenv("LOCKMGR_TEST_OFF", "unstall", 1);
	harness_lockmgrd_start(&d, "semkill", "--max-ttl", "20000", NULL);
	unsetenv("LOCKMGR_TEST_OFF");
	struct lm_region r;
	harness_attach(d.region, &r);
	kd = harness_shared(sizeof(*kd));
	assert_int_equal(pipe(held_pipe), 0);
	for (int k = 0; k < KILLS; k++) {
		pid_t h = harness_fork(killed_holder, NULL);
		harness_read_byte(held_pipe[0], 5000, "the holder's grant");
		atomic_store(&kd->rc, 1);
		pid_t w = harness_fork(kill_waiter, NULL);
		HARNESS_WAIT_FOR(gate_waiters(&r, "k") == 1, 10000,
				 "round %d: the waiter never queued", k);
		int64_t t = harness_now_ns();
		assert_int_equal(kill(h, SIGKILL), 0);
		harness_expect_exit(w, 25000, 0, "waiter");
		harness_reap(h, 5000, "killed holder");
		int rc = atomic_load(&kd->rc);
		if (rc != 0)
			fail_msg("round %d: the waiter got %d (%s) after the "
				 "holder was killed", k, rc,
				 lm_strerror(rc));
		int64_t lat = atomic_load(&kd->granted_ns) - t;
		/* Its wait and the lease are 20 s: a grant that late came
		 * from the lease's end, not from the supervisor's wake. */
		if (lat > INT64_C(8000000000))
			fail_msg("round %d: granted %lld ms after the kill: "
				 "the supervisor's free of the dead holder's "
				 "slot did not wake the gate's queue", k,
				 (long long)(lat / 1000000));
		assert_int_equal(atomic_load(&kd->slot), 0);
		if (!(atomic_load(&kd->flags) & LM_GRANT_RECOVERED))
			fail_msg("round %d: the next holder of a dead "
				 "holder's slot was not told "
				 "(LM_GRANT_RECOVERED)", k);
	}
	close(held_pipe[0]);
	close(held_pipe[1]);
	harness_shared_free(kd, sizeof(*kd));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- a SIGSTOPped holder ------------------------------------------- */

static int cont_pipe[2];

static void frozen_holder(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	sem_or_fail(c, "frz", 2, 300, 0, &g);
	char b = (char)('0' + lm_sem_slot(&g));
	assert_int_equal(write(held_pipe[1], &b, 1), 1);
	/* Stopped here; resumed after another took the slot. */
	harness_read_byte(cont_pipe[0], 10000, "the go after SIGCONT");
	int rc = lm_renew(c, &g, 300);
	if (rc != LM_ELEASELOST)
		fail_msg("the frozen holder's renew after its lease ended "
			 "and its slot was taken: %d (%s), expected "
			 "LM_ELEASELOST", rc, lm_strerror(rc));
	rc = lm_release(c, &g);
	if (rc != LM_ELEASELOST)
		fail_msg("its release: %d (%s), expected LM_ELEASELOST", rc,
			 lm_strerror(rc));
	lm_disconnect(c);
}

static void sigstopped_holder_expires(void)
{
	harness_lockmgrd_start(&d, "semstop", "--max-ttl", "20000", NULL);
	assert_int_equal(pipe(held_pipe), 0);
	assert_int_equal(pipe(cont_pipe), 0);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	/* One slot held for the whole case by a running holder (20 s:
	 * beyond the waits below on a loaded host). */
	sem_or_fail(a, "frz", 2, 20000, 0, &ga);
	pid_t h = harness_fork(frozen_holder, NULL);
	char slot = 0;
	struct pollfd pf = {.fd = held_pipe[0], .events = POLLIN};
	if (poll(&pf, 1, 5000) != 1 || read(held_pipe[0], &slot, 1) != 1)
		fail_msg("no grant from the holder to be frozen");
	assert_int_equal(kill(h, SIGSTOP), 0);
	HARNESS_WAIT_FOR(harness_proc_state(h) == 'T', 3000,
			 "the holder did not stop");
	int64_t t = harness_now_ms();
	/* A 15 s wait, below the 20 s max TTL: a slot kept for a max TTL
	 * would time it out. */
	int rc = lm_sem_acquire(b, "frz", 2, 10000, 15000, &gb);
	int64_t waited = harness_now_ms() - t;
	if (rc != 0)
		fail_msg("the frozen holder's slot was not taken after its "
			 "300 ms lease: %s (after %lld ms)", lm_strerror(rc),
			 (long long)waited);
	assert_int_equal(lm_sem_slot(&gb), slot - '0');
	assert_true(gb.flags & LM_GRANT_RECOVERED);
	assert_true(waited < 8000);
	assert_int_equal(kill(h, SIGCONT), 0);
	char go = 1;
	assert_int_equal(write(cont_pipe[1], &go, 1), 1);
	harness_expect_exit(h, 5000, 0, "the frozen holder");
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

/* ---- kinds, arguments, pins, watches -------------------------------- */

static void kinds_and_arguments(void)
{
	harness_lockmgrd_start(&d, "semkind", "--max-ttl", "20000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	/* Every user gives the same count. */
	sem_or_fail(a, "k3", 3, 10000, 0, &ga);
	int rc = lm_sem_acquire(b, "k3", 2, 10000, 0, &gb);
	if (rc != LM_EKIND)
		fail_msg("a semaphore of 3 slots taken as one of 2: %d "
			 "(%s), expected LM_EKIND", rc, lm_strerror(rc));
	assert_int_equal(lm_sem_acquire(b, "k3", 4, 10000, 100, &gb),
			 LM_EKIND);
	/* A semaphore's name is not a lock, in any mode. */
	rc = lm_acquire(b, "k3", 10000, 0, &gb);
	if (rc != LM_EKIND)
		fail_msg("a semaphore's name taken as a lock: %d (%s), "
			 "expected LM_EKIND", rc, lm_strerror(rc));
	assert_int_equal(lm_acquire(b, "k3", 10000, 100, &gb), LM_EKIND);
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 10000, 0);
	assert_int_equal(lm_acquire_ex(b, "k3", &o, &gb), LM_EKIND);
	assert_int_equal(lm_sem_acquire(b, "k3", 3, 10000, 0, &gb), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	/* Nor a held lock's name a semaphore. */
	assert_int_equal(lm_acquire(b, "plain", 10000, 0, &gb), 0);
	assert_int_equal(lm_sem_slot(&gb), -1);
	rc = lm_sem_acquire(a, "plain", 2, 10000, 0, &ga);
	if (rc != LM_EKIND)
		fail_msg("a held lock's name taken as a semaphore: %d (%s), "
			 "expected LM_EKIND", rc, lm_strerror(rc));
	assert_int_equal(lm_sem_acquire(a, "plain2", 0, 10000, 0, &ga),
			 LM_EINVAL);
	assert_int_equal(lm_release(b, &gb), 0);
	/* Arguments. */
	assert_int_equal(lm_sem_acquire(a, "s", 0, 10000, 0, &gb), LM_EINVAL);
	assert_int_equal(lm_sem_acquire(a, "s", LM_SEM_SLOTS_MAX + 1, 10000,
					0, &gb),
			 LM_EINVAL);
	assert_int_equal(lm_sem_acquire(NULL, "s", 2, 10000, 0, &gb),
			 LM_EINVAL);
	assert_int_equal(lm_sem_acquire(a, "s", 2, 10000, 0, NULL),
			 LM_EINVAL);
	assert_int_equal(lm_sem_acquire(a, NULL, 2, 10000, 0, &gb),
			 LM_EBADNAME);
	assert_int_equal(lm_sem_acquire(a, "", 2, 10000, 0, &gb),
			 LM_EBADNAME);
	assert_int_equal(lm_sem_acquire(a, "s", 2, 1, 0, &gb), LM_EBADTTL);
	char longname[252];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[251] = '\0';
	assert_int_equal(lm_sem_acquire(a, longname, 2, 10000, 0, &gb),
			 LM_EBADNAME);
	longname[250] = '\0';
	assert_int_equal(lm_sem_acquire(a, longname, 2, 10000, 0, &gb), 0);
	assert_int_equal(lm_release(a, &gb), 0);
	assert_int_equal(lm_sem_acquire(a, "big", LM_SEM_SLOTS_MAX, 10000, 0,
					&gb),
			 0);
	assert_int_equal(lm_sem_slot(&gb), 0);
	assert_int_equal(lm_convert(a, &gb, LM_MODE_S, 10000, 0), LM_EINVAL);
	assert_int_equal(lm_release(a, &gb), 0);
	assert_int_equal(lm_sem_slot(NULL), -1);

	/* A semaphore grant keeps a pin while held, and gives it back. */
	for (int k = 0; k < 40; k++) {
		rc = lm_sem_acquire(b, "again", 1, 10000, 0, &gb);
		if (rc != 0)
			fail_msg("acquire %d of a semaphore released each "
				 "time: %s", k, lm_strerror(rc));
		assert_int_equal(lm_release(b, &gb), 0);
	}
	lm_grant many[16];
	for (int k = 0; k < 16; k++) {
		char name[16];
		snprintf(name, sizeof(name), "pin%d", k);
		sem_or_fail(b, name, 1, 10000, 0, &many[k]);
	}
	assert_int_equal(lm_sem_acquire(b, "pin16", 1, 10000, 0, &gb),
			 LM_EPINS);
	assert_int_equal(lm_release(b, &many[3]), 0);
	assert_int_equal(lm_sem_acquire(b, "pin16", 1, 10000, 0, &gb), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	for (int k = 0; k < 16; k++)
		if (k != 3)
			assert_int_equal(lm_release(b, &many[k]), 0);

	/* A watch on the semaphore's name sees its slots change. */
	lm_watch *w;
	lm_watch_event ev;
	assert_int_equal(lm_watch_open(b, "k3", &w, &ev), 0);
	assert_int_equal(lm_sem_acquire(b, "k3", 3, 10000, 0, &gb), 0);
	rc = lm_watch_next(w, 2000, &ev);
	if (rc != 0)
		fail_msg("no watch event on a semaphore's name after a "
			 "slot was granted: %s", lm_strerror(rc));
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	assert_int_equal(ev.token, gb.token);
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(lm_watch_next(w, 2000, &ev), 0);
	assert_int_equal(ev.what, LM_WATCH_RELEASED);
	lm_watch_close(w);

	lm_release(a, &ga);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

/* ---- lockctl run --slots ------------------------------------------- */

enum { RUNS = 8, RUN_SLOTS = 3 };

static void lockctl_run_slots(void)
{
	harness_lockmgrd_start(&d, "semrun", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	char dir[256], log[300], go[300], script[1200], ctl[512];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(go, sizeof(go), "%s/go", dir);
	harness_bin_path(ctl, sizeof(ctl), "lockctl");
	/* Each copy logs its entry and its exit (O_APPEND: one line each,
	 * whole) and, until the test says go, stays inside. */
	snprintf(script, sizeof(script),
		 "echo \"+ $LOCKMGR_SLOT $LOCKMGR_TOKEN\" >> %s; i=0; "
		 "while [ ! -e %s ] && [ $i -lt 2000 ]; do sleep 0.01; "
		 "i=$((i+1)); done; echo \"- $LOCKMGR_SLOT\" >> %s",
		 log, go, log);
	pid_t p[RUNS];
	for (int k = 0; k < RUNS; k++) {
		char *argv[] = {ctl, "-r", d.region, "run", "--slots", "3",
				"--ttl", "5000", "--wait", "20000", "pool",
				"--", "sh", "-c", script, NULL};
		p[k] = harness_spawn(argv, NULL, NULL);
	}
	/* Three inside, five queued at the gate. */
	char buf[8192];
	HARNESS_WAIT_FOR(gate_waiters(&r, "pool") == RUNS - RUN_SLOTS, 5000,
			 "the copies beyond the 3 slots never all queued");
	HARNESS_WAIT_FOR(harness_read_file(log, buf, sizeof(buf)) > 0 &&
				 lines_starting(buf, '+') >= RUN_SLOTS,
			 5000, "the first 3 copies never started");
	/* status names the slots "NAME [slot K/N]", and --json says so. */
	char st[8192], err0[1024];
	assert_int_equal(harness_ctl(dir, st, sizeof(st), err0, sizeof(err0),
				     "-r", d.region, "status", NULL),
			 0);
	for (int k = 0; k < RUN_SLOTS; k++) {
		char want[32];
		snprintf(want, sizeof(want), "pool [slot %d/3]", k);
		if (strstr(st, want) == NULL)
			fail_msg("lockctl status does not show '%s':\n%s",
				 want, st);
	}
	assert_int_equal(harness_ctl(dir, st, sizeof(st), err0, sizeof(err0),
				     "-r", d.region, "status", "--json",
				     NULL),
			 0);
	if (strstr(st, "\"name\":\"pool\",\"slot\":0,\"slots\":3") ==
	    NULL)
		fail_msg("lockctl status --json does not show slot 0 of "
			 "pool's 3:\n%s", st);
	int fd = open(go, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	for (int k = 0; k < RUNS; k++)
		harness_expect_exit(p[k], 20000, 0, "lockctl run --slots");
	assert_true(harness_read_file(log, buf, sizeof(buf)) > 0);
	int inside = 0, most = 0, enters = 0;
	bool busy[RUN_SLOTS] = {false, false, false};
	for (char *line = strtok(buf, "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		int slot = -1;
		if (sscanf(line + 2, "%d", &slot) != 1 || slot < 0 ||
		    slot >= RUN_SLOTS)
			fail_msg("a copy ran with LOCKMGR_SLOT '%s'", line + 2);
		if (line[0] == '+') {
			if (busy[slot])
				fail_msg("two copies in slot %d at once",
					 slot);
			busy[slot] = true;
			enters++;
			inside++;
			most = inside > most ? inside : most;
		} else {
			busy[slot] = false;
			inside--;
		}
	}
	assert_int_equal(enters, RUNS);
	if (most > RUN_SLOTS)
		fail_msg("%d copies ran at once under --slots %d", most,
			 RUN_SLOTS);
	if (most != RUN_SLOTS)
		fail_msg("at most %d copies ran at once: --slots %d should "
			 "let %d run", most, RUN_SLOTS, RUN_SLOTS);
	/* --slots with a mode is a usage error. */
	char out[256], err[1024];
	assert_int_equal(harness_ctl(dir, out, sizeof(out), err, sizeof(err),
				     "-r", d.region, "run", "--slots", "2",
				     "--shared", "x", "--", "true", NULL),
			 64);
	assert_int_equal(harness_ctl(dir, out, sizeof(out), err, sizeof(err),
				     "-r", d.region, "run", "--slots", "0",
				     "x", "--", "true", NULL),
			 64);
	/* Another count: LM_EKIND, a usage error. */
	assert_int_equal(harness_ctl(dir, out, sizeof(out), err, sizeof(err),
				     "-r", d.region, "run", "--slots", "2",
				     "pool", "--", "true", NULL),
			 64);
	harness_remove_flat_dir(dir);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(n_holders_and_a_waiter, 60)
HARNESS_CASE(release_wakes_the_gate, 60)
HARNESS_CASE(waiters_in_fifo_order, 60)
HARNESS_CASE(tokens_increase_per_slot, 90)
HARNESS_CASE(sigkilled_holder_freed, 90)
HARNESS_CASE(sigstopped_holder_expires, 60)
HARNESS_CASE(kinds_and_arguments, 60)
HARNESS_CASE(lockctl_run_slots, 90)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(n_holders_and_a_waiter),
		harness_case(release_wakes_the_gate),
		harness_case(waiters_in_fifo_order),
		harness_case(tokens_increase_per_slot),
		harness_case(sigkilled_holder_freed),
		harness_case(sigstopped_holder_expires),
		harness_case(kinds_and_arguments),
		harness_case(lockctl_run_slots),
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
	return _cmocka_run_group_tests("test_semaphore", chosen, n, NULL,
				       NULL);
}
