/*
 * watch.c - telling watchers that a lock changed (watch.h).
 */
#include "watch.h"

#include <limits.h>

#include "futex.h"
#include "test_hook.h"

static _Atomic uint64_t *change_word(const struct lm_region *r, uint32_t lock)
{
	return &lm_queue_of(r, lock)->change.word;
}

_Atomic uint32_t *lm_lock_version_futex(const struct lm_region *r,
					uint32_t lock)
{
	return &lm_queue_of(r, lock)->change.version;
}

/* Version v is ours: say what it was, and wake the watchers. */
static void note(struct lm_region *r, uint32_t lock, uint32_t v,
		 uint32_t what, uint32_t mode, int32_t pid, uint64_t token)
{
	/* A changer that stood still between its bump and here writes no
	 * note over a later change's: only the note of the lock's current
	 * version is read, and its own changer writes it. (One that moves
	 * on right after this load can still be overwritten; readers then
	 * find the halves' tags wrong, or an older version, and say only
	 * "changed".) */
	if (LM_CHG_VERSION(atomic_load(change_word(r, lock))) == v) {
		struct lm_lock_note *n = &lm_slot_of(r, 2, lock)->note;
		uint64_t tag = (uint64_t)v << 32;
		atomic_store_explicit(&n->token_lo, tag | (uint32_t)token,
				      memory_order_relaxed);
		atomic_store_explicit(&n->token_hi, tag | (token >> 32),
				      memory_order_relaxed);
		LM_HOOK("watch.noting");
		atomic_store_explicit(&n->event,
				      LM_NOTE_WORD(v, what, mode, pid),
				      memory_order_release);
	}
	lm_futex_wake(lm_lock_version_futex(r, lock), INT_MAX);
}

/* Bump lock's version, write its note and wake its watchers, if it is
 * watched. The tag goes: this change is not a lease end. */
static void bump(struct lm_region *r, uint32_t lock, uint32_t what,
		 uint32_t mode, int32_t pid, uint64_t token)
{
	_Atomic uint64_t *word = change_word(r, lock);
	/* seq_cst, after the change: the other half of the watcher's
	 * fetch_or then read. The common case ends here. */
	uint64_t w = atomic_load(word);
	if ((w & LM_CHG_WATCHED) == 0)
		return;
	/* A CAS, not an add: the version wraps without carrying into the
	 * watched bit, which it keeps as it finds it. */
	uint64_t next;
	do
		next = LM_CHG_WORD(0, w & LM_CHG_WATCHED,
				   LM_CHG_VERSION(w) + 1);
	while (!atomic_compare_exchange_weak(word, &w, next));
	LM_HOOK("watch.bumped");
	note(r, lock, LM_CHG_VERSION(next), what, mode, pid, token);
}

/* A semaphore slot's gate (semaphore.h), or UINT32_MAX. The gate was
 * stored before the slot was taken; the note's line is the one the
 * changer's table-2 owner word is on. */
static uint32_t gate_of(const struct lm_region *r, uint32_t lock)
{
	uint32_t gate = lm_slot_gate(r, lock);
	return gate != 0 ? gate - 1 : UINT32_MAX;
}

/* splitmix64's finaliser: every input bit moves about half the output. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

/* One end's identity from its kind and fields, each mixed in whole. */
static uint64_t end_id(uint64_t kind, uint64_t a, uint64_t b, uint64_t c)
{
	return mix(mix(mix(mix(kind) ^ a) ^ b) ^ c);
}

uint64_t lm_end_of_grant(uint64_t owner)
{
	return end_id(1, owner & UINT64_C(0xffffffffffff), 0, 0);
}

uint64_t lm_end_of_group(uint64_t token, uint32_t gen, int64_t expiry_ms)
{
	return end_id(2, token, gen, (uint64_t)expiry_ms);
}

uint64_t lm_end_of_member(int32_t pid, uint64_t token)
{
	return end_id(3, token, (uint32_t)pid, 0);
}

/* 31 bits, never 0. */
static uint32_t expiry_tag(uint64_t end)
{
	return (uint32_t)(end % 0x7fffffffu) + 1u;
}

void lm_lock_expired(struct lm_region *r, uint32_t lock, uint32_t mode,
		     int32_t pid, uint64_t token, uint64_t end)
{
	if (lock >= r->max_locks)
		return;
	/* A watch on a semaphore's name sees each slot's end; each table's
	 * free of it may count there (a change too many, never one
	 * missed: slots' tokens are not the gate's to tag). */
	uint32_t gate = gate_of(r, lock);
	if (gate != UINT32_MAX)
		bump(r, gate, LM_CHANGE_EXPIRED, mode, pid, token);
	_Atomic uint64_t *word = change_word(r, lock);
	uint64_t w = atomic_load(word); /* seq_cst, as in bump */
	uint32_t tag = expiry_tag(end);
	uint64_t next;
	do {
		/* (Also after a failed CAS: not watched again once the
		 * name's reclaimer has cleared it.) */
		if ((w & LM_CHG_WATCHED) == 0)
			return;
		if (LM_CHG_TAG(w) == tag) {
			/* The lock's last change is this very end, counted
			 * by the CAS below in another server (or in the
			 * holder's own renew or late release). Its maker
			 * may stand still, or be dead, between that CAS and
			 * its wake: wake the watchers for it (at worst they
			 * look once more at a version they have seen). */
			lm_futex_wake(lm_lock_version_futex(r, lock), INT_MAX);
			return;
		}
		next = LM_CHG_WORD(tag, LM_CHG_WATCHED, LM_CHG_VERSION(w) + 1);
	} while (!atomic_compare_exchange_weak(word, &w, next));
	LM_HOOK("watch.expiry_bumped");
	note(r, lock, LM_CHG_VERSION(next), LM_CHANGE_EXPIRED, mode, pid,
	     token);
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
	_Atomic uint64_t *word = change_word(r, lock);
	if ((atomic_load(word) & LM_CHG_WATCHED) == 0)
		atomic_fetch_or(word, LM_CHG_WATCHED);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

void lm_lock_unwatch(struct lm_region *r, uint32_t lock)
{
	atomic_fetch_and(change_word(r, lock), UINT64_C(0xffffffff));
}

uint32_t lm_lock_version(const struct lm_region *r, uint32_t lock)
{
	return LM_CHG_VERSION(atomic_load(change_word(r, lock)));
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
