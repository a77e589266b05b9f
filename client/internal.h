/*
 * internal.h - liblockmgr's private types, shared by its files.
 *
 * The protocol on the tables lives beside the region (shm/grant.h,
 * shm/wait_queue.h); the library is a session of it, and keeps each
 * grant's record in the private part of the caller's lm_grant.
 */
#ifndef LOCKMGR_CLIENT_INTERNAL_H
#define LOCKMGR_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../shm/grant.h"
#include "../shm/layout.h"
#include "../shm/region.h"
#include "backend.h"
#include "lockmgr.h"

struct lm_path;
struct lm_etcd;

struct lm_client {
	struct lm_session_ctx ctx;
	bool tree;              /* the region's names form a tree */
	struct lm_path *paths;  /* tree grants not yet released (freed at
				 * lm_disconnect if the caller never does) */
	struct lm_watch *watches; /* open watches (closed at lm_disconnect:
				 * a watch's thread must not outlive the
				 * mapping it waits in) */
	/* Another backend than shared memory (backend.h): its calls and
	 * state. NULL for the shared-memory service, whose state is the
	 * fields above. */
	const struct lm_backend_ops *be;
	struct lm_etcd *etcd;
	/* Per pin entry of our session (shm/pins.h): the tag of the
	 * semaphore grant that holds it, 0 if none does. The grant keeps
	 * the tag too (G_SEM_PINTAG), and only a grant whose tag is the
	 * entry's is live: a caller's stale copy of an earlier grant that
	 * used the same entry (released since, its entry taken by a later
	 * grant) would otherwise give back the later grant's pin and
	 * held[] record. Private to this client (one thread at a time,
	 * like the rest of it). */
	uint32_t sem_pin_tag[LM_PINS_MAX];
	uint32_t sem_tag_next;  /* the last tag handed out */
	/* Names lately acquired by name (lm_acquire, lm_acquire_ex), as
	 * the lockrefs they resolved to, in a small direct-mapped cache
	 * (client.c, cached_ref): a hit skips the name's check, hash and
	 * bucket chain walk, as lm_acquire_ref does. A name reclaimed
	 * since is found stale by the grab (the life it resolved has
	 * ended) and resolved again in place, as any lockref is. An
	 * entry with REF_LEN 0 holds no name. Private to this client. */
	lm_lockref name_cache[8];
};

/* Close every watch c still has open (client/watch.c). */
void lm_watch_close_all(lm_client *c);

/*
 * A tree grant's ancestors (client/tree.c): the intention holds on each
 * ancestor of the name, top-down, kept beside the caller's lm_grant,
 * which holds the name itself.
 */
struct lm_path {
	struct lm_path *next, *prev; /* in lm_client.paths */
	uint32_t n;
	struct lm_hold anc[];
};

/*
 * An lm_grant is an lm_hold: the same 96 bytes, the public fields where
 * the hold has them (checked below), handed to the protocol in place
 * (struct lm_hold is may_alias, shm/grant.h: no copy on the fast path).
 * The private part, as tests and fuzzers read it: */
#define G_LOCK(g)     ((g)->private_u32_[0])
#define G_MASK(g)     ((g)->private_u32_[1])  /* tables held */
#define G_OWNER(g, i) ((g)->private_[(i)])    /* owner word per table */
#define G_STATE(g, i) ((g)->private_[3 + (i)])/* server word at grant */
#define G_PATH(g)     ((g)->private_[7])      /* a tree grant's struct
					       * lm_path, else 0 */

/* The private part of an lm_lockref (client.c fills it in): the name's
 * lock index and life, a check word, and the name's length. */
#define REF_IDX(ref)   ((ref)->private_[0])
#define REF_GEN(ref)   ((ref)->private_[1])
#define REF_CHECK(ref) ((ref)->private_[2])
#define REF_LEN(ref)   ((ref)->private_[3])

_Static_assert(sizeof(struct lm_hold) == sizeof(lm_grant), "hold = grant");
_Static_assert(offsetof(struct lm_hold, token) == offsetof(lm_grant, token) &&
		       offsetof(struct lm_hold, valid_until_ns) ==
			       offsetof(lm_grant, valid_until_ns) &&
		       offsetof(struct lm_hold, flags) ==
			       offsetof(lm_grant, flags) &&
		       offsetof(struct lm_hold, mode) ==
			       offsetof(lm_grant, mode) &&
		       offsetof(struct lm_hold, lock) ==
			       offsetof(lm_grant, private_u32_) &&
		       offsetof(struct lm_hold, owner) ==
			       offsetof(lm_grant, private_) &&
		       offsetof(struct lm_hold, caller_) ==
			       offsetof(lm_grant, private_[7]),
	       "lm_grant's fields where lm_hold has them");

