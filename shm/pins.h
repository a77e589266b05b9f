/*
 * pins.h - keeping a name from reclaim without holding it (pins.c).
 *
 * A name is reclaimed once nothing holds, waits on or pins it
 * (name_reclaim.h). A watcher holds nothing, and a semaphore's gate is
 * never held itself, yet both need their name to stay the same lock: a
 * watch on a reclaimed name would watch whatever name moved into the
 * slot, and a gate reclaimed under its slots' holders would forget its
 * slot count. So each session lists the names it pins
 * (lm_session.pins); a reclaimer marks a name DYING and then scans every
 * session's pins, and a pinner stores its pin and then checks the life
 * (both seq_cst: one sees the other, as an acquire and a reclaimer do).
 * A dead session's pins go with its slot (lm_session_free).
 */
#ifndef LOCKMGR_SHM_PINS_H
#define LOCKMGR_SHM_PINS_H

#include <stdbool.h>
#include <stdint.h>

#include "grant.h"

/* Pin lock (name life gen) for session c: the entry of c->self->pins
 * used (>= 0), LM_PIN_FULL when every entry is taken, or LM_PIN_STALE
 * when the name's life ended (resolve it again). */
#define LM_PIN_FULL  (-1)
#define LM_PIN_STALE (-2)
int lm_pin(struct lm_session_ctx *c, uint32_t lock, uint64_t gen);

/* Give pin entry k back. */
void lm_unpin(struct lm_session_ctx *c, int k);

/* Does any session that is not FREE pin lock? (The reclaimer's scan.) */
bool lm_pinned(const struct lm_region *r, uint32_t lock);

#endif
