/*
 * test_names.c - names that do not run out.
 *
 * A program that locks per-row or per-request names must never fill the
 * lock table: names nothing holds, waits on or watches are reclaimed and
 * their slots reused (shm/name_reclaim.c). And a name created again must
 * never get a token at or below one its earlier life issued, which the
 * fenced store guarding it would take for a zombie's.
 *
 * Two clients push NAMES_TOTAL distinct names (10,000,000 by default)
 * through a 65,536-lock region. Each name is taken twice, 100,000 names apart, so
 * that its slot has been reclaimed and reused in between: the second
 * token must be above the first. Fifty names are also taken again and
 * again all along, each time writing its token to a fenced store of its
 * own, which must accept every write.
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/lockmgr.h"
#include "resource/store.h"
#include "shm/region.h"

#define DEFAULT_NAMES 10000000

#define WORKERS  2
#define RING     100000u   /* a name's second life comes this much later */
#define TRACKED  50
#define TRACK_EVERY 200000u

struct shared {
	char region[LM_REGION_NAME_MAX + 2];
	char store_dir[256];
	uint64_t total;
	_Atomic uint64_t done[WORKERS];
	_Atomic uint64_t rechecked;     /* second lives checked */
	_Atomic uint64_t tracked_grants;
	uint64_t last_tracked[TRACKED]; /* written only under its lock */
};

static void take(lm_client *c, const char *name, lm_grant *g)
{
	int rc = lm_acquire(c, name, 1000, 1000, g);
	if (rc != 0)
		fail_msg("acquire %s: %s", name, lm_strerror(rc));
}

static void give(lm_client *c, const char *name, lm_grant *g)
{
	int rc = lm_release(c, g);
	if (rc != 0)
		fail_msg("release %s: %s", name, lm_strerror(rc));
}

static void track_all(struct shared *sh, lm_client *c, fs_store **st)
{
	char name[32];
	for (int k = 0; k < TRACKED; k++) {
		snprintf(name, sizeof(name), "t/%d", k);
		lm_grant g;
		take(c, name, &g);
		if (g.token <= sh->last_tracked[k])
			fail_msg("%s: token %llu after %llu", name,
				 (unsigned long long)g.token,
				 (unsigned long long)sh->last_tracked[k]);
		sh->last_tracked[k] = g.token;
		char data[64];
		int n = snprintf(data, sizeof(data), "token %llu",
				 (unsigned long long)g.token);
		int rc = fs_write(st[k], g.token, data, (size_t)n, NULL);
		if (rc != 0)
			fail_msg("%s: the store refused token %llu: %s", name,
				 (unsigned long long)g.token, fs_strerror(rc));
		give(c, name, &g);
		atomic_fetch_add(&sh->tracked_grants, 1);
	}
}

struct worker_arg {
	struct shared *sh;
	int id;
};

static void worker(void *arg)
{
	const struct worker_arg *wa = arg;
	struct shared *sh = wa->sh;
	lm_client *c;
	int rc = lm_connect(sh->region, &c);
	if (rc != 0)
		fail_msg("connect: %s", lm_strerror(rc));
	fs_store *st[TRACKED];
	for (int k = 0; k < TRACKED; k++) {
		char path[320];
		snprintf(path, sizeof(path), "%s/t-%d", sh->store_dir, k);
		rc = fs_open(path, 0, &st[k]);
		if (rc != 0)
			fail_msg("fs_open %s: %s", path, fs_strerror(rc));
	}
	uint64_t *first = calloc(RING, sizeof(*first));
	assert_non_null(first);
	char name[32];
	for (uint64_t i = (uint64_t)wa->id; i < sh->total; i += WORKERS) {
		lm_grant g;
		uint32_t slot = (uint32_t)(i % RING);
		if (i >= RING) {
			/* n/(i - RING) again: its slot has been reused. */
			snprintf(name, sizeof(name), "n/%llu",
				 (unsigned long long)(i - RING));
			take(c, name, &g);
			if (g.token <= first[slot])
				fail_msg("%s got token %llu in its second life, "
					 "%llu in its first", name,
					 (unsigned long long)g.token,
					 (unsigned long long)first[slot]);
			give(c, name, &g);
			atomic_fetch_add(&sh->rechecked, 1);
		}
		snprintf(name, sizeof(name), "n/%llu", (unsigned long long)i);
		take(c, name, &g);
		first[slot] = g.token;
		give(c, name, &g);
		if (i % TRACK_EVERY < WORKERS)
			track_all(sh, c, st);
		if ((i & 0xffff) < WORKERS)
			atomic_store(&sh->done[wa->id], i);
	}
	free(first);
	for (int k = 0; k < TRACKED; k++)
		fs_close(st[k]);
	lm_disconnect(c);
}

