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
 *  3. stalled_expiry_announcer_counts_once: the first server to announce
 *     a lapsed lease, preempted between its version bump and its note
 *     ("watch.expiry_bumped"), left the others a thousand looks (a few
 *     microseconds) to find its note; then they announced the same end
 *     again, and a watcher counted one lease end as two changes (seen
 *     on a loaded CI host). The bump now tags the change word with the
 *     end, and the others stay quiet however long the first stands.
 *  4. stopped_expiry_announcer_never_hides_the_end: the other side of 3:
 *     the first announcer stays stopped before its wake, and the others
 *     stay quiet; they must still wake the watchers, who see the end
 *     (as "changed": the note is not written yet), counted once.
 *  5. late_note_never_hides_a_newer_one: the first announcer of 3, left
 *     stopped while a new holder takes the lock, wrote its note when it
 *     went on, over the new grant's: a watcher reading the lock's last
 *     change found an older version's note and could say only
 *     "changed". A note is now written only while its version is the
 *     lock's current one.
 *  6. group_end_after_a_members_late_release: a review of 5 found the
 *     tag made of the token alone: a reader whose lease ran out before
 *     its release announced that end with its token, the group's, and
 *     when the group's lease ended the servers found that tag and stayed
 *     quiet; the lock was free and its watchers never heard. The tag
 *     now mixes the end's mode, pid and token, and lasts only until the
 *     lock's next change.
 *  7. servers_name_the_end_they_freed: a server read the grant's token
 *     after the CAS that freed its table; stopped in between while the
 *     next holder wrote its own there, it announced the old end with the
 *     new holder's token (and, with the token alone for a tag, hid the
 *     new holder's end). It reads it before the CAS now.
 *  8. stalled_claimant_after_an_end: a reader that joins a new group
 *     after a group's end, or a holder that takes the lock again after
 *     its own grant's end, stopped before it writes its token back
 *     ("grant.group_joined", "grant.owner_taken"): a watcher sees it
 *     hold the lock; when its lease ran out, the servers announced its
 *     end with the table's old token, (mode, pid, token) equal to the
 *     last end's, and stayed quiet: the lock was free and nobody said
 *     so. Ends are now told apart by the grant's owner word (session
 *     and sequence) or the group's generation and lease, not its token.
 *  9. one_end_once_after_a_server_restart: a review of 8 found the
 *     grant's identity keeping most of the owner word's epoch, which a
 *     restarted server's table has anew: every lease end after one
 *     server restart counted twice. A reader's group end counts once
 *     too (each server ends it on its own table).
 * 10. next_generations_lease_is_not_the_groups: a review of 9 found a
 *     server hashing the lease word's expiry into a group's end even
 *     when that word was already the next generation's (its starter
 *     writes it before the group word, "grant.group_lease"), and one
 *     acquire writes the same word on every table. Another table whose
 *     generations ran behind, holding a stale token, then ended a
 *     different group under the same identity, and that end, the
 *     lock's next change, was hidden. A first fix (the word with its
 *     top bit set) still let two such tables collide; the table's
 *     number stands in now. The table states are written into the
 *     region directly: they are what a starter stopped at that hook and
 *     drifted tables leave, and lining up the drift by hand would only
 *     take longer to reach the same words.
 */
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/clock.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"
#include "shm/watch.h"

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

/* ---- 3 and 4. an expiry's announcer that stands still ------------- */

/* Every table's owner word of name is without a session. */
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

static uint32_t version_of(struct lm_region *r, const char *name)
{
	int64_t idx = lm_name_lookup(r, name, strlen(name), 0);
	if (idx < 0)
		fail_msg("%s is not in the name index (%lld)", name,
			 (long long)idx);
	return lm_lock_version(r, (uint32_t)idx);
}

/* A process other than first logged at point in log and stopped there
 * now, or 0. */
