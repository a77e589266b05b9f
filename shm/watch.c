/*
 * watch.c - telling watchers that a lock changed (watch.h).
 */
#include "watch.h"

#include <limits.h>

#include "futex.h"
#include "test_hook.h"

/* Version v is ours: say what it was, and wake the watchers. */
static void note(struct lm_region *r, uint32_t lock, uint32_t v,
		 uint32_t what, uint32_t mode, int32_t pid, uint64_t token)
{
	struct lm_lock_note *n = &lm_slot_of(r, 2, lock)->note;
	uint64_t tag = (uint64_t)v << 32;
	atomic_store_explicit(&n->token_lo, tag | (uint32_t)token,
			      memory_order_relaxed);
	atomic_store_explicit(&n->token_hi, tag | (token >> 32),
			      memory_order_relaxed);
	LM_HOOK("watch.noting");
	atomic_store_explicit(&n->event, LM_NOTE_WORD(v, what, mode, pid),
			      memory_order_release);
	lm_futex_wake(&lm_queue_of(r, lock)->version, INT_MAX);
}

/* Bump lock's version, write its note and wake its watchers, if it is
 * watched. */
static void bump(struct lm_region *r, uint32_t lock, uint32_t what,
		 uint32_t mode, int32_t pid, uint64_t token)
{
	struct lm_queue *q = lm_queue_of(r, lock);
	/* seq_cst, after the change: the other half of the watcher's
	 * flag store then read. The common case ends here. */
	if (atomic_load(&q->watched) == 0)
		return;
	uint32_t v = atomic_fetch_add(&q->version, 1) + 1;
	LM_HOOK("watch.bumped");
	note(r, lock, v, what, mode, pid, token);
}

/* A semaphore slot's gate (semaphore.h), or UINT32_MAX. The gate was
 * stored before the slot was taken; the note's line is the one the
 * changer's table-2 owner word is on. */
static uint32_t gate_of(const struct lm_region *r, uint32_t lock)
{
	uint32_t gate = lm_slot_gate(r, lock);
	return gate != 0 ? gate - 1 : UINT32_MAX;
}

void lm_lock_expired(struct lm_region *r, uint32_t lock, uint32_t mode,
		     int32_t pid, uint64_t token)
{
	if (lock >= r->max_locks)
		return;
	/* A watch on a semaphore's name sees each slot's end; each table's
	 * free of it may count there (a change too many, never one
	 * missed: the dedupe below is by pid and token, which two slots
	 * may share). */
	uint32_t gate = gate_of(r, lock);
	if (gate != UINT32_MAX)
		bump(r, gate, LM_CHANGE_EXPIRED, mode, pid, token);
	struct lm_queue *q = lm_queue_of(r, lock);
	if (atomic_load(&q->watched) == 0) /* seq_cst, as above */
		return;
	uint32_t v = atomic_load(&q->version);
	for (;;) {
		uint32_t what, m;
		int32_t p;
		uint64_t t;
		/* Waits a moment for the note of v, if its changer is
		 * between its bump and its note. */
		lm_lock_note_read(r, lock, v, &what, &m, &p, &t);
		if (what == LM_CHANGE_EXPIRED && m == mode && p == pid &&
		    t == token)
			return; /* another server announced this very end */
		if (atomic_compare_exchange_strong(&q->version, &v, v + 1))
			break;
		/* Someone changed the lock meanwhile: look at their note. */
	}
	note(r, lock, v + 1, LM_CHANGE_EXPIRED, mode, pid, token);
}

void lm_lock_changed(struct lm_region *r, uint32_t lock, uint32_t what,
		     uint32_t mode, int32_t pid, uint64_t token)
{
	if (lock >= r->max_locks)
		return;
	bump(r, lock, what, mode, pid, token);
	/* A semaphore's slot: a watch on the semaphore's name (its gate)
	 * sees each change of each slot. */
	uint32_t gate = gate_of(r, lock);
	if (gate != UINT32_MAX)
		bump(r, gate, what, mode, pid, token);
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
		if ((int32_t)(LM_NOTE_VERSION(e) - version) > 0)
			break; /* a later change wrote over it */
		if (LM_NOTE_VERSION(e) != version)
			continue;
		/* The event's changer wrote both halves before it; a
		 * crossing changer tags its own with its own version. */
		uint64_t lo = atomic_load_explicit(&n->token_lo,
						   memory_order_relaxed);
		uint64_t hi = atomic_load_explicit(&n->token_hi,
						   memory_order_relaxed);
		if ((uint32_t)(lo >> 32) != version ||
		    (uint32_t)(hi >> 32) != version)
			break;
		*what = LM_NOTE_WHAT(e);
		*mode = LM_NOTE_MODE(e);
		*pid = LM_NOTE_PID(e);
		*token = (hi << 32) | (uint32_t)lo;
		return;
	}
	*what = LM_CHANGE_OTHER;
	*mode = 0;
	*pid = 0;
	*token = 0;
}
