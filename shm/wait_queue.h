/*
 * wait_queue.h - FIFO waiting for a lock, one futex per waiter
 * (wait_queue.c): a session waits its turn here, and whoever frees a lock
 * (its holder, the supervisor after a death, a server expiring a lease)
 * wakes the next in line.
 */
#ifndef LOCKMGR_SHM_WAIT_QUEUE_H
#define LOCKMGR_SHM_WAIT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "grant.h"

/* An acquire found its name reclaimed: resolve it again (never seen by
 * callers of the public API). */
#define LM_STALE_NAME 1

/*
 * Wait in lock's queue until granted (0), the deadline passes
 * (LM_R_TIMEDOUT, or LM_R_NOQUORUM if that is why), the name is
 * reclaimed (LM_STALE_NAME), its token mark is at the top
 * (LM_R_INCOMPAT), or the wait is chosen to end a cycle of waits
 * (LM_R_DEADLOCK, the cycle described in c->deadlock). Once it has
 * waited deadlock_ms (< 0: never), and every deadlock_ms after that, it
 * searches for such a cycle (shm/deadlock.h). With upgrade, h is a
 * counted hold of lock that waits to become X (convert.c), and stays as
 * it was unless that happens (or LM_R_LEASELOST: it was lost).
 */
int lm_wait_for_grant(struct lm_session_ctx *c, uint32_t lock, uint64_t gen,
		      uint32_t mode, int64_t ttl_ms, int64_t deadline_ns,
		      int64_t deadlock_ms, struct lm_hold *h, bool upgrade);
/*
 * What a waiter does when its turn comes (lm_wait_turn): one attempt, with
 * lm_grab's results (GRAB_DAMAGED ends the wait with LM_R_INCOMPAT, which
 * an attempt may use for an error of its own that it keeps in arg).
 * pass_on: after a grant, wake the next waiter too: LM_PASS_COMPATIBLE if
 * it waits for a mode compatible with ours (a run of readers),
 * LM_PASS_ALWAYS if it may get another of what we got (a semaphore's
 * next free slot).
 */
#define LM_PASS_NONE       0
#define LM_PASS_COMPATIBLE 1
#define LM_PASS_ALWAYS     2
struct lm_turn {
	enum grab_result (*attempt)(struct lm_session_ctx *c, void *arg,
				    struct lm_hold *h,
				    struct grab_info *info);
	void *arg;
	int pass_on;
};

/* lm_wait_for_grant's queue, with what the head tries in place of a
 * grab of lock itself: the waiter queues on lock (name life gen) for
 * mode, and turn's attempt says how each try went. */
int lm_wait_turn(struct lm_session_ctx *c, uint32_t lock, uint64_t gen,
		 uint32_t mode, const struct lm_turn *turn,
		 int64_t deadline_ns, int64_t deadlock_ms, struct lm_hold *h);

/* May a newcomer go straight to the tables (bounded barging)? */
bool lm_may_barge(const struct lm_region *r, uint32_t lock);

/* Wake the head waiter of lock, unless it is session `self` (the caller,
 * which is awake already); self = LM_NO_SESSION from non-clients. */
void lm_wake_next(struct lm_region *r, uint32_t lock, uint32_t self);
/* Lock was just freed (an owner word given back, a group left or
 * ended): wake the head of its queue if anyone waits there, and the head
 * of its gate's queue if it is a semaphore's slot (lm_lock_note.gate).
 * Every path that frees a lock calls this. */
void lm_wake_freed(struct lm_region *r, uint32_t lock, uint32_t self);
/* Wake the first waiter of lock that can act, skipping a stopped head
 * (the server's remedy for a free lock whose queue does not move). */
void lm_wake_stalled(struct lm_region *r, uint32_t lock);

/* One waiter fewer (never below zero: a count a death left too high is
 * repaired by the servers, one left too low would hide waiters). */
void lm_queue_leave(struct lm_queue *q);
/* Leave lock's queue, if self is queued for it: the three steps of
 * LM_WAIT_LEAVING (shm/layout.h). */
void lm_queue_depart(struct lm_session *self, struct lm_queue *q,
		     uint32_t lock);
/* Waiters counted in q (a hint: see LM_WAITERS_WORD in shm/layout.h). */
uint32_t lm_queue_count(const struct lm_queue *q);
/* Lower lock's waiter count to the sessions really queued, if it is
 * higher (a server's repair; safe against waiters joining meanwhile). */
void lm_queue_recount(struct lm_region *r, uint32_t lock);
/* Is any session waiting for lock? (A scan of the sessions.) */
bool lm_queue_has_waiter(struct lm_region *r, uint32_t lock);

#endif
