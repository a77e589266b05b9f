/*
 * actor.h - naming a process in shared memory, so that others can tell
 * whether it still lives (the LM_ACTOR_* words of shm/layout.h).
 *
 * A step only one process may take (finishing the removal of a name) is
 * claimed with the claimer's actor word; another process may take it
 * over only once the claimer is proven gone: its session slot in another
 * life, its server table in another epoch, or its pid owned by another
 * process. A claimer that is merely slow or stopped keeps it.
 */
#ifndef LOCKMGR_SHM_ACTOR_H
#define LOCKMGR_SHM_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "region.h"

/* The session whose slot is self (LIVE). */
uint64_t lm_actor_session(const struct lm_region *r,
			  const struct lm_session *self);

/* Server `index` in its life `epoch`. */
uint64_t lm_actor_server(unsigned index, uint64_t epoch);

/* The calling process, by pid and start time (no session of its own:
 * the supervisor, lockctl, tests). */
uint64_t lm_actor_process(void);

/* Is the actor proven gone? (False when in doubt.) */
bool lm_actor_gone(const struct lm_region *r, uint64_t actor);

#endif
