/*
 * test_token.c - the grant and fencing-token protocol (client/grant.c),
 * in-process, on a region created here and with no lockmgrd: the test
 * plays the servers by writing their state words itself, so it can take
 * tables down, restart them (new epoch) and let leases run out exactly
 * between two grants.
 *
 * A server counts as live when its state is UP and its heartbeat is
 * recent (lm_server_usable); the heartbeats are set far in the future so
 * that the missing server processes never look hung.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

struct world {
	struct lm_region r; /* the creator's view: we play the servers */
	char name[LM_REGION_NAME_MAX + 2];
};

static void srv_set(struct world *w, unsigned i, uint64_t epoch,
		    uint32_t state)
{
	atomic_store(&w->r.servers[i]->state, LM_SRV_WORD(epoch, state));
}

static uint64_t srv_epoch(struct world *w, unsigned i)
{
	return LM_SRV_EPOCH(atomic_load(&w->r.servers[i]->state));
}

static void srv_down(struct world *w, unsigned i)
{
	srv_set(w, i, srv_epoch(w, i), LM_SRV_DOWN);
}

/* What a supervisor restart publishes: a new epoch (quarantine skipped). */
static void srv_restart(struct world *w, unsigned i)
{
	srv_set(w, i, srv_epoch(w, i) + 1, LM_SRV_UP);
}

static void world_up(struct world *w, int64_t max_ttl_ms)
{
	struct lm_region_params p = {.max_locks = 64,
				     .max_sessions = 16,
				     .max_ttl_ms = max_ttl_ms,
				     .mode = 0600};
	harness_region_name(w->name, sizeof(w->name), "token");
	int fd = shm_open(w->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
	if (fd < 0)
		fail_msg("shm_open(%s): %s", w->name, strerror(errno));
	assert_int_equal(lm_region_init(&w->r, fd, w->name, &p), 0);
	int64_t far = harness_now_ms() + INT64_C(1000000000); /* 11 days */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		atomic_store(&w->r.servers[i]->heartbeat_ms, far);
		srv_set(w, i, 1, LM_SRV_UP);
	}
}

static void world_down(struct world *w)
{
	lm_region_detach(&w->r);
	assert_int_equal(shm_unlink(w->name), 0);
}

/* Clients a case opened, so that a failed case's are closed too. */
static lm_client *open_clients[16];

