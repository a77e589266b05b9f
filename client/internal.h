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

struct lm_client {
	struct lm_session_ctx ctx;
};

/* Where an lm_grant keeps its lm_hold (client/client.c copies it in and
 * out around each protocol call). */
#define G_LOCK(g)     ((g)->private_u32_[0])
#define G_MASK(g)     ((g)->private_u32_[1])  /* tables held */
#define G_LIVE(g)     ((g)->private_[7])      /* LM_HOLD_LIVE while held */
#define G_OWNER(g, i) ((g)->private_[(i)])    /* owner word per table */
#define G_STATE(g, i) ((g)->private_[3 + (i)])/* server word at grant */
#define G_HELD(g)     ((g)->private_[6])      /* self->held index + 1 */

static inline void lm_hold_from_grant(struct lm_hold *h, const lm_grant *g)
{
	h->token = g->token;
	h->valid_until_ns = g->valid_until_ns;
	h->flags = g->flags;
	h->mode = g->mode;
	h->lock = G_LOCK(g);
	h->mask = G_MASK(g);
	h->live = (uint32_t)G_LIVE(g);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		h->owner[i] = G_OWNER(g, i);
		h->state[i] = G_STATE(g, i);
	}
	h->held = (int32_t)G_HELD(g) - 1;
}

static inline void lm_hold_to_grant(lm_grant *g, const struct lm_hold *h)
{
	g->token = h->token;
	g->valid_until_ns = h->valid_until_ns;
	g->flags = h->flags;
	g->mode = h->mode;
	G_LOCK(g) = h->lock;
	G_MASK(g) = h->mask;
	G_LIVE(g) = h->live;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		G_OWNER(g, i) = h->owner[i];
		G_STATE(g, i) = h->state[i];
	}
	G_HELD(g) = (uint64_t)(int64_t)(h->held + 1);
}

#endif
