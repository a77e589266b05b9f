/*
 * name_reclaim.h - reclaiming the names nothing uses.
 *
 * A program that locks per-row or per-request names (/db/orders/row17)
 * must not fill the table. A name is reclaimed when nothing holds it (no
 * owner word of a session on any table), nothing waits for it (its
 * waiter count is zero) and nothing watches it; its slot then serves
 * another name. The steps (shm/layout.h, "Names"):
 *
 *   1. Claim the name's finisher word, then LIVE(g) -> DYING(g), then
 *      look again for users. (An acquire CASes its owner words and then
 *      checks the life; the two orders meet.)
 *   2. Any user: DYING(g) -> LIVE(g). None: fold the name's token marks
 *      into each table's floor, so that a name created later, in any
 *      slot, gets tokens above every token this one issued (any later
 *      majority shares a table with the one that holds its last token),
 *      then DYING(g) -> DEAD(g): committed. From here lookups pass the
 *      name by, and the same name can be created again.
 *   3. The finisher marks the name's next link, unlinks it, resets its
 *      owner words, and frees the slot: DEAD(g) -> FREE(g).
 *
 * Step 2 may be taken by anyone who meets the name DYING (its finisher
 * may be stopped); step 3 only by the finisher, or by whoever takes over
 * from a finisher proven dead (shm/actor.h). A stopped finisher holds
 * back only the reuse of its one slot.
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
 * Reclaim the name of lock idx, as actor `me` (shm/actor.h), if nothing
 * uses it. A name whose last holder did not release it carries a mark
 * for its next holder (LM_GRANT_RECOVERED); it is spared unless
 * take_marked.
 */
enum lm_reclaim lm_name_reclaim(struct lm_region *r, uint32_t idx,
				bool take_marked, uint64_t me);

/*
 * Move the name of (idx, gen), met DYING or DEAD, along: decide a DYING
 * one, and finish a DEAD one if `me` is (or may take over from) its
 * finisher. It may still be DEAD on return (its finisher lives).
 */
void lm_name_settle(struct lm_region *r, uint32_t idx, uint64_t gen,
		    uint64_t me);

/*
 * A server's look at name slot idx: finish what a dead process left
 * half-done. A linked INSERTING name is made LIVE; a name stuck DYING or
 * DEAD is settled; a claim not linked and named by no session's
 * `inserting` is an orphan, freed if the caller saw it so on its last
 * pass too (seen_before). Returns whether it is such an orphan now.
 */
bool lm_name_tidy(struct lm_region *r, uint32_t idx, bool seen_before,
		  uint64_t me);

#endif
