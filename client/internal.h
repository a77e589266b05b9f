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
#include <stdint.h>

#include "../shm/grant.h"
#include "../shm/layout.h"
#include "../shm/region.h"
#include "lockmgr.h"

struct lm_path;

struct lm_client {
	struct lm_session_ctx ctx;
	bool tree;              /* the region's names form a tree */
	struct lm_path *paths;  /* tree grants not yet released (freed at
				 * lm_disconnect if the caller never does) */
};

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

/* Where an lm_grant keeps its lm_hold (client/client.c copies it in and
 * out around each protocol call). */
#define G_LOCK(g)     ((g)->private_u32_[0])
#define G_MASK(g)     ((g)->private_u32_[1])  /* tables held */
#define G_OWNER(g, i) ((g)->private_[(i)])    /* owner word per table */
#define G_STATE(g, i) ((g)->private_[3 + (i)])/* server word at grant */
#define G_HELD_LIVE(g) ((g)->private_[6])     /* self->held index + 1 in
					       * the low half; LM_HOLD_LIVE
					       * in the high half while held */
#define G_PATH(g)     ((g)->private_[7])      /* a tree grant's struct
					       * lm_path, else 0 */

static inline uint32_t grant_live(const lm_grant *g)
{
	return (uint32_t)(G_HELD_LIVE(g) >> 32);
}

static inline struct lm_path *grant_path(const lm_grant *g)
{
	return (struct lm_path *)(uintptr_t)G_PATH(g);
}

static inline void lm_hold_from_grant(struct lm_hold *h, const lm_grant *g)
{
	h->token = g->token;
	h->valid_until_ns = g->valid_until_ns;
	h->flags = g->flags;
	h->mode = g->mode;
	h->lock = G_LOCK(g);
	h->mask = G_MASK(g);
	h->live = grant_live(g);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		h->owner[i] = G_OWNER(g, i);
		h->state[i] = G_STATE(g, i);
	}
	h->held = (int32_t)(uint32_t)G_HELD_LIVE(g) - 1;
}

/* Copies everything but the path (G_PATH), which only tree.c sets. */
static inline void lm_hold_to_grant(lm_grant *g, const struct lm_hold *h)
{
	g->token = h->token;
	g->valid_until_ns = h->valid_until_ns;
	g->flags = h->flags;
	g->mode = h->mode;
	G_LOCK(g) = h->lock;
	G_MASK(g) = h->mask;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		G_OWNER(g, i) = h->owner[i];
		G_STATE(g, i) = h->state[i];
	}
	G_HELD_LIVE(g) = ((uint64_t)h->live << 32) |
			 (uint32_t)(h->held + 1);
}

/* client.c: acquire lock ref in mode (wait and deadlock as in
 * lm_acquire_opts); tree.c calls it for each node of a path. */
int lm_acquire_node(lm_client *c, lm_lockref *ref, uint32_t mode,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		    lm_grant *g);

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
