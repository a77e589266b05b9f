/*
 * deadlock.h - finding a cycle of waits (PostgreSQL's model: a waiter
 * that has waited its deadlock timeout searches the waits-for graph).
 *
 * The graph: a waiting session waits for every session that holds its
 * lock in a conflicting mode (holders.h) and for every runnable waiter
 * ahead of it in the lock's queue that wants a conflicting mode (the
 * queue lets nobody overtake those). A cycle through the searcher is
 * looked for twice, and counts only if the second look finds the same
 * waits (the same wait ids) still there: a waiting session can do
 * nothing else, so a wait seen twice lasted in between, and holders
 * blocked in a wait can release nothing. Victim policy: the youngest
 * wait of the cycle (latest wait_since_ns, then highest session index)
 * among those that look for deadlocks. Every searcher of one cycle
 * computes the same victim, and a search that finds a wait of its cycle
 * marked already chooses nobody, so a cycle ends one wait, not several
 * (two cycles through one wait end with that one wait).
 */
#ifndef LOCKMGR_SHM_DEADLOCK_H
#define LOCKMGR_SHM_DEADLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

/* One session a waiter waits for. */
struct lm_blocker {
	uint32_t session;
	uint32_t mode;   /* the mode it holds, or is queued for */
	bool queued;     /* a waiter ahead in the queue, not a holder */
};

/*
 * The sessions session s waits for now (none if it does not wait), at
 * most n into out; returns how many were written.
 */
size_t lm_wait_blockers(const struct lm_region *r, uint32_t s,
			int64_t now_ns, struct lm_blocker *out, size_t n);

enum lm_deadlock {
	LM_DEADLOCK_NONE,  /* no cycle through the searcher */
	LM_DEADLOCK_SELF,  /* a cycle; the searcher's wait is the victim */
	LM_DEADLOCK_OTHER, /* a cycle; its victim was marked and woken */
};

/*
 * Search from session self (which is waiting). On a cycle, describe it
 * in msg (one line naming each wait and what it waits for). A cycle one
 * of whose waits is marked as a victim already is left to end with it
 * (LM_DEADLOCK_NONE). describe_only: find and describe, mark nobody (a
 * victim saying why).
 */
enum lm_deadlock lm_deadlock_search(struct lm_region *r, uint32_t self,
				    int64_t now_ns, bool describe_only,
				    char *msg, size_t msgn);

#endif
