/*
 * watch.c - telling watchers that a lock changed (watch.h).
 */
#include "watch.h"

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <time.h>

#include "clock.h"
#include "futex.h"
#include "heartbeat.h"
#include "test_hook.h"

_Static_assert(2 * LM_EXPIRY_NOTE_WAIT_MS + LM_HEARTBEAT_MS <
		       LM_HEARTBEAT_STALE_MS,
	       "a server waiting for an expiry's note must not look hung");

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

/* One look at the note of version (see below): NOTE_FOUND fills *n. */
enum note_look { NOTE_FOUND, NOTE_PENDING, NOTE_PAST };

struct note_of {
	uint32_t what, mode;
	int32_t pid;
	uint64_t token;
};

static enum note_look look_at_note(const struct lm_region *r, uint32_t lock,
				   uint32_t version, struct note_of *n)
{
	const struct lm_lock_note *ln = &lm_slot_of(r, 2, lock)->note;
	uint64_t e = atomic_load_explicit(&ln->event, memory_order_acquire);
	if ((int32_t)(LM_NOTE_VERSION(e) - version) > 0)
		return NOTE_PAST; /* a later change wrote over it */
	if (LM_NOTE_VERSION(e) != version)
		return NOTE_PENDING; /* its changer has not written it yet */
	/* The event's changer wrote both halves before it; a crossing
	 * changer tags its own with its own version. */
	uint64_t lo = atomic_load_explicit(&ln->token_lo, memory_order_relaxed);
	uint64_t hi = atomic_load_explicit(&ln->token_hi, memory_order_relaxed);
	if ((uint32_t)(lo >> 32) != version || (uint32_t)(hi >> 32) != version)
		return NOTE_PAST;
	n->what = LM_NOTE_WHAT(e);
	n->mode = LM_NOTE_MODE(e);
	n->pid = LM_NOTE_PID(e);
	n->token = (hi << 32) | (uint32_t)lo;
	return NOTE_FOUND;
}

/* Let the changer of a bumped version that has not written its note yet
 * run: spin a little, then give up the CPU (on a loaded host it may be
 * waiting for ours), then sleep in short steps. */
static void wait_a_moment(unsigned round)
{
	if (round < 64)
		return;
	if (round < 128) {
		sched_yield();
		return;
	}
	struct timespec ts = {.tv_nsec = 100 * 1000};
	nanosleep(&ts, NULL);
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
	const int64_t wait_ns = LM_EXPIRY_NOTE_WAIT_MS * INT64_C(1000000);
	int64_t first_wait_ns = -1, give_up_ns = 0;
	uint32_t waited_for = 0;
	bool unchecked = false;
	for (unsigned round = 0;; round++) {
		struct note_of n;
		enum note_look l = look_at_note(r, lock, v, &n);
		if (l == NOTE_PENDING) {
			/* v's changer is between its bump and its note: it
			 * may be a server that announced this very end (then
			 * we must not count it again), so wait for its note;
			 * but not for ever for a changer that stands still or
			 * died there (one wait per changer, two in all). */
			int64_t now = lm_now_ns();
			if (first_wait_ns < 0)
				first_wait_ns = now;
			if (give_up_ns == 0 || waited_for != v) {
				waited_for = v;
				give_up_ns = now + wait_ns;
				if (give_up_ns > first_wait_ns + 2 * wait_ns)
					give_up_ns = first_wait_ns + 2 * wait_ns;
				round = 0;
			}
			if (now < give_up_ns) {
				wait_a_moment(round);
				v = atomic_load(&q->version);
				continue;
			}
		}
		if (l == NOTE_FOUND && n.what == LM_CHANGE_EXPIRED &&
		    n.mode == mode && n.pid == pid && n.token == token)
			return; /* another server announced this very end */
		if (atomic_compare_exchange_strong(&q->version, &v, v + 1)) {
			unchecked = l == NOTE_PENDING;
			break;
		}
		/* Someone changed the lock meanwhile: look at their note. */
	}
	LM_HOOK("watch.expiry_bumped");
	note(r, lock, v + 1, LM_CHANGE_EXPIRED, mode, pid, token);
	/* Announced without the note we waited for: if its changer was an
	 * announcer of this end, the end now counts twice (watchers read
	 * one change too many, never one too few). */
	if (unchecked)
		atomic_fetch_add(&r->hdr->expiries_unchecked, 1);
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
	/* The changer bumps, then writes its note: give it a moment (a
	 * reader only describes; the version already counted). */
	struct note_of n = {.what = LM_CHANGE_OTHER};
	for (int spin = 0; spin < 1000; spin++) {
		enum note_look l = look_at_note(r, lock, version, &n);
		if (l == NOTE_FOUND)
			break;
		if (l == NOTE_PAST) {
			n = (struct note_of){.what = LM_CHANGE_OTHER};
			break;
		}
	}
	*what = n.what;
	*mode = n.mode;
	*pid = n.pid;
	*token = n.token;
}
