/*
 * test_fastpath_review.c - an outside review of the issue13-fastpath
 * merge (clock.h's rate-one shortcut, grant.c's single verify clock
 * read, client.c's per-client cache of the lockrefs lm_acquire resolved
 * by name). Each case drives one interleaving the review found, with a
 * real lockmgrd, and checks what it breaks. Each FAILS on the merge as
 * reviewed (main a778afe); the comment above it gives the interleaving.
 *
 *  1. cached_try_lock_of_reclaimed_name_says_busy: a try-lock (wait 0)
 *     by name, through a cached lockref whose name was reclaimed and
 *     whose slot another name moved into, returns LM_EBUSY for a name
 *     nobody holds, for as long as the other name has a waiter queued
 *     past the barging window: acquire_once's try path answers "busy"
 *     from the queue of the slot without checking that the slot still
 *     holds the name (the grab, which would find it STALE, is skipped).
 *     Before the cache, lm_acquire by name resolved the name afresh on
 *     every call, so this needed a caller-kept lm_lockref.
 *  2. kept_lockref_try_lock_of_reclaimed_name_says_busy: the same through
 *     lm_acquire_ref and a caller-kept lm_lockref (the path the cache
 *     copied; it had the gap before the merge, and the fix in
 *     acquire_once covers both).
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/internal.h"
#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/name_reclaim.h"
#include "shm/region.h"
#include "shm/wait_queue.h"

static struct harness_lockmgrd d;

/* A session of its own that waits for "fp/other" (held by the test), and
 * releases it once granted. */
static void other_waiter_main(void *arg)
{
	(void)arg;
	lm_client *w;
	assert_int_equal(lm_connect(d.region, &w), 0);
	lm_grant g;
	int rc = lm_acquire(w, "fp/other", 2000, 30000, &g);
	if (rc != 0)
		fail_msg("the waiter's acquire of fp/other: %s",
			 lm_strerror(rc));
	assert_int_equal(lm_release(w, &g), 0);
	lm_disconnect(w);
}

static void try_lock_of_reclaimed_name(bool kept_ref)
{
	harness_lockmgrd_start(&d, "fprv1", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *a, *b;
	assert_int_equal(lm_connect(d.region, &a), 0);
	assert_int_equal(lm_connect(d.region, &b), 0);

	/* a acquires fp/cached by name (the lockref goes into a's cache)
	 * and releases it: the name is unused now. */
	lm_grant g1, g2, gb;
	lm_lockref ref;
	assert_int_equal(lm_lookup(a, "fp/cached", &ref), 0);
	assert_int_equal(kept_ref ? lm_acquire_ref(a, &ref, 2000, 0, &g1)
				  : lm_acquire(a, "fp/cached", 2000, 0, &g1),
			 0);
	assert_int_equal(lm_release(a, &g1), 0);
	int64_t idx = lm_name_lookup(&r, "fp/cached", 9, 0);
	assert_true(idx >= 0);

	/* It is reclaimed (as a sweep under pressure would), and another
	 * name moves into its slot; b holds that one, and a waiter queues
	 * for it. */
	assert_int_equal(lm_name_reclaim(&r, (uint32_t)idx, true),
			 LM_RECLAIMED);
	assert_int_equal(lm_name_lookup(&r, "fp/other", 8, 1), idx);
	/* b's lease (20 s) outlasts the fork and queueing below on a
	 * loaded host: the waiter must still be queued at a's try-lock. */
	assert_int_equal(lm_acquire(b, "fp/other", 20000, 0, &gb), 0);
	pid_t pw = harness_fork(other_waiter_main, NULL);
	HARNESS_WAIT_FOR(
		lm_queue_count(lm_queue_of(&r, (uint32_t)idx)) != 0 &&
			lm_queue_has_waiter(&r, (uint32_t)idx),
		10000, "the waiter never queued for fp/other");
	/* Past the barging window (200 us): the try path no longer grabs. */
	harness_nap_us(20000);

	/* Nobody holds fp/cached (it does not even exist now): a try-lock
	 * of it must be granted, under a token above its earlier life's. */
	int rc = kept_ref ? lm_acquire_ref(a, &ref, 2000, 0, &g2)
			  : lm_acquire(a, "fp/cached", 2000, 0, &g2);
	if (rc != 0)
		fail_msg("a's try-lock of fp/cached, which nobody holds: %s "
			 "(answered from the queue of the slot its lockref "
			 "named, now fp/other's)",
			 lm_strerror(rc));
	assert_true(g2.token > g1.token);
	int64_t now = lm_name_lookup(&r, "fp/cached", 9, 0);
	assert_true(now >= 0 && now != idx);
	assert_int_equal(lm_release(a, &g2), 0);

	assert_int_equal(lm_release(b, &gb), 0);
	harness_expect_exit(pw, 10000, 0, "the waiter");
	lm_disconnect(b);
	lm_disconnect(a);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

static void cached_try_lock_of_reclaimed_name_says_busy(void)
{
	try_lock_of_reclaimed_name(false);
}

static void kept_lockref_try_lock_of_reclaimed_name_says_busy(void)
{
	try_lock_of_reclaimed_name(true);
}

HARNESS_CASE(cached_try_lock_of_reclaimed_name_says_busy, 60)
HARNESS_CASE(kept_lockref_try_lock_of_reclaimed_name_says_busy, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(cached_try_lock_of_reclaimed_name_says_busy),
		harness_case(
			kept_lockref_try_lock_of_reclaimed_name_says_busy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
