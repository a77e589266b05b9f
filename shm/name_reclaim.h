/*
 * name_reclaim.h - reclaiming the names nothing uses.
 *
 * A program that locks per-row or per-request names (/db/orders/row17)
 * must not fill the table. A name is reclaimed when nothing holds it (no
 * owner word of a session on any table), nothing waits for it (its
 * waiter count is zero) and nothing watches it; its slot then serves
 * another name. The steps (shm/layout.h, "Names"):
 *
 *   1. LIVE(g) -> DYING(g), then look again for users. Any: back to
 *      LIVE(g). None: DYING(g) -> DEAD(g), committed. (An acquire CASes
 *      its owner words and then checks the life; the two orders meet.)
 *   2. Fold the name's token marks into each table's floor, so that a
 *      name created later, in any slot, gets tokens above every token
 *      this one issued: any later majority shares a table with the one
 *      that holds its last token. Done before the name leaves its chain,
 *      that is before the same name can be created again.
 *   3. Unlink it from its chain.
 *   4. Reset its owner words, then DEAD(g) -> FREE(g).
 *
 * Every step is safe to repeat, so whoever finds a name stuck in DYING or
 * DEAD (its reclaimer died or was stopped) sees it through.
 */
#ifndef LOCKMGR_SHM_NAME_RECLAIM_H
#define LOCKMGR_SHM_NAME_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>

#include "region.h"

enum lm_reclaim {
	LM_RECLAIMED, /* the slot is FREE now */
	LM_IN_USE,    /* something holds, waits on or watches it */
	LM_NOT_LIVE,  /* the slot holds no live name */
};

/*
 * Reclaim the name of lock idx if nothing uses it. A name whose last
 * holder did not release it carries a mark for its next holder
 * (LM_GRANT_RECOVERED); it is spared unless take_marked.
 */
enum lm_reclaim lm_name_reclaim(struct lm_region *r, uint32_t idx,
				bool take_marked);

/* See the name of (idx, gen), caught DYING or DEAD, through to LIVE or
 * FREE. */
void lm_name_settle(struct lm_region *r, uint32_t idx, uint32_t gen);

/*
 * A server's look at name slot idx: finish what a dead process left
 * half-done. A linked INSERTING name is made LIVE; a name stuck DYING or
 * DEAD is seen through; a claim not linked and named by no session's
 * `inserting` is an orphan, freed if the caller saw it so on its last
 * pass too (seen_before). Returns whether it is such an orphan now.
 */
bool lm_name_tidy(struct lm_region *r, uint32_t idx, bool seen_before);

#endif
