/*
 * actor.h - naming a process in shared memory, so that others can tell
 * whether it still lives (the actor word of shm/layout.h).
 *
 * A step only one process may take (finishing the removal of a name) is
 * claimed with the claimer's actor word; another process may take it
 * over only once the claimer is proven gone: no process has its pid and
 * start time any more. A claimer that is merely slow or stopped keeps it.
 * (Processes are compared in the caller's pid namespace: every process
 * of one region must share one, as the supervisor's pidfds need too.)
 */
#ifndef LOCKMGR_SHM_ACTOR_H
#define LOCKMGR_SHM_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

/* The calling process (read from /proc once per process), or 0 while its
 * start time cannot be read: then it must not claim anything. */
uint64_t lm_actor_self(void);

/* Is the actor proven gone? (False when in doubt.) */
bool lm_actor_gone(uint64_t actor);

#endif