static inline struct lm_hold *grant_hold(lm_grant *g)
{
	return (struct lm_hold *)(void *)g;
}

/* Copies, for holds kept apart from a grant (a tree path's ancestors). */
static inline void lm_hold_from_grant(struct lm_hold *h, const lm_grant *g)
{
	memcpy(h, g, sizeof(*h));
}

static inline void lm_hold_to_grant(lm_grant *g, const struct lm_hold *h)
{
	memcpy(g, h, sizeof(*h));
}

static inline uint32_t grant_live(const lm_grant *g)
{
	return ((const struct lm_hold *)(const void *)g)->live;
}

/* A grant that holds nothing (a failed acquire leaves that): not live,
 * and no tree path. */
static inline void grant_clear(lm_grant *g)
{
	grant_hold(g)->live = 0;
	grant_hold(g)->caller_ = 0;
}

/*
 * A semaphore grant keeps its slot and its pin of the gate in G_PATH's
 * place, tagged by bit 0 (a tree grant's path pointer is 8-aligned):
 *
 *   bit  0       G_SEM_TAG
 *   bits 11..1   the slot
 *   bits 16..12  the session's pin entry of the gate + 1 (0: none)
 *   bits 31..17  0
 *   bits 63..32  the pin's tag (lm_client.sem_pin_tag): this grant's
 *                own, never 0
 */
#define G_SEM_TAG UINT64_C(1)
#define G_SEM_WORD(slot, pin, tag)                                       \
	(G_SEM_TAG | ((uint64_t)(slot) << 1) |                           \
	 ((uint64_t)((pin) + 1) << 12) | ((uint64_t)(uint32_t)(tag) << 32))
#define G_IS_SEM(g)     ((G_PATH(g) & G_SEM_TAG) != 0)
#define G_SEM_SLOT(g)   ((uint32_t)((G_PATH(g) >> 1) & 0x7ffu))
#define G_SEM_PIN(g)    ((int)((G_PATH(g) >> 12) & 0x1fu) - 1)
#define G_SEM_PINTAG(g) ((uint32_t)(G_PATH(g) >> 32))

static inline struct lm_path *grant_path(const lm_grant *g)
{
	if (G_IS_SEM(g))
		return NULL;
	return (struct lm_path *)(uintptr_t)G_PATH(g);
}

/* client.c: acquire lock ref in mode (wait and deadlock as in
 * lm_acquire_opts); tree.c calls it for each node of a path. */
int lm_acquire_node(lm_client *c, lm_lockref *ref, uint32_t mode,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		    lm_grant *g);

/* client.c: LM_EBADTTL unless ttl_ms is a lease this region allows;
 * "no quorum" as a caller is told it (LM_ENOSUPERVISOR once the service
 * has stopped); the deadline (local ns) of a wait of wait_ms (0 for a
 * try, INT64_MAX for no limit). */
int lm_client_check_ttl(const lm_client *c, int64_t ttl_ms);
int lm_client_no_quorum(const lm_client *c);
int64_t lm_client_deadline(int64_t wait_ms);

/* semaphore.c: is live semaphore grant g this client's current grant
 * of its pin (not a stale copy of an earlier one)? */
bool lm_sem_current(const lm_client *c, const lm_grant *g);
/* semaphore.c: a semaphore grant was released (or lost): give its pin
 * of the gate back. */
void lm_sem_released(lm_client *c, lm_grant *g);

/* tree.c: a name's ancestors in a tree region. */
int lm_tree_acquire(lm_client *c, const char *name, uint32_t mode,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		    lm_grant *g);
/* Renew / release / convert the ancestors of tree grant g (after, resp.
 * before, its own node): 0 or the first error. */
int lm_tree_renew(lm_client *c, lm_grant *g, int64_t ttl_ms);
int lm_tree_release(lm_client *c, lm_grant *g);
/* Free what tree grants the caller never released (at disconnect). */
void lm_tree_forget_all(lm_client *c);

#endif