static lm_client *client(struct world *w)
{
	lm_client *c = NULL;
	int rc = lm_connect(w->name, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d %s", w->name, rc, lm_strerror(rc));
	for (size_t i = 0; i < 16; i++)
		if (open_clients[i] == NULL) {
			open_clients[i] = c;
			break;
		}
	return c;
}

static void bye(lm_client *c)
{
	for (size_t i = 0; i < 16; i++)
		if (open_clients[i] == c)
			open_clients[i] = NULL;
	assert_int_equal(lm_disconnect(c), 0);
}

static int token_teardown(void **state)
{
	for (size_t i = 0; i < 16; i++)
		if (open_clients[i] != NULL) {
			lm_disconnect(open_clients[i]);
			open_clients[i] = NULL;
		}
	return harness_unit_teardown(state);
}

static uint32_t lock_index(struct world *w, const char *name)
{
	int64_t k = lm_name_lookup(&w->r, name, strlen(name), 1);
	assert_true(k >= 0);
	return (uint32_t)k;
}

static uint64_t owner_of(struct world *w, unsigned i, const char *name)
{
	return atomic_load(&lm_slot_of(&w->r, i, lock_index(w, name))->owner);
}

/* Session index + 1 of a client, as owner words carry it. */
static uint32_t sess_of(lm_client *c)
{
	return c->ctx.session + 1;
}

#define ACQ(c, name, ttl, wait, g)                                         \
	do {                                                               \
		int acq_rc_ = lm_acquire((c), (name), (ttl), (wait), (g)); \
		if (acq_rc_ != 0)                                          \
			fail_msg("acquire %s: %d (%s)", (name), acq_rc_,   \
				 lm_strerror(acq_rc_));                    \
	} while (0)

/* Spin (bounded by construction: the target time is fixed) until the
 * monotonic clock reaches t_ms. */
static void wait_until_ms(int64_t t_ms)
{
	HARNESS_WAIT_FOR(harness_now_ms() >= t_ms, t_ms - harness_now_ms() + 1000,
			 "the clock did not reach %lld", (long long)t_ms);
}

/*
 * Take name with a 20 ms lease and wait until it has surely ended: the
 * lease is measured from before acquire returned, so 21 ms after the
 * return it is over whatever the scheduler did meanwhile.
 */
static void acquire_and_expire(lm_client *c, const char *name, lm_grant *g)
{
	ACQ(c, name, 20, 0, g);
	int64_t t_after = harness_now_ms();
	assert_true(g->valid_until_ns <= (t_after + 20) * 1000000);
	wait_until_ms(t_after + 21);
}

/* ---------------------------------------------------------------- */

static void tokens_increase(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	uint64_t prev = 0;
	for (int k = 0; k < 1000; k++) {
		lm_client *c = (k % 3 == 2) ? b : a;
		lm_grant g;
		ACQ(c, "tok", 1000, 0, &g);
		if (g.token <= prev)
			fail_msg("grant %d: token %llu after %llu", k,
				 (unsigned long long)g.token,
				 (unsigned long long)prev);
		assert_int_equal(g.flags, 0); /* every release was clean */
		assert_true(g.valid_until_ns > harness_now_ns());
		prev = g.token;
		assert_int_equal(lm_release(c, &g), 0);
	}
	/* Another lock has its own sequence, also positive. */
	lm_grant g;
	ACQ(a, "other", 1000, 0, &g);
	assert_true(g.token > 0);
	assert_int_equal(lm_release(a, &g), 0);
	bye(a);
	bye(b);
	world_down(&w);
}

/* One table down at every grant, a different one each time, and the
 * table that comes back is restarted (new epoch). */
static void tokens_increase_across_outages(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	uint64_t prev = 0;
	unsigned down = LM_NSERVERS;
	uint32_t rng = 12345;
	for (int k = 0; k < 900; k++) {
		/* Rotate for the first 300, then a seeded random pattern. */
		rng = rng * 1103515245u + 12345u;
		unsigned next = k < 300 ? (unsigned)k % 3 : (rng >> 16) % 4;
		if (next != down) {
			if (down < LM_NSERVERS)
				srv_restart(&w, down);
			if (next < LM_NSERVERS)
				srv_down(&w, next);
			down = next;
		}
		lm_client *c = (rng >> 8) & 1 ? a : b;
		lm_grant g;
		ACQ(c, "outage", 1000, 0, &g);
		if (g.token <= prev)
			fail_msg("grant %d (table %u down): token %llu after "
				 "%llu", k, down, (unsigned long long)g.token,
				 (unsigned long long)prev);
		if (down < LM_NSERVERS && (G_MASK(&g) & (1u << down)))
			fail_msg("grant %d holds table %u, which is down", k,
				 down);
		assert_true(__builtin_popcount(G_MASK(&g)) >= (int)LM_QUORUM);
		prev = g.token;
		assert_int_equal(lm_release(c, &g), 0);
	}
	bye(a);
	bye(b);
	world_down(&w);
}

/*
 * The trap of "the token is the maximum of what the servers granted"
 * (docs/protocol.md, "Why tokens increase"): many grants on {0,1} while
 * 2 is down, then 2 comes back and 0 goes down: the grant on {1,2} must
 * still be larger, and so on around the ring.
 */
static void max_of_grants_trap(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant g;
	uint64_t prev = 0;

	srv_down(&w, 2);
	for (int k = 0; k < 50; k++) {
		ACQ(a, "trap", 1000, 0, &g);
		assert_int_equal(G_MASK(&g), 0x3);
		assert_true(g.token > prev);
		prev = g.token;
		assert_int_equal(lm_release(a, &g), 0);
	}
	/* The one table that never saw those grants joins the quorum. */
	srv_restart(&w, 2);
	srv_down(&w, 0);
	ACQ(b, "trap", 1000, 0, &g);
	assert_int_equal(G_MASK(&g), 0x6);
	if (g.token <= prev)
		fail_msg("grant on {1,2} got token %llu, not above %llu from "
			 "{0,1}", (unsigned long long)g.token,
			 (unsigned long long)prev);
	prev = g.token;
	assert_int_equal(lm_release(b, &g), 0);

	srv_restart(&w, 0);
	srv_down(&w, 1);
	ACQ(a, "trap", 1000, 0, &g);
	assert_int_equal(G_MASK(&g), 0x5);
	assert_true(g.token > prev);
	prev = g.token;
	assert_int_equal(lm_release(a, &g), 0);

	srv_restart(&w, 1);
	srv_down(&w, 2);
	ACQ(b, "trap", 1000, 0, &g);
	assert_int_equal(G_MASK(&g), 0x3);
	assert_true(g.token > prev);
	prev = g.token;
	assert_int_equal(lm_release(b, &g), 0);

	/* All three up again, all restarted. */
	srv_restart(&w, 2);
	srv_restart(&w, 0);
	srv_restart(&w, 1);
	ACQ(a, "trap", 1000, 0, &g);
	assert_int_equal(G_MASK(&g), 0x7);
	assert_true(g.token > prev);
	assert_int_equal(lm_release(a, &g), 0);
	bye(a);
	bye(b);
	world_down(&w);
}

/* One table restarts under a holder of all three: it keeps a majority. */
static void restart_of_one_table_keeps_grant(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant ga, gb;
	ACQ(a, "rs", 10000, 0, &ga);
	assert_int_equal(G_MASK(&ga), 0x7);

	srv_restart(&w, 0); /* a's grant there counts for nobody now */
	assert_int_equal(lm_acquire(b, "rs", 10000, 0, &gb), LM_EBUSY);
	/* b's try took nothing for good. */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (LM_OWNER_SESSION(owner_of(&w, i, "rs")) == sess_of(b))
			fail_msg("a failed try left b's grant on table %u", i);
	/* a still holds a majority: renew works, then a clean release. */
	assert_int_equal(lm_renew(a, &ga, 10000), 0);
	assert_int_equal(lm_acquire(b, "rs", 10000, 0, &gb), LM_EBUSY);
	assert_int_equal(lm_release(a, &ga), 0);
	ACQ(b, "rs", 10000, 0, &gb);
	assert_true(gb.token > ga.token);
	assert_int_equal(lm_release(b, &gb), 0);
	bye(a);
	bye(b);
	world_down(&w);
}

/* Two of the holder's tables restart: its majority is gone, another
 * client gets the lock at once, and the old grant is lost. */
static void restart_of_majority_frees_lock(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w), *c = client(&w);
	lm_grant ga, gb, gc;
	srv_down(&w, 2);
	ACQ(a, "rm", 10000, 0, &ga);
	assert_int_equal(G_MASK(&ga), 0x3);
	srv_restart(&w, 0);
	srv_restart(&w, 1);
	int64_t t0 = harness_now_ms();
	ACQ(b, "rm", 10000, 0, &gb);
	/* Well before a's 10 s lease (slack for a loaded host). */
	assert_true(harness_now_ms() - t0 < 3000);
	assert_true(gb.token > ga.token);
	assert_int_equal(lm_acquire(c, "rm", 10000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_renew(a, &ga, 10000), LM_ELEASELOST);
	/* a's failed renew touched nothing of b's. */
	assert_int_equal(lm_acquire(c, "rm", 10000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_release(b, &gb), 0);
	bye(a);
	bye(b);
	bye(c);
	world_down(&w);
}

/* Two tables down, nobody holding: no quorum, and the one table that
 * was up is given back at once. */
static void no_quorum_grants_nothing(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *b = client(&w);
	lm_grant g;
	srv_down(&w, 1);
	srv_down(&w, 2);
	int64_t t0 = harness_now_ms();
	assert_int_equal(lm_acquire(b, "nq", 1000, 0, &g), LM_ENOQUORUM);
	/* At once: not after the 1 s lease it asked for. */
	assert_true(harness_now_ms() - t0 < 900);
	/* A wait covers a passing loss of quorum: it is waited out, and
	 * then "no quorum" says why nothing was granted. */
	t0 = harness_now_ms();
	assert_int_equal(lm_acquire(b, "nq", 1000, 300, &g), LM_ENOQUORUM);
	assert_true(harness_now_ms() - t0 >= 300);
	assert_int_equal(owner_of(&w, 0, "nq"), LM_OWNER_FREE);
	srv_restart(&w, 1);
	ACQ(b, "nq", 1000, 0, &g);
	assert_int_equal(lm_release(b, &g), 0);
	bye(b);
	world_down(&w);
}

/*
 * Partial grant: a holds {0,1} (2 down); then 1 goes down too. b's
 * acquire can reach only table 0 (held by a): with a single server up
 * there is no quorum, so a try-acquire fails at once with "no quorum",
 * a waiting one at its deadline, and neither grants anything.
 */
static void partial_grant_undone(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant ga, gb;
	srv_down(&w, 2);
	ACQ(a, "pg", 10000, 0, &ga);
	assert_int_equal(G_MASK(&ga), 0x3);
	uint64_t a0 = owner_of(&w, 0, "pg");
	assert_int_equal(a0, G_OWNER(&ga, 0));
	srv_down(&w, 1);

	int64_t t0 = harness_now_ms();
	int rc = lm_acquire(b, "pg", 10000, 0, &gb);
	int64_t took = harness_now_ms() - t0;
	/* Nothing of b's stays anywhere; a's word on table 0 is intact. */
	assert_int_equal(owner_of(&w, 0, "pg"), a0);
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		assert_int_not_equal(LM_OWNER_SESSION(owner_of(&w, i, "pg")),
				     sess_of(b));
	if (rc != LM_ENOQUORUM)
		fail_msg("try-acquire with 1 of 3 servers up returned %d (%s), "
			 "expected LM_ENOQUORUM", rc, lm_strerror(rc));
	/* At once, not after a's 10 s lease (slack for a loaded host). */
	assert_true(took < 2000);

	/* A wait is waited out (the quorum may come back), and then says
	 * why: no quorum. Nothing of b's is left behind either way. */
	t0 = harness_now_ms();
	rc = lm_acquire(b, "pg", 10000, 300, &gb);
	took = harness_now_ms() - t0;
	assert_int_equal(owner_of(&w, 0, "pg"), a0);
	if (rc != LM_ENOQUORUM || took < 300)
		fail_msg("acquire (wait 300 ms) with 1 of 3 servers up "
			 "returned %d (%s) after %lld ms, expected "
			 "LM_ENOQUORUM at its deadline", rc, lm_strerror(rc),
			 (long long)took);
	bye(a);
	bye(b);
	world_down(&w);
}

/* A lease runs out; another client takes over; the old handle can
 * neither release nor renew the new holder's grant. */
static void stale_handle(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w), *c = client(&w);
	lm_grant g1, gb, gc;

	acquire_and_expire(a, "stale", &g1);
	ACQ(b, "stale", 5000, 0, &gb);
	assert_true(gb.flags & LM_GRANT_RECOVERED);
	assert_true(gb.token > g1.token);
	assert_int_equal(lm_release(a, &g1), LM_ELEASELOST);
	/* b still holds it. */
	assert_int_equal(lm_acquire(c, "stale", 5000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_release(b, &gb), 0);

	/* Renew of a taken-over grant. */
	acquire_and_expire(a, "stale", &g1);
	assert_int_equal(g1.flags, 0); /* b released cleanly */
	ACQ(b, "stale", 5000, 0, &gb);
	assert_true(gb.flags & LM_GRANT_RECOVERED);
	assert_int_equal(lm_renew(a, &g1, 500), LM_ELEASELOST);
	assert_int_equal(lm_acquire(c, "stale", 5000, 0, &gc), LM_EBUSY);
	/* The failed renew gave everything back; the holder's release still
	 * hears "lease lost", a second one "not held". */
	assert_int_equal(lm_release(a, &g1), LM_ELEASELOST);
	assert_int_equal(lm_release(a, &g1), LM_ENOTHELD);
	assert_int_equal(lm_acquire(c, "stale", 5000, 0, &gc), LM_EBUSY);
	assert_int_equal(lm_release(b, &gb), 0);

	/* Renew of an expired grant nobody took over is lost too. */
	acquire_and_expire(a, "stale", &g1);
	assert_int_equal(lm_renew(a, &g1, 500), LM_ELEASELOST);
	ACQ(c, "stale", 5000, 0, &gc);
	assert_true(gc.token > g1.token);
	assert_int_equal(lm_release(c, &gc), 0);

	bye(a);
	bye(b);
	bye(c);
	world_down(&w);
}

/*
 * A holder whose lease ran out did not release in time: its release
 * must say so (lockmgr.h: LM_ELEASELOST "the lease expired or was taken
 * over"), whether or not anyone took the lock meanwhile, and the next
 * holder must be told (LM_GRANT_RECOVERED: "the previous holder ... lost
 * its lease without releasing").
 */
static void expired_lease_is_lost(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant g1, gb;

	acquire_and_expire(a, "expired", &g1);
	int rc = lm_release(a, &g1);
	ACQ(b, "expired", 5000, 0, &gb);
	uint32_t flags = gb.flags;
	assert_int_equal(lm_release(b, &gb), 0);
	if (rc != LM_ELEASELOST)
		fail_msg("release after a 20 ms lease ended returned %d (%s), "
			 "expected LM_ELEASELOST", rc, lm_strerror(rc));
	if (!(flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after an expired lease lacks "
			 "LM_GRANT_RECOVERED");

	/* The same after a failed renew. */
	acquire_and_expire(a, "expired2", &g1);
	assert_int_equal(lm_renew(a, &g1, 500), LM_ELEASELOST);
	ACQ(b, "expired2", 5000, 0, &gb);
	flags = gb.flags;
	assert_int_equal(lm_release(b, &gb), 0);
	if (!(flags & LM_GRANT_RECOVERED))
		fail_msg("the grant after a lease lost at renew lacks "
			 "LM_GRANT_RECOVERED");
	bye(a);
	bye(b);
	world_down(&w);
}

static void release_twice(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant g, gb;
	ACQ(a, "twice", 1000, 0, &g);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_release(a, &g), LM_ENOTHELD);
	assert_int_equal(lm_renew(a, &g, 1000), LM_ENOTHELD);
	/* The second release did not free someone else's grant. */
	ACQ(b, "twice", 1000, 0, &gb);
	assert_int_equal(lm_release(a, &g), LM_ENOTHELD);
	lm_grant gx;
	assert_int_equal(lm_acquire(a, "twice", 1000, 0, &gx), LM_EBUSY);
	assert_int_equal(lm_release(b, &gb), 0);
	/* A zeroed grant was never held. */
	memset(&gx, 0, sizeof(gx));
	assert_int_equal(lm_release(a, &gx), LM_ENOTHELD);
	bye(a);
	bye(b);
	world_down(&w);
}

static void renew_extends(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant g, gb;
	int64_t t0 = harness_now_ms();
	ACQ(a, "renew", 500, 0, &g);
	uint64_t token = g.token;
	int64_t prev_valid = g.valid_until_ns;
	int renewals = 0;
	/* Keep renewing (2 s) well past the first 500 ms lease, and at
	 * least 5 times (a loaded host stretches the naps); the first
	 * renewal comes at once, the next ones every 10 ms. */
	while (harness_now_ms() < t0 + 800 || renewals < 5) {
		if (renewals > 0)
			harness_nap_us(10000); /* the work between renewals */
		int64_t asked = harness_now_ns();
		int rc = lm_renew(a, &g, 2000);
		if (rc != 0)
			fail_msg("renew %d at +%lld ms: %d (%s)", renewals,
				 (long long)(harness_now_ms() - t0), rc,
				 lm_strerror(rc));
		assert_true(g.valid_until_ns > prev_valid);
		/* 2 s from the renewal, less the drift bound. */
		assert_true(g.valid_until_ns > asked + 1900000000LL);
		assert_int_equal(g.token, token); /* same grant, same token */
		prev_valid = g.valid_until_ns;
		renewals++;
	}
	assert_true(renewals >= 5);
	assert_int_equal(lm_acquire(b, "renew", 1000, 0, &gb), LM_EBUSY);
	assert_int_equal(lm_renew(a, &g, 0), LM_EBADTTL);
	assert_int_equal(lm_renew(a, &g, 60001), LM_EBADTTL);
	assert_int_equal(lm_release(a, &g), 0);
	ACQ(b, "renew", 1000, 0, &gb);
	assert_int_equal(gb.flags, 0);
	assert_true(gb.token > token);
	assert_int_equal(lm_release(b, &gb), 0);
	bye(a);
	bye(b);
	world_down(&w);
}

/* A session's locks end with it, and the next holder is not told of a
 * crash (disconnect is a clean release). */
static void disconnect_releases(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w), *b = client(&w);
	lm_grant g, gb;
	ACQ(a, "disc", 10000, 0, &g);
	assert_int_equal(lm_acquire(b, "disc", 1000, 0, &gb), LM_EBUSY);
	bye(a);
	ACQ(b, "disc", 1000, 0, &gb);
	assert_true(gb.token > g.token);
	assert_int_equal(lm_release(b, &gb), 0);
	bye(b);
	world_down(&w);
}


/* ---- a stale "woken" mark ---------------------------------------- */

static const char *mark_region;

static void mark_waiter(void *arg)
{
	(void)arg;
	lm_client *c;
	assert_int_equal(lm_connect(mark_region, &c), 0);
	lm_grant g;
	/* Head of the queue behind a 5 s lease: only the holder's release
	 * can wake it before its 3 s wait ends (no servers run here). */
	int64_t t0 = harness_now_ms();
	assert_int_equal(lm_acquire(c, "mark", 1000, 3000, &g), 0);
	/* A last try at the deadline would get it too: it must have come
	 * from the release's wake-up, long before. */
	int64_t took = harness_now_ms() - t0;
	if (took >= 1500)
		fail_msg("the waiter got the lock only after %lld ms: the "
			 "release did not wake it", (long long)took);
	assert_int_equal(lm_release(c, &g), 0);
	assert_int_equal(lm_disconnect(c), 0);
}

/*
 * A "woken" mark naming a session that no longer waits must not swallow
 * the next release's wake-up. lockbench once found locks handing over
 * only at the servers' 20 ms ticks: a waiter marked woken had taken the
 * lock and left the queue just before the mark was set.
 */
static void stale_woken_mark(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	mark_region = w.name;
	lm_client *a = client(&w);
	lm_grant g;
	ACQ(a, "mark", 5000, 0, &g);
	uint32_t k = lock_index(&w, "mark");
	atomic_store(&lm_queue_of(&w.r, k)->woken, (uint16_t)sess_of(a));
	pid_t p = harness_fork(mark_waiter, NULL);
	/* Queued and asleep (its only blocking call once queued is the
	 * futex wait), so that only a wake-up can get it the lock. */
	HARNESS_WAIT_FOR(lm_queue_count(lm_queue_of(&w.r, k)) == 1 &&
				 harness_proc_state(p) == 'S',
			 5000, "the waiter never queued and slept");
	assert_int_equal(lm_release(a, &g), 0);
	harness_expect_exit(p, 10000, 0,
			    "waiter behind a stale mark (it timed out if the "
			    "release did not wake it)");
	bye(a);
	world_down(&w);
}


/* A waiter killed between counting itself and queueing leaves a count
 * with nobody behind it: a try-lock on the free lock must still get it
 * (it once answered "busy" for as long as the count stayed). */
static void phantom_waiter_count(void **state)
{
	(void)state;
	struct world w;
	world_up(&w, 60000);
	lm_client *a = client(&w);
	uint32_t k = lock_index(&w, "phantom");
	atomic_store(&lm_queue_of(&w.r, k)->waiters, 1);
	lm_grant g;
	ACQ(a, "phantom", 1000, 0, &g);
	assert_int_equal(lm_release(a, &g), 0);
	bye(a);
	world_down(&w);
}

int main(void)
{
#undef harness_unit
#define harness_unit(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, harness_unit_setup, token_teardown)
	const struct CMUnitTest tests[] = {
		harness_unit(tokens_increase),
		harness_unit(tokens_increase_across_outages),
		harness_unit(max_of_grants_trap),
		harness_unit(restart_of_one_table_keeps_grant),
		harness_unit(restart_of_majority_frees_lock),
		harness_unit(no_quorum_grants_nothing),
		harness_unit(partial_grant_undone),
		harness_unit(stale_handle),
		harness_unit(expired_lease_is_lost),
		harness_unit(release_twice),
		harness_unit(renew_extends),
		harness_unit(disconnect_releases),
		harness_unit(stale_woken_mark),
		harness_unit(phantom_waiter_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
