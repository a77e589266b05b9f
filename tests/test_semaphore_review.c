/*
 * test_semaphore_review.c - an adversarial review of counting semaphores
 * (the gate and its slots, sem_slots, the gate's pins, the wake of the
 * gate when a slot is freed; shm/semaphore.c, client/semaphore.c). Each
 * case drives one interleaving with a real lockmgrd and checks the
 * property it broke before its fix:
 *
 *  1. lost_gate_claim_leaves_no_semaphore: a semaphore user whose claim
 *     of the gate lost to a plain holder of the name left sem_slots set:
 *     once the plain holder released, the name was a semaphore to
 *     everyone (a plain acquire got LM_EKIND, and a semaphore of the
 *     loser's count was granted).
 *  2. stale_copy_release_keeps_the_pin: releasing a copy of a semaphore
 *     grant, after the grant itself was released and the session had
 *     taken the semaphore again, gave back the later grant's pin of the
 *     gate: the gate could be reclaimed under its holder, and the name
 *     taken as a semaphore of another count (two holders of one slot).
 *  3. stale_copy_release_keeps_the_record: the same stale release also
 *     cleared the later grant's held[] record, so when its holder was
 *     SIGKILLed the supervisor did not free its slot: the waiters waited
 *     for the whole lease instead of milliseconds.
 *  4. stale_slot_index_names_no_gate: a waiter keeps the lock index of
 *     each slot it resolved for its whole wait. A slot whose name was
 *     reclaimed meanwhile (free, under name pressure) and whose index
 *     went to another semaphore's slot got the waiter's gate stored in
 *     its note ("sem.gate_named" is right after that store): the other
 *     semaphore's release then woke the wrong gate, and its waiter slept
 *     until the released lease would have ended.
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
#include "shm/name_index.h"
#include "shm/name_reclaim.h"
#include "shm/pins.h"
#include "shm/region.h"
#include "shm/semaphore.h"
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

/* The lock index of name, or fail. */
static uint32_t lock_of(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		fail_msg("no lock named '%s' in the region", name);
	return (uint32_t)idx;
}

/* The slot count on the gate of `name`. */
static uint16_t sem_slots_of(struct lm_region *r, const char *name)
{
	return atomic_load(&lm_queue_of(r, lock_of(r, name))->sem_slots);
}

/* ---- 1. a gate claim that loses to a plain lock -------------------- */

