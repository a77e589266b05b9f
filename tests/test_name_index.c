/*
 * test_name_index.c - the lock-name index (shm/name_index.c), on a
 * region created in-process; the concurrency case forks real processes
 * that insert into the same region at once.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/name_index.h"
#include "shm/name_reclaim.h"
#include "shm/region.h"

struct fixture {
	struct lm_region r;
	char name[LM_REGION_NAME_MAX + 2];
};

static void make_region(struct fixture *f, uint32_t max_locks)
{
	struct lm_region_params p = {.max_locks = max_locks,
				     .max_sessions = 8,
				     .max_ttl_ms = 2000,
				     .mode = 0600};
	harness_region_name(f->name, sizeof(f->name), "names");
	int fd = shm_open(f->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
	if (fd < 0)
		fail_msg("shm_open(%s): %s", f->name, strerror(errno));
	assert_int_equal(lm_region_init(&f->r, fd, f->name, &p), 0);
}

static void drop_region(struct fixture *f)
{
	lm_region_detach(&f->r);
	assert_int_equal(shm_unlink(f->name), 0);
}

static int64_t lookup(struct fixture *f, const char *name, int create)
{
	return lm_name_lookup(&f->r, name, strlen(name), create);
}

/* The live name of slot idx (NULL if none), in a buffer per call site
 * of the same statement's lifetime. */
static const char *name_at(struct fixture *f, uint32_t idx, uint32_t *len)
{
	static char buf[4][LM_NAME_MAX + 1];
	static unsigned next;
	char *b = buf[next++ % 4];
	uint32_t n = lm_name_copy(&f->r, idx, b, NULL);
	if (len != NULL)
		*len = n;
	return n != 0 ? b : NULL;
}

/* Make lock idx look held (a session's owner word on table 0). */
static void hold(struct fixture *f, int64_t idx)
{
	atomic_store(&lm_slot_of(&f->r, 0, (uint32_t)idx)->owner,
		     LM_OWNER_WORD(0, 0, 1));
}

static void unhold(struct fixture *f, int64_t idx)
{
	atomic_store(&lm_slot_of(&f->r, 0, (uint32_t)idx)->owner,
		     LM_OWNER_FREE);
}

static void insert_and_lookup(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 4096);
	assert_int_equal(lookup(&f, "alpha", 0), LM_ENOTHELD);
	int64_t a = lookup(&f, "alpha", 1);
	assert_true(a >= 0 && a < 4096);
	assert_int_equal(lookup(&f, "alpha", 0), a);
	assert_int_equal(lookup(&f, "alpha", 1), a);
	uint32_t len = 0;
	const char *n = name_at(&f, (uint32_t)a, &len);
	assert_non_null(n);
	assert_int_equal(len, 5);
	assert_memory_equal(n, "alpha", 5);
	/* A prefix, an extension and a case change are other names. */
	int64_t b = lookup(&f, "alph", 1);
	int64_t c = lookup(&f, "alphas", 1);
	int64_t d = lookup(&f, "Alpha", 1);
	assert_true(b >= 0 && c >= 0 && d >= 0);
	assert_true(a != b && a != c && a != d && b != c && b != d && c != d);
	/* Lookup by explicit length: "alphabet" cut at 5 is "alpha". */
	assert_int_equal(lm_name_lookup(&f.r, "alphabet", 5, 0), a);
	/* An unused slot has no name. */
	assert_null(name_at(&f, 4000, NULL));
	assert_null(name_at(&f, 4096, NULL));
	assert_null(name_at(&f, UINT32_MAX, NULL));
	drop_region(&f);
}

static void many_distinct_names(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 4096);
	enum { N = 1000 };
	static int64_t idx[N];
	static unsigned char seen[4096];
	memset(seen, 0, sizeof(seen));
	char name[64];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "lock-%d", i);
		idx[i] = lookup(&f, name, 1);
		assert_true(idx[i] >= 0 && idx[i] < 4096);
		if (seen[idx[i]]++)
			fail_msg("\"%s\" got index %lld, already in use", name,
				 (long long)idx[i]);
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "lock-%d", i);
		assert_int_equal(lookup(&f, name, 0), idx[i]);
		assert_int_equal(lookup(&f, name, 1), idx[i]);
		assert_string_equal(name_at(&f, (uint32_t)idx[i], NULL), name);
	}
	assert_int_equal(lm_names_in_use(&f.r), N);
	drop_region(&f);
}

