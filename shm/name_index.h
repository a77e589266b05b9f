/*
 * name_index.h - the lock-name index: name -> lock index, with names
 * reclaimed and their slots reused.
 *
 * A hash table of bucket chains threaded through the name slots (the
 * encoding and the rules are in shm/layout.h, "Names"). Lookups are
 * lock-free reads that help unlink names being removed; an insert links
 * a filled-in slot at the head of its chain by CAS; a name is removed
 * (shm/name_reclaim.c) by marking its next link and unlinking it.
 * Nothing here takes a lock a dying process could leave held.
 *
 * A lock is named by (index, generation): the index says which slots of
 * the tables hold its state, the generation which life of that index is
 * meant. Whoever acts on a lock checks, after acting, that its name is
 * still LIVE in that generation (shm/layout.h).
 */
#ifndef LOCKMGR_SHM_NAME_INDEX_H
#define LOCKMGR_SHM_NAME_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

/* 0 if name is a valid lock name (1..255 bytes, no NUL), else LM_R_BADNAME. */
int lm_name_check(const char *name, size_t len);

uint32_t lm_name_hash(const char *name, size_t len);

/*
 * Find the live entry of name, or insert one if create is set. Returns
 * the lock index (>= 0) and its generation in *gen, or LM_R_BADNAME,
 * LM_R_TABLEFULL (no slot free, none reclaimable), LM_R_NOTHELD (absent
 * and !create), LM_R_INCOMPAT (the index is damaged). An insert names the
 * slot it claims in self->inserting, so that a server can free the claim
 * of an inserter that died half-way; self is NULL outside a session
 * (the supervisor, tests), whose claims a server frees only after seeing
 * them unchanged for a whole sweep.
 */
int64_t lm_name_resolve(struct lm_region *r, const char *name, size_t len,
			bool create, struct lm_session *self, uint64_t *gen);

/* lm_name_resolve without the generation, for callers outside a
 * session (the supervisor, tests). */
int64_t lm_name_lookup(struct lm_region *r, const char *name, size_t len,
		       int create);

/*
 * Copy the name of lock idx into out (LM_NAME_MAX + 1 bytes, NUL-ended)
 * if it is live, with its generation in *gen (may be NULL). Returns the
 * length, or 0 if the slot holds no live name.
 */
uint32_t lm_name_copy(const struct lm_region *r, uint32_t idx, char *out,
		      uint64_t *gen);

/* Is the name of (idx, gen) reachable in its chain? */
bool lm_name_linked(struct lm_region *r, uint32_t idx, uint64_t gen);

/*
 * Unlink the name of (idx, gen), whose next link its finisher has marked
 * (helping anyone else's removal on the way). Safe to repeat, and from
 * several processes at once. True once it is out of its chain; false if
 * that could not be made sure (not marked, or a damaged index): then
 * the slot must not be reused.
 */
bool lm_name_unlink(struct lm_region *r, uint32_t idx, uint64_t gen);

/* Is lock's name still LIVE in life gen? */
static inline bool lm_name_is(const struct lm_region *r, uint32_t lock,
			      uint64_t gen)
{
	return atomic_load(lm_name_life(r, lock)) ==
	       LM_NAME_LIFE(gen, LM_NAME_LIVE);
}

#endif