static pid_t paused_besides(const char *log, const char *point, pid_t first)
{
	char buf[4096];
	if (harness_read_file(log, buf, sizeof(buf)) < 0)
		return 0;
	size_t len = strlen(point);
	for (char *line = buf; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, point, len) == 0 && line[len] == ' ') {
			pid_t pid = (pid_t)atoi(line + len + 1);
			if (pid != first && harness_proc_state(pid) == 'T')
				return pid;
		}
		line = next;
	}
	return 0;
}

struct stalled_expiry {
	struct lm_region r;
	lm_client *wc, *h;
	lm_watch *w;
	int fd; /* lm_watch_fd(w) */
	lm_grant g;
	uint64_t granted_version;
	pid_t first; /* the server stopped between its bump and its note */
	char log[256];
};

/* A lockmgrd whose servers stop at their first "watch.expiry_bumped", a
 * watched lock whose 1 s lease (never renewed) runs out, and the
 * first server to count its end stopped there; every table freed, and
 * the other servers done with what they freed (each has looped since). */
static void stall_first_announcer(struct stalled_expiry *x, const char *tag)
{
	harness_pause_arm("watch.expiry_bumped", x->log, sizeof(x->log));
	harness_lockmgrd_start(&d, tag, "--max-ttl", "10000", NULL);
	harness_pause_disarm();
	harness_attach(d.region, &x->r);
	x->wc = connect_or_fail(d.region);
	x->h = connect_or_fail(d.region);
	x->w = watch_or_fail(x->wc, "/stall", NULL);
	assert_int_equal(lm_acquire(x->h, "/stall", 1000, 0, &x->g), 0);
	lm_watch_event ev;
	next_or_fail(x->w, &ev, "the grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	x->granted_version = ev.version;
	/* The watch's thread, asleep on the version from now on: only a
	 * wake gets it to look again. */
	x->fd = lm_watch_fd(x->w);
	assert_true(x->fd >= 0);
	x->first = harness_wait_paused(x->log, "watch.expiry_bumped", 5000);
	HARNESS_WAIT_FOR(tables_free(&x->r, "/stall"), 5000,
			 "the other servers did not free their tables of "
			 "the lapsed grant within 5 s");
	/* Each of the others has freed its table and gone on (or counted
	 * the end again, and stopped at the same point). */
	int64_t freed_ms = harness_now_ms();
	pid_t again = 0;
	HARNESS_WAIT_FOR((again = paused_besides(x->log, "watch.expiry_bumped",
						 x->first)) != 0 ||
				 harness_servers_looped(&x->r, x->first,
							freed_ms),
			 5000, "the other servers did not loop within 5 s");
	uint32_t v = version_of(&x->r, "/stall");
	if (again != 0 || v != x->granted_version + 1)
		fail_msg("while the first announcer of the lease's end stood "
			 "still between its bump and its note, %s counted the "
			 "same end again: version %u, granted at %llu",
			 again != 0 ? "another server" : "something", v,
			 (unsigned long long)x->granted_version);
}

static void stalled_expiry_done(struct stalled_expiry *x)
{
	lm_release(x->h, &x->g); /* its lease is over: LM_ELEASELOST */
	lm_watch_close(x->w);
	lm_disconnect(x->h);
	lm_disconnect(x->wc);
	lm_region_detach(&x->r);
	harness_lockmgrd_stop(&d);
}

static void expect_no_more(lm_watch *w, const char *ctx)
{
	lm_watch_event ev;
	int rc = lm_watch_next(w, 0, &ev);
	if (rc != LM_ETIMEDOUT)
		fail_msg("%s: %s (event %u covering %u change(s)), expected "
			 "no further change", ctx, lm_strerror(rc), ev.what,
			 ev.changes);
}

static void stalled_expiry_announcer_counts_once(void)
{
	struct stalled_expiry x;
	stall_first_announcer(&x, "wrv2-stall");
	harness_resume(x.first);
	harness_servers_loop_once(&x.r, 0, 5000);
	lm_watch_event ev;
	next_or_fail(x.w, &ev, "the lease's end");
	if (ev.what != LM_WATCH_EXPIRED || ev.token != x.g.token ||
	    ev.changes != 1 || ev.holders != 0)
		fail_msg("the lease's end: event %u token %llu holders %u "
			 "covering %u change(s); expected expired, token %llu, "
			 "no holder, 1 change", ev.what,
			 (unsigned long long)ev.token, ev.holders, ev.changes,
			 (unsigned long long)x.g.token);
	expect_no_more(x.w, "after the lease's end");
	stalled_expiry_done(&x);
}

static void stopped_expiry_announcer_never_hides_the_end(void)
{
	struct stalled_expiry x;
	stall_first_announcer(&x, "wrv2-stop");
	/* The first stays stopped, its wake not done; the others' frees
	 * are over, and they stayed quiet: the watcher must have been woken
	 * all the same. */
	struct pollfd p = {.fd = x.fd, .events = POLLIN};
	if (poll(&p, 1, 3000) != 1)
		fail_msg("the lease's end was counted by a server stopped "
			 "before its wake, and no other woke the watch's "
			 "thread within 3 s");
	lm_watch_event ev;
	int rc = lm_watch_next(x.w, 0, &ev);
	if (rc != 0)
		fail_msg("the watch's fd was readable, and lm_watch_next "
			 "said %s", lm_strerror(rc));
	if (ev.changes != 1 || ev.holders != 0)
		fail_msg("the lease's end, seen without its note: covering %u "
			 "change(s), %u holder(s); expected 1, none",
			 ev.changes, ev.holders);
	/* The late note changes nothing a watcher counts, and says what
	 * the change was. */
	harness_resume(x.first);
	harness_servers_loop_once(&x.r, 0, 5000);
	expect_no_more(x.w, "after the stopped announcer went on");
	uint32_t what, mode;
	int32_t pid;
	uint64_t token;
	int64_t idx = lm_name_lookup(&x.r, "/stall", strlen("/stall"), 0);
	assert_true(idx >= 0);
	lm_lock_note_read(&x.r, (uint32_t)idx, version_of(&x.r, "/stall"),
			  &what, &mode, &pid, &token);
	if (what != LM_CHANGE_EXPIRED || token != x.g.token)
		fail_msg("the note of the lease's end, written late: what %u "
			 "token %llu; expected expired, token %llu", what,
			 (unsigned long long)token,
			 (unsigned long long)x.g.token);
	stalled_expiry_done(&x);
}

static void late_note_never_hides_a_newer_one(void)
{
	struct stalled_expiry x;
	stall_first_announcer(&x, "wrv2-late");
	lm_watch_event ev;
	next_or_fail(x.w, &ev, "the lease's end");
	/* A new holder, while the first announcer still stands still. */
	lm_grant g2;
	assert_int_equal(lm_acquire(x.h, "/stall", 10000, 5000, &g2), 0);
	next_or_fail(x.w, &ev, "the new grant");
	if (ev.what != LM_WATCH_GRANTED || ev.token != g2.token ||
	    ev.changes != 1)
		fail_msg("the new grant: event %u token %llu covering %u "
			 "change(s); expected granted, token %llu, 1 change",
			 ev.what, (unsigned long long)ev.token, ev.changes,
			 (unsigned long long)g2.token);
	harness_resume(x.first);
	harness_servers_loop_once(&x.r, 0, 5000);
	expect_no_more(x.w, "after the stopped announcer went on");
	uint32_t what, mode;
	int32_t pid;
	uint64_t token;
	int64_t idx = lm_name_lookup(&x.r, "/stall", strlen("/stall"), 0);
	assert_true(idx >= 0);
	lm_lock_note_read(&x.r, (uint32_t)idx, version_of(&x.r, "/stall"),
			  &what, &mode, &pid, &token);
	if (what != LM_CHANGE_GRANTED || token != g2.token)
		fail_msg("the lock's last change is the grant of token %llu, "
			 "but its note reads what %u token %llu (the late "
			 "announcer's note written over it?)",
			 (unsigned long long)g2.token, what,
			 (unsigned long long)token);
	assert_int_equal(lm_release(x.h, &g2), 0);
	stalled_expiry_done(&x);
}

/* ---- 6. a group's end after a member's late release ------------- */

/* Events on w until one shows the lock free, within timeout_ms. */
static void until_free(lm_watch *w, int64_t timeout_ms, const char *what)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	lm_watch_event ev = {.holders = 1};
	while (ev.holders != 0) {
		int64_t left = deadline - harness_now_ms();
		int rc = left > 0 ? lm_watch_next(w, left, &ev)
				  : LM_ETIMEDOUT;
		if (rc != 0)
			fail_msg("%s: no change showed the lock free within "
				 "%lld ms (%s)", what, (long long)timeout_ms,
				 lm_strerror(rc));
	}
}

