/*
 * deadlock.c - finding a cycle of waits (deadlock.h).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadlock.h"
#include "futex.h"
#include "holders.h"
#include "modes.h"
#include "name_index.h"
#include "session.h"

/* A longest cycle described or verified (a bigger one is still found,
 * and its victim chosen among these). */
#define CYCLE_MAX 64

/* The wait session s is in now, or 0. */
static uint64_t wait_id(const struct lm_region *r, uint32_t s)
{
	const struct lm_session *ss = &r->sessions[s];
	uint32_t on = atomic_load_explicit(&ss->waiting_on,
					   memory_order_acquire);
	if (on == 0 || (on & LM_WAIT_LEAVING) || on > r->max_locks ||
	    !lm_session_is_live(ss))
		return 0;
	return LM_WAIT_ID(on - 1, atomic_load(&ss->wait_ticket));
}

static bool cannot_act(const struct lm_session *ss)
{
	uint32_t iso = atomic_load(&ss->isolated) & ((1u << LM_NSERVERS) - 1);
	return (unsigned)__builtin_popcount(iso) > LM_NSERVERS - LM_QUORUM ||
	       !lm_session_process_running(ss);
}

size_t lm_wait_blockers(const struct lm_region *r, uint32_t s,
			int64_t now_ns, struct lm_blocker *out, size_t n)
{
	uint64_t id = wait_id(r, s);
	if (id == 0)
		return 0;
	uint32_t lock = (uint32_t)(id >> 32) - 1, ticket = (uint32_t)id;
	uint32_t mode = atomic_load(&r->sessions[s].wait_mode);
	size_t k = 0;
	struct lm_holder h[CYCLE_MAX];
	size_t nh = lm_lock_holders(r, lock, now_ns, h, CYCLE_MAX);
	for (size_t j = 0; j < nh && j < CYCLE_MAX && k < n; j++) {
		if (h[j].session == s || lm_modes_compatible(mode, h[j].mode))
			continue;
		out[k++] = (struct lm_blocker){ .session = h[j].session,
						.mode = h[j].mode };
	}
	uint32_t ns = lm_sessions_in_use(r);
	for (uint32_t t = 0; t < ns && k < n; t++) {
		if (t == s)
			continue;
		uint64_t tid = wait_id(r, t);
		if (tid == 0 || (uint32_t)(tid >> 32) != lock + 1 ||
		    (int32_t)((uint32_t)tid - ticket) >= 0)
			continue;
		const struct lm_session *ts = &r->sessions[t];
		uint32_t tm = atomic_load(&ts->wait_mode);
		if (lm_modes_compatible(mode, tm) || cannot_act(ts))
			continue;
		out[k++] = (struct lm_blocker){ .session = t, .mode = tm,
						.queued = true };
	}
	return k;
}

/*
 * Depth-first search for a path from self back to self; the path (self
 * first) into cycle, its length returned, 0 if none.
 */
static size_t find_cycle(const struct lm_region *r, uint32_t self,
			 int64_t now_ns, uint32_t *cycle)
{
	uint32_t ns = lm_sessions_in_use(r);
	uint8_t *seen = calloc(ns ? ns : 1, 1);
	struct frame {
		uint32_t s;
		uint32_t next, count;
		struct lm_blocker edge[CYCLE_MAX];
	} *stack = calloc(CYCLE_MAX, sizeof(*stack));
	size_t len = 0;
	if (seen == NULL || stack == NULL)
		goto out;
	size_t depth = 1;
	stack[0].s = self;
	stack[0].count = (uint32_t)lm_wait_blockers(r, self, now_ns,
						    stack[0].edge, CYCLE_MAX);
	seen[self] = 1;
	while (depth > 0) {
		struct frame *f = &stack[depth - 1];
		if (f->next == f->count) {
			depth--;
			continue;
		}
		uint32_t t = f->edge[f->next++].session;
		if (t == self) {
			for (size_t k = 0; k < depth; k++)
				cycle[k] = stack[k].s;
			len = depth;
			break;
		}
		if (t >= ns || seen[t] || depth == CYCLE_MAX)
			continue;
		seen[t] = 1;
		struct frame *g = &stack[depth++];
		g->s = t;
		g->next = 0;
		g->count = (uint32_t)lm_wait_blockers(r, t, now_ns, g->edge,
						      CYCLE_MAX);
	}
out:
	free(seen);
	free(stack);
	return len;
}