static void hierarchical_names(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 4096);
	const char *names[] = {"/db", "/db/orders", "/db/orders/row17",
			       "/db/orders/row1", "/db/orders/row17/",
			       "db/orders/row17", "/db/customers/row17"};
	enum { K = sizeof(names) / sizeof(names[0]) };
	int64_t idx[K];
	for (int i = 0; i < K; i++) {
		idx[i] = lookup(&f, names[i], 1);
		assert_true(idx[i] >= 0);
		for (int j = 0; j < i; j++)
			if (idx[i] == idx[j])
				fail_msg("\"%s\" and \"%s\" share index %lld",
					 names[i], names[j],
					 (long long)idx[i]);
	}
	for (int i = 0; i < K; i++) {
		assert_int_equal(lookup(&f, names[i], 0), idx[i]);
		assert_string_equal(name_at(&f, (uint32_t)idx[i], NULL),
				    names[i]);
	}
	drop_region(&f);
}

static void name_length_and_bytes(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 4096);
	char n[LM_NAME_MAX + 2];
	memset(n, 'x', sizeof(n));
	/* 255 bytes: fine. */
	int64_t i255 = lm_name_lookup(&f.r, n, LM_NAME_MAX, 1);
	assert_true(i255 >= 0);
	assert_int_equal(lm_name_lookup(&f.r, n, LM_NAME_MAX, 0), i255);
	uint32_t len = 0;
	assert_non_null(name_at(&f, (uint32_t)i255, &len));
	assert_int_equal(len, LM_NAME_MAX);
	/* 256 bytes: refused, with or without create. */
	assert_int_equal(lm_name_lookup(&f.r, n, LM_NAME_MAX + 1, 1),
			 LM_EBADNAME);
	assert_int_equal(lm_name_lookup(&f.r, n, LM_NAME_MAX + 1, 0),
			 LM_EBADNAME);
	assert_int_equal(lm_name_check(n, LM_NAME_MAX + 1), LM_EBADNAME);
	assert_int_equal(lm_name_check(n, LM_NAME_MAX), 0);
	/* Empty. */
	assert_int_equal(lm_name_lookup(&f.r, "", 0, 1), LM_EBADNAME);
	assert_int_equal(lm_name_check("", 0), LM_EBADNAME);
	assert_int_equal(lm_name_check(NULL, 3), LM_EBADNAME);
	/* Embedded NUL, anywhere. */
	assert_int_equal(lm_name_lookup(&f.r, "ab\0cd", 5, 1), LM_EBADNAME);
	assert_int_equal(lm_name_lookup(&f.r, "\0abc", 4, 1), LM_EBADNAME);
	assert_int_equal(lm_name_lookup(&f.r, "abc\0", 4, 1), LM_EBADNAME);
	/* Arbitrary other bytes are fine (names are byte strings). */
	assert_true(lookup(&f, "caf\xc3\xa9 \t\x01\xff", 1) >= 0);
	/* Nothing refused took a slot: 255 x's and the byte name. */
	assert_int_equal(lm_names_in_use(&f.r), 2);
	drop_region(&f);
}

static void unknown_without_create(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 64);
	assert_int_equal(lookup(&f, "nobody", 0), LM_ENOTHELD);
	assert_true(lookup(&f, "somebody", 1) >= 0);
	assert_int_equal(lookup(&f, "nobody", 0), LM_ENOTHELD);
	assert_int_equal(lm_names_in_use(&f.r), 1);
	drop_region(&f);
}

/*
 * A full table takes a new name by reclaiming one nothing uses; only
 * when every name is held is it full.
 */
static void table_full(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 64);
	static unsigned char seen[64];
	memset(seen, 0, sizeof(seen));
	char name[32];
	int64_t k[64];
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "full-%d", i);
		k[i] = lookup(&f, name, 1);
		if (k[i] < 0 || k[i] >= 64)
			fail_msg("name %d of 64 got %lld", i, (long long)k[i]);
		assert_int_equal(seen[k[i]]++, 0);
		hold(&f, k[i]);
	}
	assert_int_equal(lookup(&f, "one-too-many", 1), LM_ETABLEFULL);
	assert_int_equal(lookup(&f, "one-more-again", 1), LM_ETABLEFULL);
	/* A failed insert does not leak slots or break lookups. */
	assert_int_equal(lm_names_in_use(&f.r), 64);
	assert_int_equal(lookup(&f, "one-too-many", 0), LM_ENOTHELD);
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "full-%d", i);
		assert_int_equal(lookup(&f, name, 1), k[i]);
	}
	/* One released: the next new name takes its slot. */
	unhold(&f, k[17]);
	int64_t m = lookup(&f, "one-too-many", 1);
	assert_int_equal(m, k[17]);
	assert_int_equal(lookup(&f, "full-17", 0), LM_ENOTHELD);
	assert_string_equal(name_at(&f, (uint32_t)m, NULL), "one-too-many");
	drop_region(&f);
}

