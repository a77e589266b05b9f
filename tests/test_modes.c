/*
 * test_modes.c - lock modes (S, IS, IX, SIX, X) through the quorum, with a
 * real lockmgrd and real client processes: the compatibility matrix,
 * readers against writers under SIGKILL and SIGSTOP, tokens, and the
 * order of the wait queue.
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
#include "shm/modes.h"
#include "shm/name_index.h"
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

static const char *mode_name(uint32_t m)
{
	return lm_mode_name(m);
}

static int take(lm_client *c, const char *name, uint32_t mode,
		int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	lm_acquire_opts o = LM_ACQUIRE_OPTS(mode, ttl_ms, wait_ms);
	return lm_acquire_ex(c, name, &o, g);
}

/* ---- the matrix, exhaustively, between two sessions --------------- */

static void matrix_exhaustive(void)
{
	harness_lockmgrd_start(&d, "matrix", "--max-ttl", "10000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	/* Gray's table, written out here rather than taken from the code
	 * under test. Rows: held; columns: requested. Order IS IX S SIX X. */
	static const uint32_t order[5] = { LM_MODE_IS, LM_MODE_IX, LM_MODE_S,
					   LM_MODE_SIX, LM_MODE_X };
	static const int want[5][5] = {
		{ 1, 1, 1, 1, 0 },
		{ 1, 1, 0, 0, 0 },
		{ 1, 0, 1, 0, 0 },
		{ 1, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0 },
	};
	for (int x = 0; x < 5; x++) {
		for (int y = 0; y < 5; y++) {
			char name[64];
			snprintf(name, sizeof(name), "/matrix/%d/%d", x, y);
			lm_grant ga, gb;
			int rc = take(a, name, order[x], 5000, 0, &ga);
			if (rc != 0)
				fail_msg("%s on a free lock: %s",
					 mode_name(order[x]), lm_strerror(rc));
			assert_int_equal(ga.mode, order[x]);
			rc = take(b, name, order[y], 5000, 0, &gb);
			if (want[x][y] && rc != 0)
				fail_msg("%s held, %s refused (%s): they are "
					 "compatible", mode_name(order[x]),
					 mode_name(order[y]), lm_strerror(rc));
			if (!want[x][y] && rc != LM_EBUSY)
				fail_msg("%s held, %s returned %d (%s): "
					 "they conflict, expected LM_EBUSY",
					 mode_name(order[x]),
					 mode_name(order[y]), rc,
					 lm_strerror(rc));
			if (rc == 0) {
				/* Two grants never share a token. */
				assert_true(gb.token != ga.token);
				assert_int_equal(gb.mode, order[y]);
				assert_int_equal(lm_release(b, &gb), 0);
			}
			assert_int_equal(lm_release(a, &ga), 0);
			/* Once a's grant is gone, b's request is granted. */
			rc = take(b, name, order[y], 5000, 0, &gb);
			if (rc != 0)
				fail_msg("%s after %s was released: %s",
					 mode_name(order[y]),
					 mode_name(order[x]), lm_strerror(rc));
			assert_true(gb.token > ga.token);
			assert_int_equal(lm_release(b, &gb), 0);
		}
	}
	/* A bad mode is refused, not taken as something else. */
	lm_grant g;
	assert_int_equal(take(a, "/matrix/bad", LM_MODE_COUNT, 5000, 0, &g),
			 LM_EINVAL);
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 5000, 0);
	o.flags = 0x80;
	assert_int_equal(lm_acquire_ex(a, "/matrix/bad", &o, &g), LM_EINVAL);
	assert_int_equal(lm_acquire_ex(a, "/matrix/bad", NULL, &g), LM_EINVAL);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

/* ---- readers and a writer ----------------------------------------- */

enum { NREADERS = 6, NROUNDS = 300 };

struct rw_shared {
	_Atomic int readers_in;   /* readers inside now */
	_Atomic int writers_in;   /* writers inside now */
	_Atomic int max_readers;  /* most readers seen inside at once */
	_Atomic int overlaps;     /* a writer with anyone else inside */
	_Atomic int rounds;       /* critical sections done */
	_Atomic int errors;
	_Atomic int together;     /* readers holding S in the opening phase */
	_Atomic int opened;       /* readers done with the opening phase */
	_Atomic uint64_t tokens[NREADERS * NROUNDS + NROUNDS + 64];
	_Atomic int ntokens;
};

static struct rw_shared *rw;

static void note_token(uint64_t t)
{
	int k = atomic_fetch_add(&rw->ntokens, 1);
	if (k < (int)(sizeof(rw->tokens) / sizeof(rw->tokens[0])))
		atomic_store(&rw->tokens[k], t);
}

/*
 * Before the churn, every reader holds S at once: the proof that S is
 * shared does not hang on how the scheduler happens to interleave the
 * churn (on two loaded cores it may run readers one at a time).
 */
static void readers_hold_together(lm_client *c)
{
	lm_grant g;
	/* The region's longest lease, and a wait that ends before it: a
	 * reader that came late must not find the first ones' leases
	 * gone. */
	int rc = take(c, "/rw", LM_MODE_S, 10000, -1, &g);
	if (rc != 0)
		fail_msg("reader, opening phase: %s", lm_strerror(rc));
	atomic_fetch_add(&rw->together, 1);
	HARNESS_WAIT_FOR(atomic_load(&rw->together) >= NREADERS, 8000,
			 "only %d of %d readers held S at once within 8 s: S "
			 "behaves as exclusive", atomic_load(&rw->together),
			 NREADERS);
	if (lm_release(c, &g) != 0)
		atomic_fetch_add(&rw->errors, 1);
	atomic_fetch_add(&rw->opened, 1);
}

static void reader(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	readers_hold_together(c);
	for (int k = 0; k < NROUNDS; k++) {
		lm_grant g;
		int rc = take(c, "/rw", LM_MODE_S, 5000, -1, &g);
		if (rc != 0) {
			fprintf(stderr, "reader: %s\n", lm_strerror(rc));
			atomic_fetch_add(&rw->errors, 1);
			continue;
		}
		note_token(g.token);
		int n = atomic_fetch_add(&rw->readers_in, 1) + 1;
		int m = atomic_load(&rw->max_readers);
		while (n > m &&
		       !atomic_compare_exchange_weak(&rw->max_readers, &m, n))
			;
		if (atomic_load(&rw->writers_in) != 0)
			atomic_fetch_add(&rw->overlaps, 1);
		for (volatile int spin = 0; spin < 20000; spin++)
			;
		if (atomic_load(&rw->writers_in) != 0)
			atomic_fetch_add(&rw->overlaps, 1);
		atomic_fetch_sub(&rw->readers_in, 1);
		atomic_fetch_add(&rw->rounds, 1);
		if (lm_release(c, &g) != 0)
			atomic_fetch_add(&rw->errors, 1);
	}
	lm_disconnect(c);
}

static void writer(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	for (int k = 0; k < NROUNDS / 3; k++) {
		lm_grant g;
		int rc = take(c, "/rw", LM_MODE_X, 5000, -1, &g);
		if (rc != 0) {
			fprintf(stderr, "writer: %s\n", lm_strerror(rc));
			atomic_fetch_add(&rw->errors, 1);
			continue;
		}
		note_token(g.token);
		atomic_fetch_add(&rw->writers_in, 1);
		if (atomic_load(&rw->readers_in) != 0 ||
		    atomic_load(&rw->writers_in) != 1)
			atomic_fetch_add(&rw->overlaps, 1);
		for (volatile int spin = 0; spin < 20000; spin++)
			;
		if (atomic_load(&rw->readers_in) != 0 ||
		    atomic_load(&rw->writers_in) != 1)
			atomic_fetch_add(&rw->overlaps, 1);
		atomic_fetch_sub(&rw->writers_in, 1);
		atomic_fetch_add(&rw->rounds, 1);
		if (lm_release(c, &g) != 0)
			atomic_fetch_add(&rw->errors, 1);
	}
	lm_disconnect(c);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void check_tokens_unique(void)
{
	int n = atomic_load(&rw->ntokens);
	uint64_t *t = calloc((size_t)n, sizeof(*t));
	assert_non_null(t);
	for (int k = 0; k < n; k++)
		t[k] = atomic_load(&rw->tokens[k]);
	qsort(t, (size_t)n, sizeof(*t), cmp_u64);
	for (int k = 1; k < n; k++)
		if (t[k] == t[k - 1])
			fail_msg("two grants of /rw got token %llu",
				 (unsigned long long)t[k]);
	free(t);
}

static void readers_and_writers(void)
{
	harness_lockmgrd_start(&d, "rw", "--max-ttl", "10000", NULL);
	rw = harness_shared(sizeof(*rw));
	pid_t pids[NREADERS + 2];
	for (int i = 0; i < NREADERS; i++)
		pids[i] = harness_fork(reader, NULL);
	/* Writers come after the opening phase: one queued for X would
	 * hold back the readers still to join it. */
	int64_t deadline = harness_now_ms() + 20000;
	while (atomic_load(&rw->opened) < NREADERS) {
		if (harness_now_ms() > deadline)
			fail_msg("readers' opening phase did not end in 20 s "
				 "(%d of %d done)", atomic_load(&rw->opened),
				 NREADERS);
		harness_nap_us(1000);
	}
	pids[NREADERS] = harness_fork(writer, NULL);
	pids[NREADERS + 1] = harness_fork(writer, NULL);
	for (int i = 0; i < NREADERS + 2; i++)
		harness_expect_exit(pids[i], 100000, 0, "client");
	fprintf(stderr, "  %d sections, at most %d readers at once\n",
		atomic_load(&rw->rounds), atomic_load(&rw->max_readers));
	if (atomic_load(&rw->overlaps) != 0)
		fail_msg("a writer overlapped %d time(s) with another holder",
			 atomic_load(&rw->overlaps));
	assert_int_equal(atomic_load(&rw->errors), 0);
	assert_int_equal(atomic_load(&rw->rounds),
			 NREADERS * NROUNDS + 2 * (NROUNDS / 3));
	assert_int_equal(atomic_load(&rw->opened), NREADERS);
	check_tokens_unique();
	harness_lockmgrd_stop(&d);
}

/* ---- upgrade and downgrade ---------------------------------------- */

static void upgrade_and_downgrade_alone(void)
{
	harness_lockmgrd_start(&d, "convert", "--max-ttl", "10000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	assert_int_equal(take(a, "/conv", LM_MODE_S, 5000, 0, &ga), 0);
	uint64_t t_s = ga.token;
	/* Alone in the group: the upgrade is immediate, with a new token. */
	assert_int_equal(lm_convert(a, &ga, LM_MODE_X, 5000, 0), 0);
	assert_int_equal(ga.mode, LM_MODE_X);
	assert_true(ga.token > t_s);
	assert_int_equal(take(b, "/conv", LM_MODE_S, 5000, 0, &gb), LM_EBUSY);
	assert_int_equal(take(b, "/conv", LM_MODE_IS, 5000, 0, &gb), LM_EBUSY);
	assert_int_equal(lm_renew(a, &ga, 5000), 0);
	/* Downgrade: the same grant, holding less; readers come in. */
	uint64_t t_x = ga.token;
	assert_int_equal(lm_convert(a, &ga, LM_MODE_S, 5000, 0), 0);
	assert_int_equal(ga.mode, LM_MODE_S);
	assert_true(ga.token == t_x);
	assert_int_equal(take(b, "/conv", LM_MODE_S, 5000, 0, &gb), 0);
	assert_true(gb.token > t_x);
	/* Two members now: no upgrade without waiting. */
	assert_int_equal(lm_convert(a, &ga, LM_MODE_X, 5000, 0), LM_EBUSY);
	assert_int_equal(ga.mode, LM_MODE_S);
	assert_int_equal(lm_renew(a, &ga, 5000), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	/* A writer is still kept out by a's S... */
	assert_int_equal(take(b, "/conv", LM_MODE_X, 5000, 0, &gb), LM_EBUSY);
	/* ...until a releases it. */
	assert_int_equal(lm_release(a, &ga), 0);
	assert_int_equal(take(b, "/conv", LM_MODE_X, 5000, 0, &gb), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	/* Between counted modes: refused, the grant untouched. */
	assert_int_equal(take(a, "/conv", LM_MODE_IS, 5000, 0, &ga), 0);
	assert_int_equal(lm_convert(a, &ga, LM_MODE_S, 5000, 0), LM_EINVAL);
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

struct conv_shared {
	_Atomic int64_t released_ms;  /* when the other reader released */
	_Atomic int64_t upgraded_ms;  /* when the upgrade returned */
	_Atomic int rc;
	_Atomic int holding;
	_Atomic int reader_in;        /* the waiting reader holds S */
	_Atomic int64_t downgraded_ms;
};

static struct conv_shared *cv;

static void upgrader(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	if (take(c, "/upgrade", LM_MODE_S, 5000, 0, &g) != 0)
		_exit(3);
	atomic_store(&cv->holding, 1);
	int rc = lm_convert(c, &g, LM_MODE_X, 5000, 10000);
	atomic_store(&cv->upgraded_ms, harness_now_ms());
	atomic_store(&cv->rc, rc);
	if (rc == 0 && g.mode != LM_MODE_X)
		_exit(4);
	lm_release(c, &g);
	lm_disconnect(c);
}

static void upgrade_waits_for_readers(void)
{
	harness_lockmgrd_start(&d, "upgrade", "--max-ttl", "10000", NULL);
	cv = harness_shared(sizeof(*cv));
	lm_client *b = connect_or_fail();
	lm_grant gb;
	assert_int_equal(take(b, "/upgrade", LM_MODE_S, 5000, 0, &gb), 0);
	pid_t p = harness_fork(upgrader, NULL);
	HARNESS_WAIT_FOR(atomic_load(&cv->holding) == 1, 10000,
			 "the upgrader to hold S");
	/* The upgrader waits as long as we read. */
	harness_nap_us(300000);
	assert_int_equal(atomic_load(&cv->upgraded_ms), 0);
	atomic_store(&cv->released_ms, harness_now_ms());
	assert_int_equal(lm_release(b, &gb), 0);
	harness_expect_exit(p, 15000, 0, "upgrader");
	if (atomic_load(&cv->rc) != 0)
		fail_msg("upgrade: %s", lm_strerror(atomic_load(&cv->rc)));
	assert_true(atomic_load(&cv->upgraded_ms) >=
		    atomic_load(&cv->released_ms));
	fprintf(stderr, "  upgraded %lld ms after the other reader left\n",
		(long long)(atomic_load(&cv->upgraded_ms) -
			    atomic_load(&cv->released_ms)));
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

static void waiting_reader(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = take(c, "/downgrade", LM_MODE_S, 5000, 10000, &g);
	if (rc != 0)
		_exit(3);
	atomic_store(&cv->reader_in, 1);
	/* Stay in until the test has seen both of us hold. */
	HARNESS_WAIT_FOR(atomic_load(&cv->holding) == 2, 10000,
			 "the test to see both readers");
	lm_release(c, &g);
	lm_disconnect(c);
}

static void downgrade_wakes_readers(void)
{
	harness_lockmgrd_start(&d, "downgrade", "--max-ttl", "10000", NULL);
	cv = harness_shared(sizeof(*cv));
	lm_client *a = connect_or_fail();
	lm_grant ga;
	assert_int_equal(take(a, "/downgrade", LM_MODE_X, 8000, 0, &ga), 0);
	pid_t p = harness_fork(waiting_reader, NULL);
	harness_nap_us(200000);
	assert_int_equal(atomic_load(&cv->reader_in), 0);
	assert_int_equal(lm_convert(a, &ga, LM_MODE_S, 5000, 0), 0);
	/* Woken by the downgrade, not by the end of a's lease (8 s). */
	HARNESS_WAIT_FOR(atomic_load(&cv->reader_in) == 1, 3000,
			 "the waiting reader to join the downgraded grant");
	assert_int_equal(lm_renew(a, &ga, 5000), 0);
	atomic_store(&cv->holding, 2);
	harness_expect_exit(p, 10000, 0, "reader");
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	harness_lockmgrd_stop(&d);
}

/* ---- lockctl: --shared, --mode, and status --------------------------- */

static void lockctl_modes(void)
{
	harness_lockmgrd_start(&d, "ctlmodes", "--max-ttl", "30000", NULL);
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	lm_client *a = connect_or_fail();
	lm_grant ga;
	/* Outlasts the eight lockctl runs below on a loaded host. */
	assert_int_equal(take(a, "/ctl", LM_MODE_S, 30000, 0, &ga), 0);
	char out[4096], err[4096];
	/* Another reader runs at once, and is told its mode. */
	int rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			     d.region, "run", "--shared", "--wait", "0", "/ctl",
			     "--", "sh", "-c", "echo $LOCKMGR_MODE", NULL);
	if (rc != 0)
		fail_msg("lockctl run --shared beside a reader: %d (%s)", rc,
			 err);
	assert_string_equal(out, "S\n");
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "run", "--mode", "is", "--wait", "0", "/ctl",
			 "--", "true", NULL);
	assert_int_equal(rc, 0);
	/* A writer, and IX, do not. */
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "run", "--wait", "0", "/ctl", "--", "true",
			 NULL);
	assert_int_equal(rc, 75);
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "run", "--mode", "IX", "--wait", "0", "/ctl",
			 "--", "true", NULL);
	assert_int_equal(rc, 75);
	/* A mode that is not one, and two that disagree. */
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "run", "--mode", "Q", "/ctl", "--", "true",
			 NULL);
	assert_int_equal(rc, 64);
	assert_non_null(strstr(err, "not a mode"));
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "run", "--shared", "--mode", "X", "/ctl",
			 "--", "true", NULL);
	assert_int_equal(rc, 64);
	/* status shows the reader and its mode. */
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "status", "--json", NULL);
	assert_int_equal(rc, 0);
	char want[128];
	snprintf(want, sizeof(want), "\"pid\":%d,\"mode\":\"S\"", (int)getpid());
	if (strstr(out, want) == NULL)
		fail_msg("status --json does not list pid %d holding S: %s",
			 (int)getpid(), out);
	assert_non_null(strstr(out, "\"mode\":\"S\""));
	rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			 d.region, "status", NULL);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "MODE"));
	assert_true(strstr(out, " S\n") != NULL);
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
}