static void lost_gate_claim_leaves_no_semaphore(void)
{
	harness_lockmgrd_start(&d, "srv-kind", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	assert_int_equal(lm_acquire(b, "plain", 10000, 0, &gb), 0);
	int rc = lm_sem_acquire(a, "plain", 2, 10000, 0, &ga);
	if (rc != LM_EKIND)
		fail_msg("a held lock's name taken as a semaphore: %d (%s), "
			 "expected LM_EKIND", rc, lm_strerror(rc));
	uint16_t n = sem_slots_of(&r, "plain");
	if (n != 0)
		fail_msg("a semaphore user that lost the name to a plain "
			 "holder left sem_slots = %u on it", n);
	assert_int_equal(lm_release(b, &gb), 0);
	/* The name is a plain lock's again, for anyone. */
	rc = lm_acquire(b, "plain", 10000, 0, &gb);
	if (rc != 0)
		fail_msg("a plain lock, free again, refused to a plain "
			 "acquire after a failed semaphore claim: %d (%s)",
			 rc, lm_strerror(rc));
	assert_int_equal(lm_release(b, &gb), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 2. a stale copy's release and the gate's pin ------------------ */

/*
 * A session takes "one" (1 slot), keeps a copy of its grant, releases
 * the grant and takes "one" again (same pin entry, same slot). Then it
 * releases the copy: a release of nothing (LM_ENOTHELD), which must
 * leave the later grant's pin alone. Without the pin, nothing keeps the
 * gate: a reclaim of it goes through, and the name's next user sets
 * another count, taking a second slot of a semaphore of one.
 */
static void stale_copy_release_keeps_the_pin(void)
{
	harness_lockmgrd_start(&d, "srv-pin", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant g1, copy, g2, gb;
	sem_or_fail(a, "one", 1, 10000, 0, &g1);
	memcpy(&copy, &g1, sizeof(copy));
	assert_int_equal(lm_release(a, &g1), 0);
	sem_or_fail(a, "one", 1, 10000, 0, &g2);
	assert_int_equal(lm_sem_slot(&g2), 0);
	uint32_t gate = lock_of(&r, "one");
	int stale_rc = lm_release(a, &copy);
	bool pinned = lm_pinned(&r, gate);
	enum lm_reclaim rec = lm_name_reclaim(&r, gate, true);
	int rc = lm_sem_acquire(b, "one", 2, 10000, 0, &gb);
	if (rc != LM_EKIND) {
		if (rc == 0)
			lm_release(b, &gb);
		fail_msg("a semaphore of 1 slot, held (slot 0), taken as one "
			 "of 2 after a stale copy's release: %d (%s), slot "
			 "%d, expected LM_EKIND (pin kept: %s, reclaim of the "
			 "gate: %s)", rc, lm_strerror(rc),
			 rc == 0 ? lm_sem_slot(&gb) : -1,
			 pinned ? "yes" : "no",
			 rec == LM_RECLAIMED ? "reclaimed" : "refused");
	}
	if (!pinned)
		fail_msg("the stale copy's release gave back the pin of the "
			 "gate that the session's later grant holds");
	if (rec != LM_IN_USE)
		fail_msg("the gate of a held semaphore was %s by a reclaim",
			 rec == LM_RECLAIMED ? "reclaimed" : "not live");
	if (stale_rc != LM_ENOTHELD)
		fail_msg("release of a stale copy of a released semaphore "
			 "grant: %d (%s), expected LM_ENOTHELD", stale_rc,
			 lm_strerror(stale_rc));
	/* The grant itself is still the session's to renew and release. */
	assert_int_equal(lm_renew(a, &g2, 10000), 0);
	assert_int_equal(lm_release(a, &g2), 0);
	assert_int_equal(lm_release(a, &g2), LM_ENOTHELD);
	assert_int_equal(lm_release(a, &copy), LM_ENOTHELD);
	/* And the pin went with it. */
	if (lm_pinned(&r, gate))
		fail_msg("the gate is still pinned after its one grant was "
			 "released");
	lm_disconnect(a);
	lm_disconnect(b);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 3. a stale copy's release and the dead holder's slot ---------- */

static int held_pipe[2];

static void stale_releaser(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g1, copy, g2;
	sem_or_fail(c, "rec", 1, 10000, 0, &g1);
	memcpy(&copy, &g1, sizeof(copy));
	assert_int_equal(lm_release(c, &g1), 0);
	sem_or_fail(c, "rec", 1, 10000, 0, &g2);
	/* Whatever it says, it must not forget g2. */
	(void)lm_release(c, &copy);
	char b = 1;
	assert_int_equal(write(held_pipe[1], &b, 1), 1);
	for (;;)
		pause();
}

static void stale_copy_release_keeps_the_record(void)
{
	/* Without the servers' wake of a stalled queue, only the
	 * supervisor's free can end the wait before the lease does. */
	setenv("LOCKMGR_TEST_OFF", "unstall", 1);
	harness_lockmgrd_start(&d, "srv-rec", "--max-ttl", "20000", NULL);
	unsetenv("LOCKMGR_TEST_OFF");
	assert_int_equal(pipe(held_pipe), 0);
	pid_t h = harness_fork(stale_releaser, NULL);
	harness_read_byte(held_pipe[0], 5000, "the holder's second grant");
	assert_int_equal(kill(h, SIGKILL), 0);
	harness_reap(h, 5000, "the killed holder");
	lm_client *c = connect_or_fail();
	lm_grant g;
	int64_t t = harness_now_ms();
	/* 3 s against a 10 s lease: only the supervisor's free of the
	 * dead holder's slot gets it there. */
	int rc = lm_sem_acquire(c, "rec", 1, 10000, 3000, &g);
	if (rc != 0)
		fail_msg("the slot of a SIGKILLed holder (which had released "
			 "a stale copy of an earlier grant) was not freed "
			 "within 3 s: %d (%s) after %lld ms", rc,
			 lm_strerror(rc),
			 (long long)(harness_now_ms() - t));
	assert_true(g.flags & LM_GRANT_RECOVERED);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	close(held_pipe[0]);
	close(held_pipe[1]);
	harness_lockmgrd_stop(&d);
}

/* ---- 4. a stale slot index and its note --------------------------- */

struct named {
	_Atomic int rc;         /* b's waiter's */
	_Atomic int slot;       /* a's waiter's, -1 if it failed */
	_Atomic int64_t granted_ns;
};
static struct named *nm;

static void stale_index_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = lm_sem_acquire(c, "a", 2, 10000, 10000, &g);
	atomic_store(&nm->slot, rc == 0 ? lm_sem_slot(&g) : -1);
	if (rc == 0)
		assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
}

static void b_waiter(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = lm_sem_acquire(c, "b", 1, 10000, 8000, &g);
	atomic_store(&nm->granted_ns, harness_now_ns());
	atomic_store(&nm->rc, rc);
	if (rc == 0)
		assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
}

/* The lock index of slot k of semaphore name, or fail. */
static uint32_t slot_lock_of(struct lm_region *r, const char *name,
			     uint32_t k)
{
	char s[LM_NAME_MAX + 1];
	size_t len = lm_sem_slot_name(name, strlen(name), k, s);
	int64_t idx = lm_name_lookup(r, s, len, 0);
	if (idx < 0)
		fail_msg("no slot %u of semaphore '%s' in the region", k,
			 name);
	return (uint32_t)idx;
}

/*
 * H0 and H1 hold both slots of "a". W waits for "a": its first try
 * resolved both slots, and it stops at the third "sem.gate_named" (its
 * turn's try, slot 0). H1 releases; slot 1's name, unused, is reclaimed
 * and its index goes to slot 0 of "b", which B takes. W resumes: slot 0
 * is busy, and slot 1's index is now b's slot. Then a waiter of "b"
 * queues, and B releases: with the servers' stall remedy off, only the
 * release's wake of b's gate gets the waiter in before B's 10 s lease.
 */
static void stale_slot_index_names_no_gate(void)
{
	setenv("LOCKMGR_TEST_OFF", "unstall", 1);
	harness_lockmgrd_start(&d, "srv-note", "--max-ttl", "20000", NULL);
	unsetenv("LOCKMGR_TEST_OFF");
	struct lm_region r;
	harness_attach(d.region, &r);
	nm = harness_shared(sizeof(*nm));
	lm_client *h0 = connect_or_fail(), *h1 = connect_or_fail();
	lm_client *b = connect_or_fail();
	lm_grant g0, g1, gb;
	lm_lockref bref;
	/* b's gate first, so that its slot is the next name created. */
	assert_int_equal(lm_lookup(b, "b", &bref), 0);
	sem_or_fail(h0, "a", 2, 10000, 0, &g0);
	sem_or_fail(h1, "a", 2, 10000, 0, &g1);
	assert_int_equal(lm_sem_slot(&g1), 1);
	uint32_t gate_a = lock_of(&r, "a"), gate_b = lock_of(&r, "b");
	uint32_t a1 = slot_lock_of(&r, "a", 1);

	char log[256];
	harness_pause_arm("sem.gate_named@3", log, sizeof(log));
	pid_t w = harness_fork(stale_index_waiter, NULL);
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "sem.gate_named", 5000), w);

	assert_int_equal(lm_release(h1, &g1), 0);
	enum lm_reclaim rec = lm_name_reclaim(&r, a1, true);
	if (rec != LM_RECLAIMED)
		fail_msg("slot 1 of a, free and unused, was not reclaimed "
			 "(%d)", (int)rec);
	sem_or_fail(b, "b", 1, 10000, 0, &gb);
	if (slot_lock_of(&r, "b", 0) != a1)
		fail_msg("b's slot 0 did not take slot 1 of a's old index "
			 "%u (got %u): the case needs it there", a1,
			 slot_lock_of(&r, "b", 0));
	/* b's waiter names b's gate in the slot's note as it tries. */
	atomic_store(&nm->rc, 1);
	pid_t wb = harness_fork(b_waiter, NULL);
	HARNESS_WAIT_FOR(lm_queue_count(lm_queue_of(&r, gate_b)) == 1, 3000,
			 "the waiter of b never queued");
	harness_resume(w);
	harness_expect_exit(w, 5000, 0, "the waiter of a");
	if (atomic_load(&nm->slot) != 1)
		fail_msg("the waiter of a got slot %d; expected slot 1",
			 atomic_load(&nm->slot));
	uint64_t note = atomic_load(&lm_slot_of(&r, 2, a1)->note.gate);

	int64_t t = harness_now_ns();
	assert_int_equal(lm_release(b, &gb), 0);
	harness_expect_exit(wb, 10000, 0, "the waiter of b");
	int rc = atomic_load(&nm->rc);
	int64_t lat = (atomic_load(&nm->granted_ns) - t) / 1000000;
	if (rc != 0 || lat > 3000)
		fail_msg("b's waiter: %d (%s) %lld ms after b's release (its "
			 "slot's note: %#llx, b's gate is lock %u, a's %u): "
			 "the release did not wake b's gate",
			 rc, lm_strerror(rc), (long long)lat,
			 (unsigned long long)note, gate_b, gate_a);
	assert_int_equal(lm_release(h0, &g0), 0);
	lm_disconnect(h0);
	lm_disconnect(h1);
	lm_disconnect(b);
	harness_shared_free(nm, sizeof(*nm));
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(lost_gate_claim_leaves_no_semaphore, 60)
HARNESS_CASE(stale_copy_release_keeps_the_pin, 60)
HARNESS_CASE(stale_copy_release_keeps_the_record, 60)
HARNESS_CASE(stale_slot_index_names_no_gate, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(lost_gate_claim_leaves_no_semaphore),
		harness_case(stale_copy_release_keeps_the_pin),
		harness_case(stale_copy_release_keeps_the_record),
		harness_case(stale_slot_index_names_no_gate),
	};
	/* One case, for the mutation checks and debugging (not cmocka's
	 * own filter: it would also filter out the nested runs that
	 * harness_fork's children and each case's process are). */
	const char *only = getenv("LOCKMGR_TEST_CASE");
	struct CMUnitTest chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++)
		if (only == NULL || strcmp(only, tests[k].name) == 0)
			chosen[n++] = tests[k];
	return _cmocka_run_group_tests("test_semaphore_review", chosen, n,
				       NULL, NULL);
}