static void group_end_after_a_members_late_release(void)
{
	harness_lockmgrd_start(&d, "wrv2-grp", "--max-ttl", "10000", NULL);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *c1 = connect_or_fail(d.region);
	lm_client *c2 = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/grp", NULL);
	/* Two readers in one group: the later one's token is the group's,
	 * and its lease is the shorter. */
	lm_grant g1, g2;
	lm_acquire_opts o1 = LM_ACQUIRE_OPTS(LM_MODE_S, 3000, 0);
	lm_acquire_opts o2 = LM_ACQUIRE_OPTS(LM_MODE_S, 300, 0);
	assert_int_equal(lm_acquire_ex(c1, "/grp", &o1, &g1), 0);
	assert_int_equal(lm_acquire_ex(c2, "/grp", &o2, &g2), 0);
	int64_t granted_ms = harness_now_ms();
	/* The second reader's lease is what this case is about: wait it
	 * out (plus the drift margin), bounded by the clock itself; the
	 * first's runs on. */
	HARNESS_WAIT_FOR(harness_now_ms() >= granted_ms + 450, 2000,
			 "450 ms to pass");
	int rc = lm_release(c2, &g2);
	if (rc != LM_ELEASELOST)
		fail_msg("the second reader's release after its lease: %s, "
			 "expected LM_ELEASELOST", lm_strerror(rc));
	/* The first never renews: its group's lease ends, and the servers
	 * end the group; a watcher must hear of it. */
	until_free(w, 8000, "the group's lease ended");
	lm_release(c1, &g1);
	lm_watch_close(w);
	lm_disconnect(c1);
	lm_disconnect(c2);
	lm_disconnect(wc);
	harness_lockmgrd_stop(&d);
}