/* ---- a writer is not starved by readers ------------------------------ */

struct fair_shared {
	_Atomic int order;      /* grants, in the order they came */
	_Atomic int writer_at;  /* the writer's place in that order */
	_Atomic int reader_at;  /* the late reader's */
	_Atomic int errors;
};

static struct fair_shared *fs_;

static void fair_client(void *arg)
{
	uint32_t mode = *(const uint32_t *)arg;
	lm_client *c = connect_or_fail();
	lm_grant g;
	if (take(c, "/fair", mode, 5000, 10000, &g) != 0) {
		atomic_fetch_add(&fs_->errors, 1);
		_exit(3);
	}
	int at = atomic_fetch_add(&fs_->order, 1) + 1;
	atomic_store(mode == LM_MODE_X ? &fs_->writer_at : &fs_->reader_at, at);
	lm_release(c, &g);
	lm_disconnect(c);
}

static uint32_t fair_waiters(struct lm_region *r, uint32_t lock)
{
	return LM_WAITERS_COUNT(atomic_load(&lm_queue_of(r, lock)->waiters));
}

/* A reader that comes while a writer waits behind readers waits for the
 * writer (no writer starvation), even though it could share the lock
 * with the readers inside. */
static void writer_not_starved(void)
{
	harness_lockmgrd_start(&d, "fair", "--max-ttl", "10000", NULL);
	fs_ = harness_shared(sizeof(*fs_));
	lm_client *a = connect_or_fail();
	lm_grant ga;
	assert_int_equal(take(a, "/fair", LM_MODE_S, 8000, 0, &ga), 0);
	struct lm_region r;
	harness_attach(d.region, &r);
	int64_t k = lm_name_lookup(&r, "/fair", 5, 1);
	assert_true(k >= 0);
	static uint32_t x = LM_MODE_X, sh = LM_MODE_S;
	pid_t w = harness_fork(fair_client, &x);
	HARNESS_WAIT_FOR(fair_waiters(&r, (uint32_t)k) == 1, 5000,
			 "the writer to queue behind the reader");
	/* Past the 200 us in which a newcomer may overtake the queue. */
	harness_nap_us(5000);
	pid_t rd = harness_fork(fair_client, &sh);
	HARNESS_WAIT_FOR(fair_waiters(&r, (uint32_t)k) == 2, 5000,
			 "the second reader to queue behind the writer");
	assert_int_equal(atomic_load(&fs_->order), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	harness_expect_exit(w, 10000, 0, "writer");
	harness_expect_exit(rd, 10000, 0, "reader");
	assert_int_equal(atomic_load(&fs_->errors), 0);
	if (atomic_load(&fs_->writer_at) != 1)
		fail_msg("the reader that came after a waiting writer was "
			 "granted first (writer %d, reader %d)",
			 atomic_load(&fs_->writer_at),
			 atomic_load(&fs_->reader_at));
	lm_region_detach(&r);
	lm_disconnect(a);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(matrix_exhaustive, 60)
HARNESS_CASE(readers_and_writers, 180)
HARNESS_CASE(upgrade_and_downgrade_alone, 60)
HARNESS_CASE(upgrade_waits_for_readers, 60)
HARNESS_CASE(downgrade_wakes_readers, 60)
HARNESS_CASE(lockctl_modes, 60)
HARNESS_CASE(writer_not_starved, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(matrix_exhaustive),
		harness_case(readers_and_writers),
		harness_case(upgrade_and_downgrade_alone),
		harness_case(upgrade_waits_for_readers),
		harness_case(downgrade_wakes_readers),
		harness_case(lockctl_modes),
		harness_case(writer_not_starved),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
