/*
 * name_reclaim.h - reclaiming the names nothing uses.
 *
 * A program that locks per-row or per-request names (/db/orders/row17)
 * must not fill the table. A name is reclaimed when nothing holds it (no
 * owner word of a session on any table), nothing waits for it (its
 * waiter count is zero) and nothing watches it; its slot then serves
 * another name. The steps (shm/layout.h, "Names"), all by the name's
 * one finisher, a process named in the slot (shm/actor.h):
 *
 *   1. Claim the finisher word, then LIVE(g) -> DYING(g), then look
 *      again for users. (An acquire CASes its owner words and then
 *      checks the life; the two orders meet.)
 *   2. Any user: DYING(g) -> LIVE(g). None: fold the name's token marks
 *      into each table's floor, so that a name created later, in any
 *      slot, gets tokens above every token this one issued (any later
 *      majority shares a table with the one that holds its last token),
 *      then DYING(g) -> DEAD(g): committed. From here lookups pass the
 *      name by, and the same name can be created again.
 *   3. Mark the name's next link, unlink it, reset its owner words, and
 *      free the slot: DEAD(g) -> FREE(g); give the finisher word back.
 *
 * Only the finisher commits and frees, so a DYING round cannot be
 * committed by a process that looked at an earlier round, and no stale
 * view can mark a later life's link. Anyone who wants to use a DYING
 * name may call the removal off (DYING -> LIVE), which is always safe.
 * Another process takes the removal over only from a finisher proven
 * gone; a stopped finisher holds back only the reuse of its one slot.
 */
#ifndef LOCKMGR_SHM_NAME_RECLAIM_H
#define LOCKMGR_SHM_NAME_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>

#include "region.h"

enum lm_reclaim {
	LM_RECLAIMED, /* the slot is FREE now */
	LM_IN_USE,    /* something holds, waits on or watches it, or
		       * another process is removing it */
	LM_NOT_LIVE,  /* the slot holds no live name */
};

/*
 * Reclaim the name of lock idx, as the calling process, if nothing uses
 * it. A name whose last holder did not release it carries a mark for
 * its next holder (LM_GRANT_RECOVERED); it is spared unless take_marked.
 */
enum lm_reclaim lm_name_reclaim(struct lm_region *r, uint32_t idx,
				bool take_marked);

/*
 * The name of (idx, gen) is wanted: if it is DYING, call its removal
 * off. True if it is LIVE in that life afterwards.
 */
bool lm_name_keep(struct lm_region *r, uint32_t idx, uint64_t gen);

/*
 * Housekeeping of a name met DYING or DEAD in life gen: if its finisher
 * is gone, take the removal over and see it through. A name whose
 * finisher lives is left to it.
 */
void lm_name_settle(struct lm_region *r, uint32_t idx, uint64_t gen);

/*
 * A server's look at name slot idx: finish what a dead process left
 * half-done. A linked INSERTING name is made LIVE; a name stuck DYING or
 * DEAD is settled; a claim not linked and named by no session's
 * `inserting` is an orphan, freed if the caller saw it so on its last
 * pass too (seen_before). Returns whether it is such an orphan now.
 */
bool lm_name_tidy(struct lm_region *r, uint32_t idx, bool seen_before);

#endif
