/*
 * test_modes_review2.c - a second outside review of lock modes, of the
 * fixes that followed the first (tests/test_modes_review.c; commits
 * 097d9df and 15e28a7). Each case drives one interleaving with a real
 * lockmgrd and checks the property it breaks.
 *
 *  1. frozen_claim_outlives_its_ttl: (liveness) an X taker stopped
 *     between its owner CAS and its look at the group ("grant.owner_
 *     taken", table 0) while a reader's group runs. The sweep no longer
 *     caps such a claim while the group's lease runs (group_lease_runs),
 *     and the reader's renew extends that lease without looking at the
 *     owner word: the claim is never capped, and every new reader (whose
 *     join on table 0 sees an owner word without its lease: TAKE_BUSY,
 *     which ends the attempt) is refused for as long as the reader
 *     renews. protocol.md promises "one frozen acquirer costs the lock
 *     one TTL"; here it costs it for ever.
 *  2. frozen_upgrade_outlives_its_ttl: the same with a member of the
 *     group that upgrades (lm_convert to X) and is stopped at
 *     "convert.owner_taken" on table 0: a SIGSTOPped upgrading reader
 *     shuts the lock to new readers while another reader renews.
 */
#include "harness.h"

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
#include "shm/region.h"

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

static int take(lm_client *c, const char *name, uint32_t mode,
		int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	lm_acquire_opts o = LM_ACQUIRE_OPTS(mode, ttl_ms, wait_ms);
	return lm_acquire_ex(c, name, &o, g);
}

/* A client process that takes (or converts) one grant and reports. */
struct actor {
	char region[LM_REGION_NAME_MAX + 2];
	char name[64];
	uint32_t mode;          /* mode taken */
	uint32_t convert_to;    /* mode converted to afterwards, or 99 */
	int64_t ttl_ms;
	_Atomic int holding;    /* took the first grant */
	_Atomic int done;       /* finished (rc valid) */
	_Atomic int rc;
	_Atomic int go_away;    /* the test is done with us */
};

static void actor_main(void *arg)
{
	struct actor *a = arg;
	lm_client *c;
	assert_int_equal(lm_connect(a->region, &c), 0);
	lm_grant g;
	int rc = take(c, a->name, a->mode, a->ttl_ms, 0, &g);
	bool held = rc == 0;
	if (rc == 0 && a->convert_to != 99) {
		atomic_store(&a->holding, 1);
		rc = lm_convert(c, &g, a->convert_to, a->ttl_ms, 0);
	}
	atomic_store(&a->rc, rc);
	atomic_store(&a->done, 1);
	HARNESS_WAIT_FOR(atomic_load(&a->go_away), 30000, "the test to end");
	if (held)
		lm_release(c, &g);
	lm_disconnect(c);
}

static pid_t start_actor(struct actor *a, const char *name, uint32_t mode,
			 uint32_t convert_to, int64_t ttl_ms, const char *pause,
			 char *log, size_t logn)
{
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->mode = mode;
	a->convert_to = convert_to;
	a->ttl_ms = ttl_ms;
	if (pause != NULL)
		harness_pause_arm(pause, log, logn);
	pid_t p = harness_fork(actor_main, a);
	if (pause != NULL)
		harness_pause_disarm();
	return p;
}

/*
 * With the frozen process stopped (at a pause point), reader `rd`
 * renews its S grant gr every 200 ms for `for_ms`, while a fresh client
 * tries S (wait 0) every 200 ms. Returns how many ms passed before the
 * fresh reader got S, or -1 if it never did. (The renews are for 5 s, so
 * that a loaded host's pause between two cannot lose the grant; the
 * frozen claim's end does not wait for the group's lease.)
 */
static int64_t new_reader_gets_in(lm_client *rd, lm_grant *gr,
				  const char *name, int64_t for_ms)
{
	lm_client *n = connect_or_fail();
	int64_t t0 = harness_now_ms(), got = -1;
	int last = 0;
	while (harness_now_ms() - t0 < for_ms) {
		int rc = lm_renew(rd, gr, 5000);
		if (rc != 0)
			fail_msg("the reader's renew failed: %s",
				 lm_strerror(rc));
		lm_grant gn;
		last = take(n, name, LM_MODE_S, 1000, 0, &gn);
		if (last == 0) {
			got = harness_now_ms() - t0;
			lm_release(n, &gn);
			break;
		}
		harness_nap_us(200 * 1000);
	}
	if (got < 0)
		fprintf(stderr, "  the new reader's last try: %s\n",
			lm_strerror(last));
	lm_disconnect(n);
	return got;
}

/* ---- 1. a frozen X claim under a renewed group --------------------- */