static void ten_million_names(void)
{
	const char *env = getenv("NAMES_TOTAL");
	uint64_t total = env != NULL && *env != '\0'
				 ? strtoull(env, NULL, 10)
				 : DEFAULT_NAMES;
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "names", "--max-locks", "65536", NULL);
	struct shared *sh = harness_shared(sizeof(*sh));
	snprintf(sh->region, sizeof(sh->region), "%s", d.region);
	harness_tmpdir(sh->store_dir, sizeof(sh->store_dir));
	sh->total = total;
	for (int k = 0; k < TRACKED; k++) {
		char path[320];
		snprintf(path, sizeof(path), "%s/t-%d", sh->store_dir, k);
		fs_store *st;
		int rc = fs_open(path, FS_CREATE, &st);
		if (rc != 0)
			fail_msg("fs_open %s: %s", path, fs_strerror(rc));
		fs_close(st);
	}
	int64_t t0 = harness_now_ms();
	pid_t pids[WORKERS];
	struct worker_arg wa[WORKERS];
	for (int w = 0; w < WORKERS; w++) {
		wa[w] = (struct worker_arg){sh, w};
		pids[w] = harness_fork(worker, &wa[w]);
	}
	for (int w = 0; w < WORKERS; w++)
		harness_expect_exit(pids[w], 800000, 0, "name worker");
	int64_t ms = harness_now_ms() - t0;

	struct lm_region r;
	char why[256];
	assert_int_equal(lm_region_attach(&r, d.region, why, sizeof(why)), 0);
	uint32_t live = 0;
	for (uint32_t i = 0; i < lm_names_in_use(&r); i++)
		live += LM_NAME_STATE(atomic_load(lm_name_life(&r, i))) !=
			LM_NAME_FREE;
	fprintf(stderr,
		"names: %llu distinct names (each twice, %llu second lives "
		"checked), %llu grants of %d tracked names, through %u lock "
		"slots in %lld ms (%.0f names/s); %u names live at the end\n",
		(unsigned long long)total,
		(unsigned long long)atomic_load(&sh->rechecked),
		(unsigned long long)atomic_load(&sh->tracked_grants), TRACKED,
		r.max_locks, (long long)ms,
		(double)total * 1000.0 / (double)(ms ? ms : 1), live);
	assert_true(live <= r.max_locks);
	assert_true(atomic_load(&sh->rechecked) + RING >= total);
	lm_region_detach(&r);
	/* Every tracked store took every write, in token order. */
	for (int k = 0; k < TRACKED; k++) {
		char path[320];
		snprintf(path, sizeof(path), "%s/t-%d", sh->store_dir, k);
		fs_store *st;
		assert_int_equal(fs_open(path, FS_RDONLY, &st), 0);
		struct fs_stats s;
		assert_int_equal(fs_stats(st, &s), 0);
		assert_int_equal(s.rejected, 0);
		assert_true(s.accepted > 0);
		fs_close(st);
	}
	harness_shared_free(sh, sizeof(*sh));
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(ten_million_names, 900)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(ten_million_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
