/*
 * test_tree.c - lock trees (lockmgrd --tree) with a real lockmgrd and real
 * client processes: a subtree X against held descendants and the reverse,
 * siblings in parallel under IX, a failed path undone, and fencing order
 * across ancestor and descendant, down to a fenced store keyed by the
 * subtree.
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "resource/store.h"

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
		int64_t wait_ms, lm_grant *g)
{
	lm_acquire_opts o = LM_ACQUIRE_OPTS(mode, 5000, wait_ms);
	return lm_acquire_ex(c, name, &o, g);
}

static void subtree_against_descendants(void)
{
	harness_lockmgrd_start(&d, "tree", "--tree", "--max-ttl", "10000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	/* A row read keeps its table from being written... */
	assert_int_equal(take(a, "/db/orders/row17", LM_MODE_S, 0, &ga), 0);
	assert_int_equal(take(b, "/db/orders", LM_MODE_X, 0, &gb), LM_EBUSY);
	assert_int_equal(take(b, "/db", LM_MODE_X, 0, &gb), LM_EBUSY);
	/* ...but not from being read, nor a sibling row from a writer. */
	assert_int_equal(take(b, "/db/orders", LM_MODE_S, 0, &gb), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(take(b, "/db/orders/row18", LM_MODE_X, 0, &gb), 0);
	/* The same row: S and X conflict there. */
	lm_grant gc;
	assert_int_equal(take(a, "/db/orders/row18", LM_MODE_S, 0, &gc),
			 LM_EBUSY);
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	/* And the reverse: the subtree written, no row below is taken. */
	assert_int_equal(take(b, "/db/orders", LM_MODE_X, 0, &gb), 0);
	assert_int_equal(take(a, "/db/orders/row17", LM_MODE_S, 0, &ga),
			 LM_EBUSY);
	assert_int_equal(take(a, "/db/orders/row17/col", LM_MODE_IS, 0, &ga),
			 LM_EBUSY);
	/* A sibling subtree is not affected. */
	assert_int_equal(take(a, "/db/users/u1", LM_MODE_X, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(take(a, "/db/orders/row17", LM_MODE_S, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

/* A path that fails part way leaves nothing behind. */
static void failed_path_is_undone(void)
{
	harness_lockmgrd_start(&d, "treeundo", "--tree", "--max-ttl", "10000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	assert_int_equal(take(a, "/t/u/v", LM_MODE_X, 0, &ga), 0);
	/* b gets IX on /t, then meets a's IX on /t/u with its X there. */
	assert_int_equal(take(b, "/t/u", LM_MODE_X, 0, &gb), LM_EBUSY);
	assert_int_equal(take(b, "/t/u", LM_MODE_X, 200, &gb), LM_ETIMEDOUT);
	assert_int_equal(lm_release(a, &ga), 0);
	/* Had b kept its IX on /t, this X would be refused. */
	assert_int_equal(take(a, "/t", LM_MODE_X, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	/* Release of a whole path, twice: the second is refused. */
	assert_int_equal(take(b, "/t/u/w", LM_MODE_S, 0, &gb), 0);
	assert_int_equal(lm_renew(b, &gb, 5000), 0);
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(lm_release(b, &gb), LM_ENOTHELD);
	assert_int_equal(take(a, "/t", LM_MODE_X, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	/* A tree grant is not converted (its ancestors would have to be). */
	assert_int_equal(take(b, "/t/u/w", LM_MODE_S, 0, &gb), 0);
	assert_int_equal(lm_convert(b, &gb, LM_MODE_X, 5000, 0), LM_EINVAL);
	/* A grant never released is freed with its session. */
	lm_disconnect(b);
	assert_int_equal(take(a, "/t", LM_MODE_X, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);
	lm_disconnect(a);
	harness_lockmgrd_stop(&d);
}

/* ---- siblings in parallel ------------------------------------------ */

enum { ROWS = 4, ROUNDS = 200 };

struct rows_shared {
	_Atomic int together; /* opening phase: rows held at once */
	_Atomic int in_row[ROWS];
	_Atomic int in_total;
	_Atomic int max_total;
	_Atomic int overlaps;
	_Atomic int errors;
};

static struct rows_shared *rs;

/*
 * The first writer of each row holds it until every row is held at
 * once: proof that siblings go in parallel which does not depend on the
 * scheduler overlapping the rounds below (on two loaded cores it may
 * not). The region's longest lease, and a wait that ends before it.
 */
static void rows_held_together(lm_client *c, const char *name)
{
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_X, 10000, -1);
	lm_grant g;
	int rc = lm_acquire_ex(c, name, &o, &g);
	if (rc != 0)
		fail_msg("row writer, opening phase, %s: %s", name,
			 lm_strerror(rc));
	atomic_fetch_add(&rs->together, 1);
	HARNESS_WAIT_FOR(atomic_load(&rs->together) >= ROWS, 8000,
			 "only %d of %d sibling rows held X at once within 8 "
			 "s: rows do not go in parallel",
			 atomic_load(&rs->together), ROWS);
	if (lm_release(c, &g) != 0)
		atomic_fetch_add(&rs->errors, 1);
}

static void row_writer(void *arg)
{
	int k = *(const int *)arg;
	lm_client *c = connect_or_fail();
	char name[32];
	snprintf(name, sizeof(name), "/tbl/rows/r%d", k % ROWS);
	if (k < ROWS)
		rows_held_together(c, name);
	for (int r = 0; r < ROUNDS; r++) {
		lm_grant g;
		if (take(c, name, LM_MODE_X, -1, &g) != 0) {
			atomic_fetch_add(&rs->errors, 1);
			continue;
		}
		if (atomic_fetch_add(&rs->in_row[k % ROWS], 1) != 0)
			atomic_fetch_add(&rs->overlaps, 1);
		int n = atomic_fetch_add(&rs->in_total, 1) + 1;
		int m = atomic_load(&rs->max_total);
		while (n > m &&
		       !atomic_compare_exchange_weak(&rs->max_total, &m, n))
			;
		for (volatile int spin = 0; spin < 50000; spin++)
			;
		atomic_fetch_sub(&rs->in_total, 1);
		atomic_fetch_sub(&rs->in_row[k % ROWS], 1);
		if (lm_release(c, &g) != 0)
			atomic_fetch_add(&rs->errors, 1);
	}
	lm_disconnect(c);
}

static void siblings_in_parallel(void)
{
	harness_lockmgrd_start(&d, "rows", "--tree", "--max-ttl", "10000", NULL);
	rs = harness_shared(sizeof(*rs));
	int ks[2 * ROWS];
	pid_t pids[2 * ROWS];
	for (int k = 0; k < 2 * ROWS; k++) {
		ks[k] = k;
		pids[k] = harness_fork(row_writer, &ks[k]);
	}
	for (int k = 0; k < 2 * ROWS; k++)
		harness_expect_exit(pids[k], 120000, 0, "row writer");
	fprintf(stderr, "  at most %d rows written at once\n",
		atomic_load(&rs->max_total));
	assert_int_equal(atomic_load(&rs->errors), 0);
	if (atomic_load(&rs->overlaps) != 0)
		fail_msg("two writers in one row %d time(s)",
			 atomic_load(&rs->overlaps));
	/* IX on the table and the parent let rows go in parallel. */
	assert_int_equal(atomic_load(&rs->together), ROWS);
	harness_lockmgrd_stop(&d);
}

/* ---- fencing across the tree ---------------------------------------- */

static void fencing_across_the_tree(void)
{
	harness_lockmgrd_start(&d, "treefence", "--tree", "--max-ttl", "10000", NULL);
	char dir[256], path[320];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/orders.store", dir);
	fs_store *st;
	assert_int_equal(fs_open(path, FS_CREATE, &st), 0);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant row, table, row2;
	/* The row's grant, then the subtree's: tokens in grant order,
	 * though they are different names. */
	assert_int_equal(take(a, "/db/orders/row17", LM_MODE_X, 0, &row), 0);
	uint64_t before = 0;
	assert_int_equal(fs_write(st, row.token, "r", 1, &before), 0);
	/* Make the row's marks run ahead of the table's: more grants of
	 * the row alone. */
	for (int k = 0; k < 5; k++) {
		lm_grant again;
		assert_int_equal(lm_release(a, &row), 0);
		assert_int_equal(take(a, "/db/orders/row17", LM_MODE_X, 0,
				      &again),
				 0);
		row = again;
	}
	uint64_t zombie = row.token;
	assert_int_equal(lm_release(a, &row), 0);
	assert_int_equal(take(b, "/db/orders", LM_MODE_X, 0, &table), 0);
	if (table.token <= zombie)
		fail_msg("the subtree's grant got token %llu after the row's "
			 "%llu", (unsigned long long)table.token,
			 (unsigned long long)zombie);
	assert_int_equal(fs_write(st, table.token, "t", 1, &before), 0);
	/* The row's holder, back from a pause, is fenced out. */
	assert_int_equal(fs_write(st, zombie, "z", 1, &before), FS_ESTALE);
	assert_int_equal(lm_release(b, &table), 0);
	/* And the other way round: a row after the subtree. */
	assert_int_equal(take(a, "/db/orders/row99", LM_MODE_S, 0, &row2), 0);
	if (row2.token <= table.token)
		fail_msg("a row's grant got token %llu after the subtree's "
			 "%llu", (unsigned long long)row2.token,
			 (unsigned long long)table.token);
	assert_int_equal(lm_release(a, &row2), 0);
	fs_close(st);
	lm_disconnect(a);
	lm_disconnect(b);
	unlink(path);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
}

/* Without --tree, names are flat: no intention locks, no exclusion. */
static void flat_region_has_no_tree(void)
{
	harness_lockmgrd_start(&d, "flat", "--max-ttl", "10000", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	assert_int_equal(take(a, "/db/orders/row17", LM_MODE_X, 0, &ga), 0);
	assert_int_equal(take(b, "/db/orders", LM_MODE_X, 0, &gb), 0);
	assert_int_equal(take(b, "/db", LM_MODE_X, 0, &gb), 0);
	lm_disconnect(a);
	lm_disconnect(b);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(subtree_against_descendants, 60)
HARNESS_CASE(failed_path_is_undone, 60)
HARNESS_CASE(siblings_in_parallel, 120)
HARNESS_CASE(fencing_across_the_tree, 60)
HARNESS_CASE(flat_region_has_no_tree, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(subtree_against_descendants),
		harness_case(failed_path_is_undone),
		harness_case(siblings_in_parallel),
		harness_case(fencing_across_the_tree),
		harness_case(flat_region_has_no_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
