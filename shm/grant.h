/*
 * grant.h - the quorum grant protocol on the three tables (grant.c):
 * taking a lock on a majority of tables with a lease and a fencing
 * token, renewing it, giving it back, and freeing a dead session's
 * grants. liblockmgr calls it for its sessions; the supervisor and the
 * servers call the parts that act for a dead or stalled session.
 */
#ifndef LOCKMGR_SHM_GRANT_H
#define LOCKMGR_SHM_GRANT_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "region.h"

/*
 * One session of one process, as the protocol sees it: the region it
 * attached and its own slot there. Private to that process (one thread
 * at a time); the shared part is the slot, `self`.
 */
struct lm_session_ctx {
	struct lm_region region;
	uint32_t session;       /* our slot index */
	uint64_t life;          /* our slot's LIVE word (shm/layout.h) */
	struct lm_session *self;
	uint64_t seq;           /* grant sequence, mirrored in self->grant_seq */
	uint32_t held_used;     /* bit k: self->held[k] is in use */
	uint32_t joins_set;     /* bit k: self->joined[k] may hold records
	                         * (lm_ctx_record_join), so an X-only session
	                         * never reads them */
	bool held_overflow;     /* mirrors self->held_overflow */
	uint32_t iso_gen;       /* the isolation generation self->isolated
	                         * was last refreshed at (lm_ctx_isolation) */
	char deadlock[512];     /* the cycle the last LM_R_DEADLOCK ended */
};

/*
 * The servers this process is isolated from (lockctl server isolate), as
 * of now: self->isolated, refreshed from the region's rules if they
 * changed since the last call. Called before each acquire attempt and
 * renewal; one load when nothing changed.
 */
uint32_t lm_ctx_isolation(struct lm_session_ctx *c);

/* Record in self->joined that hold entry k joined table i's group in
 * generation gen and mode (layout.h, "Join record"). */
void lm_ctx_record_join(struct lm_session_ctx *c, int k, unsigned i,
			uint32_t gen, uint32_t mode);

/* lm_hold.flags */
#define LM_HOLD_RECOVERED 0x1u /* the previous holder did not release */

/* lm_hold.live while the hold is in force */
#define LM_HOLD_LIVE 0x6c6d6731u

/*
 * One grant, as its holder keeps it: what to renew and give back, and
 * what to compare with the tables so that a holder whose lease was lost
 * never touches a newer holder's grant. (Laid out like liblockmgr's
 * public lm_grant, which is one: the library hands the caller's grant
 * to the protocol as a hold, in place, client/internal.h; may_alias
 * tells the compiler that one object is seen through both types.)
 */
struct __attribute__((__may_alias__)) lm_hold {
	uint64_t token;          /* fencing token */
	int64_t valid_until_ns;  /* local monotonic: trusted until then */
	uint32_t flags;          /* LM_HOLD_* */
	uint32_t mode;           /* LM_MODE_* */
	uint32_t lock;           /* lock index */
	uint32_t mask;           /* bit i: held on table i */
	uint64_t owner[LM_NSERVERS]; /* X: our owner word on each table;
				  * counted modes: the group generation
				  * joined there */
	uint64_t state[LM_NSERVERS]; /* the server's state word at grant */
	int32_t held;            /* our entry in self->held[], or -1 */
	uint32_t live;           /* LM_HOLD_LIVE while held */
	uint64_t caller_;        /* the library's own (never read here) */
};

/* Outcome of one attempt on the tables. */
enum grab_result {
	GRAB_GRANTED,
	GRAB_BUSY,      /* held by a live lease somewhere */
	GRAB_NOQUORUM,  /* fewer than LM_QUORUM servers usable */
	GRAB_RETRY,     /* lost tables to a restart or a slow acquire */
	GRAB_STALE,     /* the name's life ended (it was reclaimed) */
	GRAB_DAMAGED,   /* the lock's token mark is at its top: a damaged
			 * region (no grant could get a larger token) */
	GRAB_LOST,      /* upgrade: the grant being converted was lost */
	GRAB_KIND,      /* the name is a semaphore's gate (lm_queue.sem_slots),
			 * never granted as a lock */
};

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

/* Is server i up, fresh and reachable from this session? (*state: its
 * state word, when it is.) */
bool lm_server_usable(const struct lm_session_ctx *c, unsigned i,
		      uint64_t *state, int64_t now_ms);
/* Are fewer than a majority of servers usable by this session now? */
bool lm_quorum_lost(const struct lm_session_ctx *c);

/* Does the grant of owner word `word` (seen on table `table`) still hold
 * a majority of the other tables, in their current lives and with
 * running leases? If not, and it did not release, it is abandoned. */
bool lm_grant_holds_quorum_elsewhere(const struct lm_region *r,
				     uint32_t lock, unsigned table,
				     uint64_t word, int64_t now_ns);

/* One attempt to take lock (name life gen) in `mode` on a majority of
 * tables. */
enum grab_result lm_grab(struct lm_session_ctx *c, uint32_t lock,
			 uint64_t gen, uint32_t mode, int64_t ttl_ms,
			 struct lm_hold *h, struct grab_info *info);
/* 0, or LM_R_LEASELOST (the hold then holds nothing, but stays live so
 * that its release says so too). */
int lm_hold_renew(struct lm_session_ctx *c, struct lm_hold *h,
		  int64_t ttl_ms);
/* 0, or LM_R_LEASELOST if the lease had been lost meanwhile. */
int lm_hold_release(struct lm_session_ctx *c, struct lm_hold *h);

/*
 * One attempt to turn counted hold h into X (convert.c): GRAB_GRANTED (h
 * is X now, with a new token), GRAB_BUSY (others are members too; h is
 * unchanged), GRAB_RETRY, or GRAB_LOST (h lost its majority).
 */
enum grab_result lm_hold_upgrade(struct lm_session_ctx *c, struct lm_hold *h,
				 int64_t ttl_ms, struct grab_info *info);
/* Turn X hold h into counted mode `mode` at once (convert.c): 0, or
 * LM_R_LEASELOST if it no longer held a majority. */
int lm_hold_downgrade(struct lm_session_ctx *c, struct lm_hold *h,
		      uint32_t mode);

/*
 * Raise the token marks of the tables hold h holds to at least token (a
 * tree grant's token, the largest of its holds', written back along its
 * path, so that any later conflicting grant on any node of the path,
 * which shares a table with each of its holds, gets a larger one).
 */
void lm_hold_raise_token(struct lm_session_ctx *c, const struct lm_hold *h,
			 uint64_t token);

/*
 * Make *token hold h's own: lift the marks of h's tables to it from
 * below with a CAS each (strictly, as a counted grant's token), moving
 * *token past any mark found at or above it. A tree path's token is the
 * largest of its holds' tokens, which may be another lock's: claimed so
 * on the node, no two grants of the node share it. False if others kept
 * taking it first (the caller gives the grant up).
 */
bool lm_hold_claim_token(struct lm_session_ctx *c, const struct lm_hold *h,
			 uint64_t *token);

/* Who frees a dead or departing session's grants, and is not a client
 * waiting in a queue itself. */
#define LM_NO_SESSION UINT32_MAX

/* Free every lock session idx holds (its held[] list, or a full scan if
 * it overflowed), CASing its owner words to `freed`; wakes waiters
 * (except self). Returns the number of locks freed. */
unsigned lm_free_session_grants(struct lm_region *r, uint32_t idx,
				uint64_t freed, uint32_t self);

#endif