/*
 * Reclaiming: a name nothing uses goes, its slot serves another name in
 * a new generation, and its token marks are folded into each table's
 * floor, so that the name, created again anywhere, gets higher tokens.
 */
static void reclaim_and_reuse(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 64);
	uint64_t g1, g2;
	int64_t a = lm_name_resolve(&f.r, "row17", 5, true, NULL, &g1);
	assert_true(a >= 0);
	uint64_t tokens[LM_NSERVERS] = {100, 70, 100};
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		atomic_store(&lm_slot_of(&f.r, i, (uint32_t)a)->token,
			     tokens[i]);
	/* In use: held, or waited for. */
	hold(&f, a);
	assert_int_equal(lm_name_reclaim(&f.r, (uint32_t)a, true), LM_IN_USE);
	unhold(&f, a);
	atomic_store(&lm_queue_of(&f.r, (uint32_t)a)->waiters, 1);
	assert_int_equal(lm_name_reclaim(&f.r, (uint32_t)a, true), LM_IN_USE);
	atomic_store(&lm_queue_of(&f.r, (uint32_t)a)->waiters, 0);
	/* Marked for its next holder: spared unless asked. */
	atomic_store(&lm_slot_of(&f.r, 1, (uint32_t)a)->owner,
		     LM_OWNER_ABANDONED);
	assert_int_equal(lm_name_reclaim(&f.r, (uint32_t)a, false), LM_IN_USE);
	assert_int_equal(lm_name_reclaim(&f.r, (uint32_t)a, true),
			 LM_RECLAIMED);
	assert_int_equal(lm_name_reclaim(&f.r, (uint32_t)a, true),
			 LM_NOT_LIVE);
	assert_int_equal(lookup(&f, "row17", 0), LM_ENOTHELD);
	assert_null(name_at(&f, (uint32_t)a, NULL));
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		assert_true(atomic_load(&f.r.servers[i]->token_floor) >=
			    tokens[i]);
		assert_int_equal(atomic_load(&lm_slot_of(&f.r, i,
							 (uint32_t)a)->owner),
				 LM_OWNER_FREE);
	}
	/* The slot serves the next name, in a new generation. */
	int64_t b = lm_name_resolve(&f.r, "row18", 5, true, NULL, &g2);
	assert_int_equal(b, a);
	assert_true(g2 != g1);
	assert_string_equal(name_at(&f, (uint32_t)b, NULL), "row18");
	assert_false(lm_name_linked(&f.r, (uint32_t)a, g1));
	assert_true(lm_name_linked(&f.r, (uint32_t)b, g2));
	drop_region(&f);
}

/*
 * A damaged index (links out of range, a cycle) ends a lookup with an
 * error naming the damage, never a stray read or a hang.
 */
static void corrupted_buckets(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 64);
	const char *victim = "victim";
	uint32_t home = lm_name_hash(victim, strlen(victim)) & f.r.bucket_mask;
	atomic_store(&f.r.buckets[home], LM_LINK(64 + 5, 1));
	assert_int_equal(lookup(&f, victim, 1), LM_EINCOMPAT);
	assert_int_equal(lookup(&f, victim, 0), LM_EINCOMPAT);
	/* A marked head, which no insert writes. */
	atomic_store(&f.r.buckets[home], LM_LINK(3, 1) | LM_LINK_MARK);
	assert_int_equal(lookup(&f, victim, 0), LM_EINCOMPAT);
	atomic_store(&f.r.buckets[home], 0);
	int64_t k = lookup(&f, victim, 1);
	assert_true(k >= 0 && k < 64);
	/* A cycle: the name's next link points to itself. */
	uint32_t gen = LM_NAME_GEN(atomic_load(lm_name_life(&f.r, (uint32_t)k)));
	atomic_store(&f.r.names[k].next, LM_LINK((uint32_t)k, gen));
	char other[32];
	int damaged = 0;
	for (int i = 0; i < 200 && !damaged; i++) {
		snprintf(other, sizeof(other), "probe-%d", i);
		if ((lm_name_hash(other, strlen(other)) & f.r.bucket_mask) ==
		    home)
			damaged = lookup(&f, other, 0) == LM_EINCOMPAT;
	}
	assert_true(damaged);
	/* A corrupted len in a name slot does not make lm_name_copy read
	 * past the slot. */
	atomic_store(&f.r.names[k].len, 4000);
	assert_null(name_at(&f, (uint32_t)k, NULL));
	drop_region(&f);
}

