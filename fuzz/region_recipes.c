/*
 * region_recipes.c - the fuzz_region findings as recipes.
 *
 *   region_recipes DIR      write one region image per recipe into DIR
 *
 * A raw image that made fuzz_region fail stops reproducing the moment
 * LM_ABI_VERSION changes: lm_region_validate refuses it, correctly. So
 * each finding is also kept as a recipe: a region made with
 * lm_region_init at the tree's own layout, three servers up, the names
 * the harness uses looked up through the public API, then the one
 * corrupted field the finding needs, set by name. fuzz/repro.sh (make
 * fuzz-repro) runs fuzz_region on each image. A recipe that no longer
 * compiles means the field it corrupts was renamed or removed: update
 * or delete it with its entry in fuzz/crashes/README.md. This file is
 * built only by make fuzz-repro, so that never breaks make fuzz.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/region.h"
#include "fuzz_common.h"

struct recipe {
	const char *name;
	const char *what;
	void (*corrupt)(struct lm_region *r, uint32_t lock_a);
};

/* Server 2's clock entries start at INT64_MIN + 3: now - base_ms
 * overflows (shm/clock.h, lm_skew_apply). */
static void skew_base_ms(struct lm_region *r, uint32_t a)
{
	(void)a;
	for (unsigned k = 0; k < 2; k++)
		atomic_store(&r->servers[2]->skew[k].base_ms, INT64_MIN + 3);
}

/* Server 1's clock reads INT64_MAX - 4 at base 0, at a millionth of
 * the true rate: base_srv_ms + scaled (now - base_ms) overflows, or,
 * on a host up for less than ~80 minutes, srv_now + ttl does in lm_grab
 * (shm/grant.c, the lease expiry). */
static void skew_base_srv_ms(struct lm_region *r, uint32_t a)
{
	(void)a;
	for (unsigned k = 0; k < 2; k++) {
		atomic_store(&r->servers[1]->skew[k].base_ms, 0);
		atomic_store(&r->servers[1]->skew[k].base_srv_ms,
			     INT64_MAX - 4);
		atomic_store(&r->servers[1]->skew[k].rate_ppm, 1);
	}
}

/* Server 1's heartbeat is INT64_MIN: now_ms - heartbeat overflows
 * (shm/grant.c, lm_server_usable). */
static void heartbeat_min(struct lm_region *r, uint32_t a)
{
	(void)a;
	atomic_store(&r->servers[1]->heartbeat_ms, INT64_MIN);
}

/* fuzz/a's queue counts one waiter whose turn began at INT64_MIN + 50 ms:
 * now_ns - turn_since_ns overflows (shm/wait_queue.c,
 * lm_may_barge). */
static void barge_turn_since(struct lm_region *r, uint32_t a)
{
	struct lm_queue *q = lm_queue_of(r, a);
	atomic_store(&q->waiters, LM_WAITERS_WORD(0, 1));
	atomic_store(&q->turn_since_ns, INT64_MIN + 50000000);
}

/* fuzz/a's token high-water mark is 2^64-1 on every table: the next
 * grant gets max + 1 = 0 (shm/grant.c, lm_grab). */
static void token_max(struct lm_region *r, uint32_t a)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		atomic_store(&lm_slot_of(r, i, a)->token, UINT64_MAX);
}

static const struct recipe recipes[] = {
	{"skew-base-ms", "server clock base_ms = INT64_MIN + 3", skew_base_ms},
	{"skew-base-srv-ms", "server clock base_srv_ms = INT64_MAX - 4",
	 skew_base_srv_ms},
	{"heartbeat-min", "server heartbeat_ms = INT64_MIN", heartbeat_min},
	{"barge-turn-since", "queue turn_since_ns = INT64_MIN + 50 ms",
	 barge_turn_since},
	{"token-max", "slot token = 2^64-1 on every table", token_max},
};

static void make_image(const char *dir, const struct recipe *rc)
{
	char name[128];
	fz_shm_name(name, sizeof(name), "recipe");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0, "shm_open(%s): %s", name, strerror(errno));
	struct lm_region r;
	struct lm_region_params p = {
		.max_locks = 16, .max_sessions = 4, .max_ttl_ms = 60000,
		.mode = 0600,
	};
	int err = lm_region_init(&r, fd, name, &p);
	if (err != 0)
		shm_unlink(name);
	FZ_CHECK(err == 0, "lm_region_init: %s", strerror(errno));
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		atomic_store(&r.servers[i]->state, LM_SRV_WORD(1, LM_SRV_UP));
		atomic_store(&r.servers[i]->heartbeat_ms, INT64_C(1) << 50);
	}
	lm_client *c;
	lm_lockref ref_a, ref_b;
	err = lm_connect(name, &c);
	if (err == 0) {
		err = lm_lookup(c, "fuzz/a", &ref_a);
		if (err == 0)
			err = lm_lookup(c, "fuzz/b", &ref_b);
		lm_disconnect(c);
	}
	if (err != 0)
		shm_unlink(name);
	FZ_CHECK(err == 0, "setting up %s: %s", rc->name, lm_strerror(err));
	/* lm_lockref's first word is the lock index (client/client.c). */
	rc->corrupt(&r, (uint32_t)ref_a.private_[0]);
	fz_write_seed(dir, rc->name, r.base, r.size);
	shm_unlink(name);
	lm_region_detach(&r);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		for (size_t i = 0; i < sizeof(recipes) / sizeof(recipes[0]); i++)
			fprintf(stderr, "  %-18s %s\n", recipes[i].name,
				recipes[i].what);
		return 64;
	}
	for (size_t i = 0; i < sizeof(recipes) / sizeof(recipes[0]); i++)
		make_image(argv[1], &recipes[i]);
	return 0;
}
