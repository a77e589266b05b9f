/*
 * internal.h - liblockmgr's private types, shared by its files.
 */
#ifndef LOCKMGR_CLIENT_INTERNAL_H
#define LOCKMGR_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../shm/layout.h"
#include "../shm/region.h"
#include "lockmgr.h"

struct lm_client {
	struct lm_region region;
	uint32_t session;       /* our slot index */
	uint64_t life;          /* our slot's LIVE word (shm/layout.h) */
	struct lm_session *self;
	uint64_t seq;           /* grant sequence, mirrored in self->grant_seq */
	uint32_t held_used;     /* bit k: self->held[k] is in use */
	bool held_overflow;     /* mirrors self->held_overflow */
	uint32_t iso_gen;       /* the isolation generation self->isolated
	                         * was last refreshed at (lm_client_isolation) */
};

/*
 * The servers this process is isolated from (lockctl server isolate), as
 * of now: self->isolated, refreshed from the region's rules if they
 * changed since the last call. Called before each acquire attempt and
 * renewal; one load when nothing changed.
 */
uint32_t lm_client_isolation(struct lm_client *c);

/* A heartbeat older than this marks a server as hung (out of quorum). */
#define LM_HEARTBEAT_STALE_MS 300
/* How often servers publish their heartbeat. */
#define LM_HEARTBEAT_MS 20

/*
 * How long ago (ms) a server's heartbeat stamped hb_ms was, at now_ms
 * (never negative: a stamp ahead of us was written a moment after we
 * read the clock). INT64_MAX for a negative stamp, which no server
 * writes (a damaged region): never fresh. No subtraction overflows.
 * (A damaged stamp far ahead reads as fresh: that costs nothing but
 * the detection of a hung server, which is never on the lock path.)
 */
static inline int64_t lm_heartbeat_age_ms(int64_t hb_ms, int64_t now_ms)
{
	if (hb_ms < 0)
		return INT64_MAX;
	return hb_ms >= now_ms ? 0 : now_ms - hb_ms;
}

static inline bool lm_heartbeat_fresh(int64_t hb_ms, int64_t now_ms)
{
	return lm_heartbeat_age_ms(hb_ms, now_ms) <= LM_HEARTBEAT_STALE_MS;
}

/* The private part of lm_grant. */
#define G_LOCK(g)     ((g)->private_u32_[0])
#define G_MASK(g)     ((g)->private_u32_[1])  /* tables held */
#define G_LIVE(g)     ((g)->private_u32_[2])  /* LM_GRANT_LIVE while held */
#define G_OWNER(g, i) ((g)->private_[(i)])    /* owner word per table */
#define G_STATE(g, i) ((g)->private_[3 + (i)])/* server word at grant */
#define G_HELD(g)     ((g)->private_[6])      /* self->held index + 1 */
#define LM_GRANT_LIVE 0x6c6d6731u

/* Outcome of one attempt on the tables (client/grant.c). */
enum grab_result {
	GRAB_GRANTED,
	GRAB_BUSY,      /* held by a live lease somewhere */
	GRAB_NOQUORUM,  /* fewer than LM_QUORUM servers usable */
	GRAB_RETRY,     /* lost tables to a restart or a slow acquire */
	GRAB_STALE,     /* the name's life ended (it was reclaimed) */
	GRAB_DAMAGED,   /* the lock's token mark is at its top: a damaged
			 * region (no grant could get a larger token) */
};

/* An acquire found its name reclaimed: resolve it again (never seen by
 * callers of the public API). */
#define LM_STALE_NAME 1

struct grab_info {
	int64_t busy_until_ns;  /* when the blocking lease ends (local) */
	uint32_t holder_session;/* session index + 1 of the blocker, or 0 */
	int usable;             /* servers that were up and reachable */
};

/* Drift bound: a lease of ttl_ms is trusted for ttl_ms - drift: 1% for
 * clocks that run fast, plus 2 ms for the whole milliseconds that server
 * clocks and lease words are kept in. */
static inline int64_t lm_drift_ms(int64_t ttl_ms)
{
	return 2 + ttl_ms / 100;
}

bool lm_server_usable(const struct lm_client *c, unsigned i,
		      uint64_t *state, int64_t now_ms);
/*
 * The latest local time (ns) at which a lease on table `table` ends,
 * among the grants made in lives of its server other than skip_epoch
 * (UINT64_MAX: all of them); now_ns if none is running.
 */
int64_t lm_leases_end_ns(const struct lm_region *r, unsigned table,
			 uint64_t skip_epoch, int64_t now_ns);
/* Does the grant of owner word `word` (seen on table `table`) still hold
 * a majority of the other tables, in their current lives and with
 * running leases? If not, and it did not release, it is abandoned. */
bool lm_grant_holds_quorum_elsewhere(const struct lm_region *r,
				     uint32_t lock, unsigned table,
				     uint64_t word, int64_t now_ns);
enum grab_result lm_grab(struct lm_client *c, uint32_t lock, uint64_t gen,
			 int64_t ttl_ms, lm_grant *g, struct grab_info *info);
int lm_grant_renew(struct lm_client *c, lm_grant *g, int64_t ttl_ms);
int lm_grant_release(struct lm_client *c, lm_grant *g);
/* Wake the head waiter of lock, unless it is session `self` (the caller,
 * which is awake already); self = LM_NO_SESSION from non-clients. */
#define LM_NO_SESSION UINT32_MAX
void lm_wake_next(struct lm_region *r, uint32_t lock, uint32_t self);
/* Wake the first waiter of lock that can act, skipping a stopped head
 * (the server's remedy for a free lock whose queue does not move). */
void lm_wake_stalled(struct lm_region *r, uint32_t lock);
int lm_wait_for_grant(struct lm_client *c, uint32_t lock, uint64_t gen,
		      int64_t ttl_ms, int64_t deadline_ns, lm_grant *g);
/* Is lock's name still LIVE in life gen? */
static inline bool lm_name_is(const struct lm_region *r, uint32_t lock,
			      uint64_t gen)
{
	return atomic_load(lm_name_life(r, lock)) ==
	       LM_NAME_LIFE(gen, LM_NAME_LIVE);
}
/* Are fewer than a majority of servers usable by this client now? */
bool lm_quorum_lost(const struct lm_client *c);
bool lm_may_barge(const struct lm_region *r, uint32_t lock);
/* One waiter fewer (never below zero: a count a death left too high is
 * repaired by the servers, one left too low would hide waiters). */
void lm_queue_leave(struct lm_queue *q);
/* Leave lock's queue, if self is queued for it: the three steps of
 * LM_WAIT_LEAVING (shm/layout.h). */
void lm_queue_depart(struct lm_session *self, struct lm_queue *q,
		     uint32_t lock);
/* Waiters counted in q (a hint: see LM_WAITERS_WORD in shm/layout.h). */
uint32_t lm_queue_count(const struct lm_queue *q);
/* Lower lock's waiter count to the sessions really queued, if it is
 * higher (a server's repair; safe against waiters joining meanwhile). */
void lm_queue_recount(struct lm_region *r, uint32_t lock);
/* Is any session waiting for lock? (A scan of the sessions.) */
bool lm_queue_has_waiter(struct lm_region *r, uint32_t lock);
/* Free every lock session idx holds (its held[] list, or a full scan if
 * it overflowed), CASing its owner words to `freed`; wakes waiters
 * (except self). Returns the number of locks freed. */
unsigned lm_free_session_grants(struct lm_region *r, uint32_t idx,
				uint64_t freed, uint32_t self);

#endif