/* ---- concurrency ------------------------------------------------- */

enum { NPROC = 4, NNAMES = 200 };

struct race {
	int64_t idx[NPROC][NNAMES];
};

struct racer {
	struct fixture *f;
	struct race *out;
	int id;
	int gate;  /* read end: EOF means go */
	int gate_w; /* write end, the parent's only */
};

static void racer_main(void *arg)
{
	struct racer *rc = arg;
	close(rc->gate_w);
	/* Wait (bounded) for the gate to close, so that all insert at once. */
	int64_t deadline = harness_now_ms() + 10000;
	for (;;) {
		int64_t left = deadline - harness_now_ms();
		if (left <= 0)
			fail_msg("racer %d: the gate never opened", rc->id);
		struct pollfd p = {.fd = rc->gate, .events = POLLIN};
		if (poll(&p, 1, (int)left) != 1)
			continue;
		char b;
		ssize_t n = read(rc->gate, &b, 1);
		if (n == 0)
			break; /* EOF: go */
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			fail_msg("gate: %s", strerror(errno));
	}
	/* Attach our own view, as a separate client process would. */
	struct lm_region r;
	char why[256] = "";
	assert_int_equal(lm_region_attach(&r, rc->f->name, why, sizeof(why)),
			 0);
	char name[64];
	for (int k = 0; k < NNAMES; k++) {
		int i;
		switch (rc->id) {
		case 0: i = k; break;                          /* forward */
		case 1: i = NNAMES - 1 - k; break;             /* backward */
		case 2: i = (k * 7 + 3) % NNAMES; break;       /* stride 7 */
		default: i = (k % 2) ? NNAMES - 1 - k / 2 : k / 2; /* ends */
		}
		snprintf(name, sizeof(name), "/race/name-%d", i);
		int64_t v = lm_name_lookup(&r, name, strlen(name), 1);
		if (v < 0)
			fail_msg("racer %d: insert of %s failed: %lld", rc->id,
				 name, (long long)v);
		rc->out->idx[rc->id][i] = v;
	}
	lm_region_detach(&r);
}

static void concurrent_inserts_agree(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 4096);
	struct race *out = harness_shared(sizeof(*out));
	int gate[2];
	assert_int_equal(pipe2(gate, O_CLOEXEC | O_NONBLOCK), 0);
	pid_t pids[NPROC];
	struct racer rs[NPROC];
	for (int i = 0; i < NPROC; i++) {
		rs[i] = (struct racer){&f, out, i, gate[0], gate[1]};
		pids[i] = harness_fork(racer_main, &rs[i]);
	}
	close(gate[1]); /* go */
	close(gate[0]);
	for (int i = 0; i < NPROC; i++)
		harness_expect_exit(pids[i], 20000, 0, "name racer");
	static unsigned char seen[4096];
	memset(seen, 0, sizeof(seen));
	for (int n = 0; n < NNAMES; n++) {
		int64_t v = out->idx[0][n];
		assert_true(v >= 0 && v < 4096);
		for (int p = 1; p < NPROC; p++)
			if (out->idx[p][n] != v)
				fail_msg("name %d: process 0 got %lld, process "
					 "%d got %lld", n, (long long)v, p,
					 (long long)out->idx[p][n]);
		if (seen[v]++)
			fail_msg("two names share index %lld", (long long)v);
		char name[64];
		snprintf(name, sizeof(name), "/race/name-%d", n);
		assert_int_equal(lookup(&f, name, 0), v);
		assert_string_equal(name_at(&f, (uint32_t)v, NULL), name);
	}
	/* A lost race gives its slot back. */
	uint32_t live = 0;
	for (uint32_t i = 0; i < lm_names_in_use(&f.r); i++)
		live += LM_NAME_STATE(atomic_load(lm_name_life(&f.r, i))) !=
			LM_NAME_FREE;
	assert_int_equal(live, NNAMES);
	harness_shared_free(out, sizeof(*out));
	drop_region(&f);
}