/* ---- 7. servers name the end they freed ------------------------- */

/* Every process that logged point in log and is stopped there now:
 * their number, the pids in out (at most n). */
static int paused_at(const char *log, const char *point, pid_t *out, int n)
{
	char buf[4096];
	if (harness_read_file(log, buf, sizeof(buf)) < 0)
		return 0;
	size_t len = strlen(point);
	int k = 0;
	for (char *line = buf; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, point, len) == 0 && line[len] == ' ') {
			pid_t pid = (pid_t)atoi(line + len + 1);
			if (k < n && harness_proc_state(pid) == 'T')
				out[k++] = pid;
		}
		line = next;
	}
	return k;
}

static void servers_name_the_end_they_freed(void)
{
	char log[256];
	harness_pause_arm("server.freed_lapsed", log, sizeof(log));
	harness_lockmgrd_start(&d, "wrv2-name", "--max-ttl", "10000", NULL);
	harness_pause_disarm();
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *a = connect_or_fail(d.region);
	lm_client *b = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/name", NULL);
	lm_grant ga, gb;
	assert_int_equal(lm_acquire(a, "/name", 300, 0, &ga), 0);
	lm_watch_event ev;
	next_or_fail(w, &ev, "A's grant");
	/* A never renews: each server frees its table of A's grant and
	 * stops right after (its first free of anything). */
	pid_t p[3];
	HARNESS_WAIT_FOR(paused_at(log, "server.freed_lapsed", p, 3) == 3,
			 5000, "the three servers did not each free their "
			 "table of A's lapsed grant within 5 s");
	/* Two of them announce A's end; the third stands still: one that
	 * freed its table as abandoned (a first one to free it may have
	 * found A's lease running elsewhere and freed it clean, which
	 * announces nothing). */
	int64_t idx = lm_name_lookup(&r, "/name", strlen("/name"), 0);
	assert_true(idx >= 0);
	for (int k = 0; k < 3; k++) {
		unsigned i = 0;
		while (i < LM_NSERVERS &&
		       atomic_load(&r.servers[i]->pid) != p[k])
			i++;
		assert_true(i < LM_NSERVERS);
		if (atomic_load(&lm_slot_of(&r, i, (uint32_t)idx)->owner) ==
		    LM_OWNER_ABANDONED) {
			pid_t last = p[k];
			p[k] = p[2];
			p[2] = last;
			break;
		}
	}
	harness_resume(p[0]);
	harness_resume(p[1]);
	harness_servers_loop_once(&r, p[2], 5000);
	next_or_fail(w, &ev, "A's end");
	if (ev.what != LM_WATCH_EXPIRED || ev.token != ga.token ||
	    ev.changes != 1)
		fail_msg("A's end: event %u token %llu covering %u change(s); "
			 "expected expired, token %llu, 1 change", ev.what,
			 (unsigned long long)ev.token, ev.changes,
			 (unsigned long long)ga.token);
	/* B takes the lock (its token on the tables it takes). */
	assert_int_equal(lm_acquire(b, "/name", 10000, 5000, &gb), 0);
	next_or_fail(w, &ev, "B's grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	/* The third goes on: the lock changed since A's end, so it counts
	 * that end again (a change too many); it must name it A's. */
	harness_resume(p[2]);
	harness_servers_loop_once(&r, 0, 5000);
	next_or_fail(w, &ev, "the third server's late announcement");
	if (ev.what != LM_WATCH_EXPIRED || ev.token != ga.token)
		fail_msg("the third server announced A's end as event %u "
			 "token %llu; expected expired, token %llu (B holds "
			 "token %llu)", ev.what, (unsigned long long)ev.token,
			 (unsigned long long)ga.token,
			 (unsigned long long)gb.token);
	assert_int_equal(ev.holders, 1);
	expect_no_more(w, "after the third server's announcement");
	assert_int_equal(lm_release(b, &gb), 0);
	lm_release(a, &ga);
	lm_watch_close(w);
	lm_disconnect(a);
	lm_disconnect(b);
	lm_disconnect(wc);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 8. a claimant stopped after an end --------------------------- */

struct claimant {
	char region[LM_REGION_NAME_MAX + 2];
	uint32_t mode;
	_Atomic int held; /* X: its first grant is in */
	_Atomic int go;   /* X: take it again now */
};

static void claimant_main(void *arg)
{
	struct claimant *k = arg;
	lm_client *c = connect_or_fail(k->region);
	lm_grant g;
	lm_acquire_opts o = LM_ACQUIRE_OPTS(k->mode, 300, 0);
	if (k->mode == LM_MODE_X) {
		/* A first grant, left to lapse. */
		assert_int_equal(lm_acquire_ex(c, "/re", &o, &g), 0);
		atomic_store(&k->held, 1);
		HARNESS_WAIT_FOR(atomic_load(&k->go), 20000,
				 "the test to say take it again");
	}
	lm_acquire_ex(c, "/re", &o, &g); /* stopped in here, and killed */
	fail_msg("the claimant was not stopped in its acquire");
}

static void stalled_claimant_after_an_end(uint32_t mode)
{
	harness_lockmgrd_start(&d, "wrv2-claim", "--max-ttl", "10000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *a = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/re", NULL);
	struct claimant *k = harness_shared(sizeof(*k));
	snprintf(k->region, sizeof(k->region), "%s", d.region);
	k->mode = mode;
	char log[256];
	pid_t p;
	if (mode == LM_MODE_S) {
		/* A reader's group runs out: its end is counted. */
		lm_grant ga;
		lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 300, 0);
		assert_int_equal(lm_acquire_ex(a, "/re", &o, &ga), 0);
		until_free(w, 8000, "the first group's lease ended");
		harness_servers_loop_once(&r, 0, 5000);
		/* A new reader joins a new group on all three tables and
		 * stops before it writes its token back. */
		harness_pause_arm("grant.group_joined@3", log, sizeof(log));
		p = harness_fork(claimant_main, k);
		harness_pause_disarm();
		assert_int_equal(harness_wait_paused(log, "grant.group_joined",
						     5000), p);
	} else {
		/* The claimant's own first grant runs out: counted; then it
		 * takes the lock again and stops after its third owner
		 * word, before it writes its token back. */
		harness_pause_arm("grant.owner_taken@6", log, sizeof(log));
		p = harness_fork(claimant_main, k);
		harness_pause_disarm();
		HARNESS_WAIT_FOR(atomic_load(&k->held), 5000,
				 "the claimant's first grant");
		until_free(w, 8000, "the claimant's first grant ended");
		harness_servers_loop_once(&r, 0, 5000);
		atomic_store(&k->go, 1);
		assert_int_equal(harness_wait_paused(log, "grant.owner_taken",
						     5000), p);
	}
	/* A watcher that looks now sees the stopped claimant hold it. */
	lm_watch_event now;
	lm_watch *w2 = watch_or_fail(wc, "/re", &now);
	if (now.holders == 0)
		fail_msg("the stopped claimant does not show as a holder; the "
			 "case needs it to");
	/* Its lease (300 ms) is what this case is about: wait it out, plus
	 * the drift margin, bounded by the clock itself; then every server
	 * has swept. */
	int64_t t = harness_now_ms();
	HARNESS_WAIT_FOR(harness_now_ms() >= t + 1500, 3000, "1.5 s to pass");
	harness_servers_loop_once(&r, 0, 5000);
	harness_servers_loop_once(&r, 0, 5000);
	lm_watch_event ev;
	int rc = lm_watch_next(w2, 3000, &ev);
	kill(p, SIGKILL);
	harness_reap(p, 5000, "the stopped claimant");
	if (rc != 0)
		fail_msg("the stopped claimant's lease ended and nobody counted "
			 "it: the watcher that saw it hold the lock heard "
			 "nothing in 3 s (%s)", lm_strerror(rc));
	if (ev.holders != 0)
		fail_msg("after the stopped claimant's lease ended: %u "
			 "holder(s)", ev.holders);
	lm_watch_close(w2);
	lm_watch_close(w);
	lm_disconnect(a);
	lm_disconnect(wc);
	lm_region_detach(&r);
	harness_shared_free(k, sizeof(*k));
	harness_lockmgrd_stop(&d);
}

static void stalled_reader_after_a_group_end(void)
{
	stalled_claimant_after_an_end(LM_MODE_S);
}

static void stalled_retaker_after_its_own_end(void)
{
	stalled_claimant_after_an_end(LM_MODE_X);
}

/* ---- 9. one end, once, after a server restart ---------------------- */

static void one_end_once_after_a_server_restart(void)
{
	harness_lockmgrd_start(&d, "wrv2-epoch", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	/* Server 1's table gets a new epoch. */
	uint64_t before = LM_SRV_EPOCH(atomic_load(&r.servers[1]->state));
	harness_kill_server(d.region, &r, 1, false);
	assert_int_equal(harness_lockctl(d.region, "server", "start", "1",
					 NULL), 0);
	harness_wait_servers_up(d.region, d.pid, 15000);
	assert_true(LM_SRV_EPOCH(atomic_load(&r.servers[1]->state)) !=
		    before);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *h = connect_or_fail(d.region);
	lm_watch *w = watch_or_fail(wc, "/epoch", NULL);
	lm_grant g;
	assert_int_equal(lm_acquire(h, "/epoch", 1000, 0, &g), 0);
	lm_watch_event ev;
	next_or_fail(w, &ev, "the grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	/* Never renewed: every server frees its table of it, and each is
	 * done with what it freed. */
	HARNESS_WAIT_FOR(tables_free(&r, "/epoch"), 5000,
			 "the servers did not free the lapsed grant's tables "
			 "within 5 s");
	harness_servers_loop_once(&r, 0, 5000);
	next_or_fail(w, &ev, "the lease's end");
	if (ev.what != LM_WATCH_EXPIRED || ev.token != g.token ||
	    ev.changes != 1)
		fail_msg("the lease's end, with server 1 restarted: event %u "
			 "token %llu covering %u change(s); expected expired, "
			 "token %llu, 1 change", ev.what,
			 (unsigned long long)ev.token, ev.changes,
			 (unsigned long long)g.token);
	expect_no_more(w, "after the lease's end, with server 1 restarted");
	lm_release(h, &g);
	/* A reader's group: each server ends it on its table; one end. */
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 1000, 0);
	assert_int_equal(lm_acquire_ex(h, "/epoch", &o, &g), 0);
	next_or_fail(w, &ev, "the reader's grant");
	assert_int_equal(ev.what, LM_WATCH_GRANTED);
	int64_t idx = lm_name_lookup(&r, "/epoch", strlen("/epoch"), 0);
	assert_true(idx >= 0);
	HARNESS_WAIT_FOR(
		LM_GROUP_EMPTY(atomic_load(
			&lm_slot_of(&r, 0, (uint32_t)idx)->shared)) &&
			LM_GROUP_EMPTY(atomic_load(
				&lm_slot_of(&r, 1, (uint32_t)idx)->shared)) &&
			LM_GROUP_EMPTY(atomic_load(
				&lm_slot_of(&r, 2, (uint32_t)idx)->shared)),
		5000, "the servers did not end the reader's group within 5 s");
	harness_servers_loop_once(&r, 0, 5000);
	next_or_fail(w, &ev, "the group's end");
	if (ev.what != LM_WATCH_EXPIRED || ev.changes != 1)
		fail_msg("the group's end: event %u covering %u change(s); "
			 "expected expired, 1 change", ev.what, ev.changes);
	expect_no_more(w, "after the group's end");
	lm_release(h, &g);
	lm_watch_close(w);
	lm_disconnect(h);
	lm_disconnect(wc);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

/* ---- 10. the next generation's lease is not the group's ------------ */

/* Put a one-reader group of generation gen on table i of lock idx, as a
 * group's members would leave it: the lease word first (lease), then
 * the token, then the group word that names them. */
static void plant_group(struct lm_region *r, unsigned i, uint32_t idx,
			uint32_t gen, uint64_t lease, uint64_t token)
{
	struct lm_slot *slot = lm_slot_of(r, i, idx);
	atomic_store(&slot->lease, lease);
	atomic_store(&slot->token, token);
	atomic_store(&slot->shared, LM_GROUP_WORD(gen, LM_GROUP_S, 1, 0));
}

/* Wait for server i to end the group planted on its table, and for every
 * server to be done with what it announced; then the next event must be
 * that end. */
static void next_is_the_end_of(lm_watch *w, struct lm_region *r,
			       unsigned i, uint32_t idx, const char *what)
{
	HARNESS_WAIT_FOR(LM_GROUP_EMPTY(atomic_load(
				 &lm_slot_of(r, i, idx)->shared)),
			 5000, "server %u did not end the planted group within "
			       "5 s", i);
	harness_servers_loop_once(r, 0, 5000);
	lm_watch_event ev;
	int rc = lm_watch_next(w, 0, &ev);
	if (rc != 0)
		fail_msg("%s was not announced (%s): it was taken for the "
			 "end before it, which had the same identity",
			 what, lm_strerror(rc));
	if (ev.what != LM_WATCH_EXPIRED || ev.changes != 1)
		fail_msg("%s: event %u covering %u change(s); expected "
			 "expired, 1 change", what, ev.what, ev.changes);
}

static void next_generations_lease_is_not_the_groups(void)
{
	harness_lockmgrd_start(&d, "wrv2-gen", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *wc = connect_or_fail(d.region);
	lm_client *h = connect_or_fail(d.region);
	/* The name, with a reader's grant come and gone. */
	lm_grant g;
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 2000, 0);
	assert_int_equal(lm_acquire_ex(h, "/gen", &o, &g), 0);
	assert_int_equal(lm_release(h, &g), 0);
	lm_watch *w = watch_or_fail(wc, "/gen", NULL);
	int64_t found = lm_name_lookup(&r, "/gen", strlen("/gen"), 0);
	assert_true(found >= 0);
	uint32_t idx = (uint32_t)found;
	/* One generation number on every table: tables 1 and 2 run behind
	 * table 0, as drifted tables do, and all show the same stale token. */
	uint32_t gen = (LM_GROUP_GEN(atomic_load(
				&lm_slot_of(&r, 0, idx)->shared)) + 5u) &
		       0xffffffu;
	uint32_t next = (gen + 1u) & 0xffffffu;
	uint64_t token = g.token;
	/* One starter's lease for the next generation, 300 ms more: the
	 * same word on every table it reaches (one acquire, one expiry). */
	int64_t expiry =
		lm_server_clock_ms(r.servers[0], lm_now_ns()) + 300;
	uint64_t starters = LM_LEASE_WORD_TAGGED(LM_GROUP_TAG(next), expiry);
	/* Table 0: gen's group, its lease word already the starter's (it
	 * stopped at "grant.group_lease"): server 0 ends gen's group. */
	plant_group(&r, 0, idx, gen, starters, token);
	next_is_the_end_of(w, &r, 0, idx, "table 0's group end");
	/* Table 1: another group of its own generation gen, which the same
	 * starter reached next and stopped at again. */
	plant_group(&r, 1, idx, gen, starters, token);
	next_is_the_end_of(w, &r, 1, idx, "table 1's group end");
	/* Table 2: a group of generation gen whose own lease ended at that
	 * same millisecond. */
	HARNESS_WAIT_FOR(lm_server_clock_ms(r.servers[2], lm_now_ns()) >
				 expiry,
			 2000, "server 2's clock to pass the planted expiry");
	plant_group(&r, 2, idx, gen,
		    LM_LEASE_WORD_TAGGED(LM_GROUP_TAG(gen), expiry), token);
	next_is_the_end_of(w, &r, 2, idx, "table 2's group end");
	expect_no_more(w, "after the three group ends");
	lm_watch_close(w);
	lm_disconnect(h);
	lm_disconnect(wc);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(overflow_releaser_killed_is_announced, 30)
HARNESS_CASE(overflow_recorded_releaser_killed_is_announced, 30)
HARNESS_CASE(failed_grab_seen_as_holder_is_announced, 30)
HARNESS_CASE(stalled_expiry_announcer_counts_once, 30)
HARNESS_CASE(stopped_expiry_announcer_never_hides_the_end, 30)
HARNESS_CASE(late_note_never_hides_a_newer_one, 30)
HARNESS_CASE(group_end_after_a_members_late_release, 30)
HARNESS_CASE(servers_name_the_end_they_freed, 30)
HARNESS_CASE(stalled_reader_after_a_group_end, 40)
HARNESS_CASE(stalled_retaker_after_its_own_end, 40)
HARNESS_CASE(one_end_once_after_a_server_restart, 40)
HARNESS_CASE(next_generations_lease_is_not_the_groups, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(overflow_releaser_killed_is_announced),
		harness_case(overflow_recorded_releaser_killed_is_announced),
		harness_case(failed_grab_seen_as_holder_is_announced),
		harness_case(stalled_expiry_announcer_counts_once),
		harness_case(stopped_expiry_announcer_never_hides_the_end),
		harness_case(late_note_never_hides_a_newer_one),
		harness_case(group_end_after_a_members_late_release),
		harness_case(servers_name_the_end_they_freed),
		harness_case(stalled_reader_after_a_group_end),
		harness_case(stalled_retaker_after_its_own_end),
		harness_case(one_end_once_after_a_server_restart),
		harness_case(next_generations_lease_is_not_the_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