/*
 * R holds S on /f (ttl 5 s, renewed every 200 ms). W takes X with a TTL
 * of 1 s: claim_owner CASes W's owner word into table 0 (the owner word
 * is free beside a group) and W stops at "grant.owner_taken", before
 * group_blocks_owner. Server 0's sweep finds an owner word without its
 * lease, but the lease word is R's group's, running: group_lease_runs,
 * no cap. R's renews (lm_group_extend) keep that lease running and never
 * look at the owner word. A new reader N: join on table 0, owner_clear
 * -> lm_slot_takeable: W's word, lease tag not W's -> TAKE_BUSY -> the
 * attempt ends BUSY (and a wait for it only spins). For as long as R
 * renews and W stays stopped, nobody new gets the lock, although N's S
 * is compatible with R's S; before 097d9df the cap bounded this by W's
 * TTL (protocol.md: "one frozen acquirer costs the lock one TTL").
 */
static void frozen_claim_outlives_its_ttl(void)
{
	harness_lockmgrd_start(&d, "rv2claim", "--max-ttl", "20000", NULL);
	lm_client *rd = connect_or_fail();
	lm_grant gr;
	/* R's lease (5 s) outlasts W's fork and pause before R's first
	 * renew on a loaded host. */
	assert_int_equal(take(rd, "/f", LM_MODE_S, 5000, 0, &gr), 0);

	struct actor *w = harness_shared(sizeof(*w));
	char log[256];
	pid_t pw = start_actor(w, "/f", LM_MODE_X, 99, 1000,
			       "grant.owner_taken@1", log, sizeof(log));
	pid_t stopped = harness_wait_paused(log, "grant.owner_taken", 5000);
	assert_int_equal(stopped, pw);

	/* W's TTL is 1 s: 6 s is five TTLs more than the doc promises. */
	int64_t got = new_reader_gets_in(rd, &gr, "/f", 6000);

	harness_resume(pw);
	HARNESS_WAIT_FOR(atomic_load(&w->done), 5000, "the writer to finish");
	atomic_store(&w->go_away, 1);
	harness_expect_exit(pw, 10000, 0, "writer");
	lm_release(rd, &gr);
	lm_disconnect(rd);
	harness_lockmgrd_stop(&d);
	if (got < 0)
		fail_msg("a new reader was refused S for 6 s (W's TTL: 1 s) "
			 "while W stood stopped after its owner CAS on table "
			 "0 and R renewed its S: the sweep never caps W's "
			 "claim while R's group lease runs");
	fprintf(stderr, "  the new reader got in after %lld ms\n",
		(long long)got);
}

/* ---- 2. a frozen upgrade under a renewed group --------------------- */

/*
 * R and U hold S on /u (ttl 5 s and 1 s). U upgrades to X (lm_convert, wait 0):
 * convert_table CASes U's owner word into table 0 and U stops at
 * "convert.owner_taken" (SIGSTOP), before only_member. Then as in case
 * 1: R renews, the sweep never caps U's owner word, and new readers are
 * refused for as long as R renews. (U's own S count also stays, as a
 * stopped member's does while another renews: that is the known limit;
 * this is the owner word, which shuts out new readers too.)
 */
static void frozen_upgrade_outlives_its_ttl(void)
{
	harness_lockmgrd_start(&d, "rv2upg", "--max-ttl", "20000", NULL);
	lm_client *rd = connect_or_fail();
	lm_grant gr;
	/* R's lease (5 s) outlasts U's fork and pause before R's first
	 * renew on a loaded host. */
	assert_int_equal(take(rd, "/u", LM_MODE_S, 5000, 0, &gr), 0);

	struct actor *u = harness_shared(sizeof(*u));
	char log[256];
	pid_t pu = start_actor(u, "/u", LM_MODE_S, LM_MODE_X, 1000,
			       "convert.owner_taken@1", log, sizeof(log));
	pid_t stopped = harness_wait_paused(log, "convert.owner_taken", 5000);
	assert_int_equal(stopped, pu);

	int64_t got = new_reader_gets_in(rd, &gr, "/u", 6000);

	harness_resume(pu);
	HARNESS_WAIT_FOR(atomic_load(&u->done), 5000, "the upgrade to finish");
	atomic_store(&u->go_away, 1);
	harness_expect_exit(pu, 10000, 0, "upgrader");
	lm_release(rd, &gr);
	lm_disconnect(rd);
	harness_lockmgrd_stop(&d);
	if (got < 0)
		fail_msg("a new reader was refused S for 6 s (U's TTL: 1 s) "
			 "while U stood stopped in its upgrade after its "
			 "owner CAS on table 0 and R renewed its S");
	fprintf(stderr, "  the new reader got in after %lld ms\n",
		(long long)got);
}

HARNESS_CASE(frozen_claim_outlives_its_ttl, 30)
HARNESS_CASE(frozen_upgrade_outlives_its_ttl, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(frozen_claim_outlives_its_ttl),
		harness_case(frozen_upgrade_outlives_its_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