/*
 * Churn: processes create and reclaim names from a small set at once,
 * each checking that what it resolved is that name (or already gone).
 * Afterwards the index must be whole: every name at most once, every
 * live slot in its chain, every chain made of live slots.
 */
enum { CHURN_PROCS = 4, CHURN_NAMES = 40, CHURN_ROUNDS = 20000 };

struct churner {
	const char *region;
	int id;
};

static void churner_main(void *arg)
{
	const struct churner *ch = arg;
	struct lm_region r;
	char why[256] = "";
	assert_int_equal(lm_region_attach(&r, ch->region, why, sizeof(why)), 0);
	unsigned seed = (unsigned)ch->id * 7919u + 1;
	char name[32], seen[LM_NAME_MAX + 1];
	for (int k = 0; k < CHURN_ROUNDS; k++) {
		snprintf(name, sizeof(name), "churn-%u",
			 (unsigned)rand_r(&seed) % CHURN_NAMES);
		uint64_t gen, g2;
		int64_t idx = lm_name_resolve(&r, name, strlen(name), true,
					      NULL, &gen);
		if (idx < 0)
			fail_msg("churner %d: resolve %s: %lld", ch->id, name,
				 (long long)idx);
		uint32_t len = lm_name_copy(&r, (uint32_t)idx, seen, &g2);
		if (len != 0 && g2 == gen && strcmp(seen, name) != 0)
			fail_msg("churner %d: %s resolved to slot %lld, which "
				 "holds %s in the same life", ch->id, name,
				 (long long)idx, seen);
		lm_name_reclaim(&r, (uint32_t)rand_r(&seed) % 64,
				rand_r(&seed) % 2);
	}
	lm_region_detach(&r);
}

static void churn_keeps_index_whole(void **state)
{
	(void)state;
	struct fixture f;
	make_region(&f, 64);
	pid_t pids[CHURN_PROCS];
	struct churner ch[CHURN_PROCS];
	for (int i = 0; i < CHURN_PROCS; i++) {
		ch[i] = (struct churner){f.name, i};
		pids[i] = harness_fork(churner_main, &ch[i]);
	}
	for (int i = 0; i < CHURN_PROCS; i++)
		harness_expect_exit(pids[i], 60000, 0, "name churner");
	/* Each name at most once among the live slots, each live slot
	 * reachable, and no chain holds a slot that is not live. */
	static unsigned char count[CHURN_NAMES];
	memset(count, 0, sizeof(count));
	unsigned live = 0;
	for (uint32_t i = 0; i < 64; i++) {
		uint32_t l = atomic_load(lm_name_life(&f.r, i));
		if (LM_NAME_STATE(l) == LM_NAME_FREE)
			continue;
		assert_int_equal(LM_NAME_STATE(l), LM_NAME_LIVE);
		assert_true(lm_name_linked(&f.r, i, LM_NAME_GEN(l)));
		const char *n = name_at(&f, i, NULL);
		assert_non_null(n);
		unsigned k = (unsigned)atoi(n + strlen("churn-"));
		assert_true(k < CHURN_NAMES);
		if (count[k]++ != 0)
			fail_msg("%s is live in two slots", n);
		live++;
	}
	unsigned linked = 0;
	for (uint32_t b = 0; b <= f.r.bucket_mask; b++)
		for (uint64_t cur = atomic_load(&f.r.buckets[b]);
		     LM_LINK_IDX(cur) != 0;
		     cur = atomic_load(&f.r.names[LM_LINK_IDX(cur) - 1].next)) {
			uint32_t i = LM_LINK_IDX(cur) - 1;
			assert_true(i < 64);
			assert_int_equal(atomic_load(lm_name_life(&f.r, i)),
					 LM_NAME_LIFE(LM_LINK_GEN(cur),
						      LM_NAME_LIVE));
			assert_false(atomic_load(&f.r.names[i].next) &
				     LM_LINK_MARK);
			linked++;
		}
	assert_int_equal(linked, live);
	drop_region(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_unit(insert_and_lookup),
		harness_unit(many_distinct_names),
		harness_unit(hierarchical_names),
		harness_unit(name_length_and_bytes),
		harness_unit(unknown_without_create),
		harness_unit(table_full),
		harness_unit(corrupted_buckets),
		harness_unit(concurrent_inserts_agree),
		harness_unit(reclaim_and_reuse),
		harness_unit(churn_keeps_index_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
