/*
 * semaphore.h - counting semaphores on the grant protocol (semaphore.c).
 *
 * A semaphore of N slots named NAME is N + 1 locks:
 *
 *   the gate   the lock named NAME. Never held. Its queue is where the
 *              semaphore's waiters wait (FIFO, wait_queue.c), and its
 *              lm_queue.sem_slots says "a semaphore of N slots" (set by
 *              CAS from 0 by the first semaphore user, reset only by the
 *              name's reclaimer). Each user pins it (pins.h) while it
 *              waits and while it holds a slot, so its slot count cannot
 *              be forgotten (and another count taken) while it is used.
 *   slot k     the lock named NAME "\0" k (k in decimal, 0 .. N-1): a
 *              name no user can type (lock names have no NUL). A slot
 *              is an ordinary X lock, with its own lease and its own
 *              fencing tokens, freed on death or expiry like any grant.
 *              Its table-2 note's `gate` names the gate (lock index + 1,
 *              tagged with the slot name's life: LM_GATE_WORD, read
 *              through lm_slot_gate), stored by each user before it
 *              takes the slot, so that
 *              whoever frees the slot (its holder, the supervisor, a
 *              server expiring its lease: lm_wake_freed) wakes the
 *              gate's queue, and a watch on NAME sees the slot's changes
 *              (lm_lock_changed).
 *
 * A waiter raises the gate's waiter count and then looks at the slots; a
 * freer frees a slot's owner word and then loads the gate's count (both
 * seq_cst): the same Dekker pair as a lock's own queue, so no release is
 * missed.
 *
 * Kinds: a user looks at the gate's owner and group words, CASes
 * sem_slots (or finds its own count there) and then loads them again; a
 * plain grab CASes its owner
 * word (or joins a group) and then loads sem_slots (lm_grab). Both
 * seq_cst: one sees the other, and a name is never a lock and a
 * semaphore at once (LM_R_KIND).
 */
#ifndef LOCKMGR_SHM_SEMAPHORE_H
#define LOCKMGR_SHM_SEMAPHORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grant.h"

/* The most slots a semaphore has (the public LM_SEM_SLOTS_MAX). */
#define LM_SEM_SLOTS_MAX_ 1024u

/* What a slot's name adds to its semaphore's: a NUL and up to 4 digits.
 * A semaphore's own name is therefore at most LM_SEM_NAME_MAX bytes. */
#define LM_SEM_SUFFIX_MAX 5u
#define LM_SEM_NAME_MAX   (LM_NAME_MAX - LM_SEM_SUFFIX_MAX)

/* The name of slot k of semaphore name (len bytes, at most
 * LM_SEM_NAME_MAX) into out (LM_NAME_MAX + 1 bytes); its length. */
size_t lm_sem_slot_name(const char *name, size_t len, uint32_t k, char *out);

/* Is name (len bytes) a slot's? Then its semaphore's name is the first
 * *base_len bytes, and it is slot *k. */
bool lm_sem_slot_parse(const char *name, size_t len, size_t *base_len,
		       uint32_t *k);

/*
 * Make lock gate the gate of a semaphore of `slots` slots, or find it
 * one already: 0, or LM_R_KIND if it is one of another count or is held
 * as a lock (X or counted modes), in which case it leaves sem_slots as
 * it was (but for the narrow window in semaphore.c). The caller pins the
 * gate first.
 */
int lm_sem_gate_claim(struct lm_region *r, uint32_t gate, uint32_t slots);

/*
 * One attempt at a semaphore's slots (an lm_turn's attempt, and the
 * barging try before the queue): try each slot once, in order from 0,
 * and take the first free one. Resolves (creating) each slot's name on
 * first use and names the gate in its note before taking it.
 */
struct lm_sem_try {
	uint32_t gate;          /* the gate's lock index */
	uint32_t slots;         /* N */
	const char *name;       /* the semaphore's name */
	size_t len;
	int64_t ttl_ms;
	uint32_t *idx;          /* slots entries: slot k's lock index + 1,
				 * 0 until resolved */
	uint64_t *gen;          /* slots entries: its name's life */
	uint32_t slot;          /* out, when granted: the slot taken */
	int err;                /* out: an LM_R_* that ended the attempt
				 * with GRAB_DAMAGED (a full name table,
				 * a damaged region) */
};
enum grab_result lm_sem_attempt(struct lm_session_ctx *c, void *arg,
				struct lm_hold *h, struct grab_info *info);

#endif