/* Does a still wait for b (the edge of the first look)? How, in *why. */
static bool still_waits_for(const struct lm_region *r, uint32_t a, uint32_t b,
			    int64_t now_ns, struct lm_blocker *why)
{
	struct lm_blocker e[CYCLE_MAX];
	size_t n = lm_wait_blockers(r, a, now_ns, e, CYCLE_MAX);
	for (size_t k = 0; k < n; k++)
		if (e[k].session == b) {
			*why = e[k];
			return true;
		}
	return false;
}

static void describe(const struct lm_region *r, const uint32_t *cycle,
		     size_t len, const struct lm_blocker *why, char *msg,
		     size_t msgn)
{
	size_t at = 0;
	if (msgn == 0)
		return;
	msg[0] = '\0';
	for (size_t k = 0; k < len && at < msgn; k++) {
		const struct lm_session *ss = &r->sessions[cycle[k]];
		uint32_t lock = (uint32_t)(wait_id(r, cycle[k]) >> 32) - 1;
		char name[LM_NAME_MAX + 1];
		if (lm_name_copy(r, lock, name, NULL) == 0)
			snprintf(name, sizeof(name), "#%u", lock);
		uint32_t next = cycle[(k + 1) % len];
		int m = snprintf(
			msg + at, msgn - at,
			"%ssession %u (pid %d) waits for %s on '%s', %s by "
			"session %u",
			k ? "; " : "", cycle[k],
			(int)LM_SESS_PID(atomic_load(&ss->life)),
			lm_mode_name(atomic_load(&ss->wait_mode)), name,
			why[k].queued ? "queued ahead of it" : "held",
			next);
		if (m < 0)
			break;
		at += (size_t)m;
		if (!why[k].queued && at < msgn) {
			m = snprintf(msg + at, msgn - at, " in %s",
				     lm_mode_name(why[k].mode));
			if (m > 0)
				at += (size_t)m;
		}
	}
}

enum lm_deadlock lm_deadlock_search(struct lm_region *r, uint32_t self,
				    int64_t now_ns, bool describe_only,
				    char *msg, size_t msgn)
{
	uint32_t cycle[CYCLE_MAX];
	size_t len = find_cycle(r, self, now_ns, cycle);
	if (len == 0)
		return LM_DEADLOCK_NONE;
	uint64_t ids[CYCLE_MAX];
	for (size_t k = 0; k < len; k++)
		ids[k] = wait_id(r, cycle[k]);
	/* The second look: the same waits, the same edges. */
	struct lm_blocker why[CYCLE_MAX];
	for (size_t k = 0; k < len; k++) {
		uint32_t next = cycle[(k + 1) % len];
		if (ids[k] == 0 ||
		    !still_waits_for(r, cycle[k], next, now_ns, &why[k]))
			return LM_DEADLOCK_NONE;
	}
	for (size_t k = 0; k < len; k++)
		if (wait_id(r, cycle[k]) != ids[k])
			return LM_DEADLOCK_NONE;
	describe(r, cycle, len, why, msg, msgn);
	/* A cycle with a victim chosen already (by another member's
	 * search, maybe for another cycle through it) ends when that wait
	 * does: choosing again would end two waits for one cycle. And a
	 * victim looking to say why marks nobody. */
	if (describe_only)
		return LM_DEADLOCK_NONE;
	for (size_t k = 0; k < len; k++)
		if (atomic_load(&r->sessions[cycle[k]].victim) == ids[k])
			return LM_DEADLOCK_NONE;
	/* The victim: the youngest wait among those that look for
	 * deadlocks (we do, so there is one). */
	size_t v = len;
	int64_t youngest = 0;
	for (size_t k = 0; k < len; k++) {
		const struct lm_session *ss = &r->sessions[cycle[k]];
		if (!(atomic_load(&ss->wait_flags) & LM_WAITF_DEADLOCK))
			continue;
		int64_t since = atomic_load(&ss->wait_since_ns);
		if (v == len || since > youngest ||
		    (since == youngest && cycle[k] > cycle[v])) {
			v = k;
			youngest = since;
		}
	}
	if (cycle[v] == self)
		return LM_DEADLOCK_SELF;
	struct lm_session *vs = &r->sessions[cycle[v]];
	atomic_store(&vs->victim, ids[v]);
	lm_futex_bump_wake(&vs->wake, 1);
	return LM_DEADLOCK_OTHER;
}
