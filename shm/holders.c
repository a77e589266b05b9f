/*
 * holders.c - who holds a lock (holders.h).
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"
#include "group.h"
#include "holders.h"
#include "session.h"

static void add(struct lm_holder *out, size_t n, size_t *k, uint32_t s,
		uint32_t mode)
{
	if (*k < n)
		out[*k] = (struct lm_holder){ .session = s, .mode = mode };
	(*k)++;
}

/* The X holder: the session whose owner word is on a majority of the
 * tables, in their current lives, under its running lease. */
static bool x_holder(const struct lm_region *r, uint32_t lock,
		     int64_t now_ns, uint32_t *session, unsigned *mask)
{
	unsigned on[LM_NSERVERS] = {0};
	uint32_t seen[LM_NSERVERS];
	unsigned count[LM_NSERVERS] = {0}, kinds = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = r->servers[i];
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		uint64_t w = atomic_load(&slot->owner);
		uint64_t lease = atomic_load(&slot->lease);
		uint64_t st = atomic_load(&srv->state);
		uint32_t s = LM_OWNER_SESSION(w);
		if (s == 0 || s > r->max_sessions ||
		    LM_OWNER_EPOCH(w) != (uint32_t)(LM_SRV_EPOCH(st) & 0xffffu) ||
		    LM_LEASE_TAG(lease) != LM_OWNER_TAG(w) ||
		    LM_LEASE_EXPIRY(lease) <= lm_server_clock_ms(srv, now_ns))
			continue;
		unsigned j = 0;
		while (j < kinds && seen[j] != s)
			j++;
		if (j == kinds)
			seen[kinds++] = s;
		on[j] |= 1u << i;
		count[j]++;
	}
	for (unsigned j = 0; j < kinds; j++)
		if (count[j] >= LM_QUORUM) {
			*session = seen[j] - 1;
			*mask = on[j];
			return true;
		}
	return false;
}

size_t lm_lock_holders(const struct lm_region *r, uint32_t lock,
		       int64_t now_ns, struct lm_holder *out, size_t n)
{
	size_t k = 0;
	uint32_t xs;
	unsigned mask;
	if (x_holder(r, lock, now_ns, &xs, &mask))
		add(out, n, &k, xs, LM_MODE_X_);
	/* Generations whose group runs, per table (else nobody counted
	 * there holds anything). */
	uint32_t gen[LM_NSERVERS];
	bool runs[LM_NSERVERS];
	unsigned running = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		uint64_t w = atomic_load(&slot->shared);
		uint64_t lease = atomic_load(&slot->lease);
		int64_t srv_now = lm_server_clock_ms(r->servers[i], now_ns);
		gen[i] = LM_GROUP_GEN(w);
		runs[i] = lm_group_state(w, lease, srv_now) == LM_GROUP_RUNS;
		running += runs[i];
	}
	if (running < LM_QUORUM)
		return k;
	uint32_t ns = lm_sessions_in_use(r);
	for (uint32_t s = 0; s < ns; s++) {
		const struct lm_session *ss = &r->sessions[s];
		if (!lm_session_is_live(ss))
			continue;
		for (unsigned h = 0; h < LM_HELD_MAX; h++) {
			if (atomic_load(&ss->held[h]) != lock + 1)
				continue;
			unsigned tables = 0;
			uint32_t mode = 0;
			for (unsigned i = 0; i < LM_NSERVERS; i++) {
				uint32_t j = atomic_load(&ss->joined[h][i]);
				if (LM_JOIN_SET(j) && runs[i] &&
				    LM_JOIN_GEN(j) == gen[i]) {
					tables++;
					mode = LM_JOIN_MODE(j);
				}
			}
			if (tables >= LM_QUORUM)
				add(out, n, &k, s, mode);
		}
	}
	return k;
}

/* Did any of lock's owner words in mask move from words[]? */
static bool owners_moved(const struct lm_region *r, uint32_t lock,
			 unsigned mask, const uint64_t *words)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if ((mask & (1u << i)) &&
		    atomic_load(&lm_slot_of(r, i, lock)->owner) != words[i])
			return true;
	return false;
}

void lm_lock_look(const struct lm_region *r, uint32_t lock, int64_t now_ns,
		  struct lm_lock_view *v)
{
	uint32_t xs;
	unsigned mask;
	/* The token is read after the owner words: if they moved meanwhile
	 * (a release and a new grant), the token may be the next holder's,
	 * so look again rather than pair it with this one. */
	for (int tries = 0; tries < 100; tries++) {
		*v = (struct lm_lock_view){ 0 };
		if (!x_holder(r, lock, now_ns, &xs, &mask))
			break;
		uint64_t words[LM_NSERVERS];
		bool same = true;
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			words[i] = atomic_load(&lm_slot_of(r, i, lock)->owner);
			if ((mask & (1u << i)) &&
			    LM_OWNER_SESSION(words[i]) != xs + 1)
				same = false;
		}
		if (!same)
			continue;
		v->holders = 1;
		v->mode = LM_MODE_X_;
		v->session = xs;
		v->pid = LM_SESS_PID(atomic_load(&r->sessions[xs].life));
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			uint64_t t = atomic_load(&lm_slot_of(r, i, lock)->token);
			if ((mask & (1u << i)) && t > v->token)
				v->token = t;
		}
		if (!owners_moved(r, lock, mask, words))
			return;
	}
	if (v->holders != 0)
		return; /* it moves faster than we look: the last look */
	struct lm_holder h[1];
	size_t n = lm_lock_holders(r, lock, now_ns, h, 1);
	v->holders = (uint32_t)n;
	if (n != 0) {
		v->mode = h[0].mode;
		v->session = h[0].session;
		v->pid = LM_SESS_PID(atomic_load(&r->sessions[h[0].session].life));
	}
}
