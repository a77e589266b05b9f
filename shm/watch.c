/*
 * watch.c - telling watchers that a lock changed (watch.h).
 */
#include "watch.h"

#include <limits.h>

#include "futex.h"

/* Bump lock's version, write its note and wake its watchers, if it is
 * watched. */
static void announce(struct lm_region *r, uint32_t lock, uint32_t what,
		     uint32_t mode, int32_t pid, uint64_t token)
{
	struct lm_queue *q = lm_queue_of(r, lock);
	/* seq_cst, after the change: the other half of the watcher's
	 * flag store then read. The common case ends here. */
	if (atomic_load(&q->watched) == 0)
		return;
	uint32_t v = atomic_fetch_add(&q->version, 1) + 1;
	struct lm_lock_note *n = &lm_slot_of(r, 2, lock)->note;
	atomic_store_explicit(&n->token, token, memory_order_relaxed);
	atomic_store_explicit(&n->event, LM_NOTE_WORD(v, what, mode, pid),
			      memory_order_release);
	lm_futex_wake(&q->version, INT_MAX);
}

void lm_lock_changed(struct lm_region *r, uint32_t lock, uint32_t what,
		     uint32_t mode, int32_t pid, uint64_t token)
{
	if (lock >= r->max_locks)
		return;
	announce(r, lock, what, mode, pid, token);
	/* A semaphore's slot: a watch on the semaphore's name (its gate)
	 * sees each change of each slot. The gate was stored before the
	 * slot was taken (semaphore.h); the note's line is the one the
	 * changer's table-2 owner word is on. */
	uint32_t gate = atomic_load_explicit(&lm_slot_of(r, 2, lock)->note.gate,
					     memory_order_relaxed);
	if (gate != 0 && gate <= r->max_locks && gate - 1 != lock)
		announce(r, gate - 1, what, mode, pid, token);
}

void lm_lock_watch(struct lm_region *r, uint32_t lock)
{
	struct lm_queue *q = lm_queue_of(r, lock);
	if (atomic_load(&q->watched) == 0)
		atomic_store(&q->watched, 1);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

uint32_t lm_lock_version(const struct lm_region *r, uint32_t lock)
{
	return atomic_load(&lm_queue_of(r, lock)->version);
}

void lm_lock_note_read(const struct lm_region *r, uint32_t lock,
		       uint32_t version, uint32_t *what, uint32_t *mode,
		       int32_t *pid, uint64_t *token)
{
	struct lm_lock_note *n = &lm_slot_of(r, 2, lock)->note;
	/* The changer bumps, then writes its note: give it a moment. */
	for (int spin = 0; spin < 1000; spin++) {
		uint64_t e = atomic_load_explicit(&n->event,
						  memory_order_acquire);
		uint64_t t = atomic_load_explicit(&n->token,
						  memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (LM_NOTE_VERSION(e) == version &&
		    atomic_load_explicit(&n->event, memory_order_relaxed) ==
			    e) {
			*what = LM_NOTE_WHAT(e);
			*mode = LM_NOTE_MODE(e);
			*pid = LM_NOTE_PID(e);
			*token = t;
			return;
		}
		if ((int32_t)(LM_NOTE_VERSION(e) - version) > 0)
			break; /* a later change wrote over it */
	}
	*what = LM_CHANGE_OTHER;
	*mode = 0;
	*pid = 0;
	*token = 0;
}
