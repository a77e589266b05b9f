/*
 * convert.c - changing the mode of a held grant in place: upgrade from a
 * counted mode to X (waits until the holder is its group's only member)
 * and downgrade from X to a counted mode (immediate).
 *
 * Upgrade, on each table the grant holds: CAS our new owner word in
 * (X's claim, as an acquire makes it), then load the group word (seq_cst:
 * a joiner's group CAS, then owner load, sees us or is seen), which must
 * be our generation with us as its only member; then reset the group
 * (bumping its generation, so nobody's leave can match it) and put our X
 * lease over the group's lease word. With a majority converted, the
 * token path of an acquire gives the X grant a token above every earlier
 * grant's. With fewer, the converted tables go back to the counted mode.
 *
 * Downgrade, on each table: write a new generation's lease (our X lease's
 * expiry, tagged for the group), then the group word naming us as its
 * only member, then give the owner word back. Joiners meanwhile see our
 * owner word under a lease that is not its own, which reads as a grant
 * in progress, and back off until the owner word is free. The grant keeps
 * its token and its lease: it is the same grant, holding less.
 */
#include <stdatomic.h>

#include "clock.h"
#include "grant.h"
#include "grant_steps.h"
#include "group.h"
#include "modes.h"
#include "session.h"
#include "test_hook.h"
#include "wait_queue.h"
#include "watch.h"

/* Is group word w generation gen with exactly one member, of mode? */
static bool only_member(uint64_t w, uint32_t gen, uint32_t mode)
{
	if (LM_GROUP_GEN(w) != (gen & 0xffffffu))
		return false;
	if (mode == LM_MODE_IS_)
		return LM_GROUP_IS(w) == 1 && LM_GROUP_MAIN(w) == 0;
	return LM_GROUP_IS(w) == 0 && LM_GROUP_MAIN(w) == 1 &&
	       LM_GROUP_KIND(w) == lm_mode_group(mode);
}

/*
 * Make table i's slot, where we hold owner word w, a group of one
 * member (us, in mode) under a new generation whose lease ends where
 * our X lease does; then give the owner word back. The new generation,
 * or -1 if the owner word was not ours.
 */
static int64_t to_group(struct lm_slot *slot, uint64_t w, uint32_t mode)
{
	for (;;) {
		uint64_t lease = atomic_load(&slot->lease);
		uint64_t gw = atomic_load(&slot->shared);
		if (atomic_load(&slot->owner) != w)
			return -1;
		uint32_t g = (LM_GROUP_GEN(gw) + 1u) & 0xffffffu;
		uint64_t mine = LM_GROUP_LEASE_NEXT(lease, g,
						    LM_LEASE_EXPIRY(lease));
		if (!atomic_compare_exchange_strong(&slot->lease, &lease, mine))
			continue;
		LM_HOOK("convert.group_lease");
		if (!atomic_compare_exchange_strong(
			    &slot->shared, &gw,
			    lm_group_plus(lm_group_reset(gw), mode)))
			continue; /* a stale joiner left: tag it again */
		/* Our owner word goes back; if it was not ours any more
		 * (taken over after our X lease ended), neither is the
		 * group we just made. */
		if (!atomic_compare_exchange_strong(&slot->owner, &w,
						    LM_OWNER_FREE)) {
			lm_group_leave(slot, g, mode);
			return -1;
		}
		return g;
	}
}

int lm_hold_downgrade(struct lm_session_ctx *c, struct lm_hold *h,
		      uint32_t mode)
{
	struct lm_region *r = &c->region;
	unsigned kept = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(h->mask & (1u << i)))
			continue;
		struct lm_slot *slot = lm_slot_of(r, i, h->lock);
		int64_t g = atomic_load(&r->servers[i]->state) == h->state[i]
				    ? to_group(slot, h->owner[i], mode)
				    : -1;
		/* After the writes, as a grant's verify: a server that
		 * restarted meanwhile counts this table for nobody. */
		if (g >= 0 &&
		    atomic_load(&r->servers[i]->state) != h->state[i]) {
			if (h->held >= 0)
				atomic_store(&c->self->joined[h->held][i], 0);
			lm_group_leave(slot, (uint32_t)g, mode);
			g = -1;
		}
		if (g < 0) {
			/* Lost on this table (restarted, or taken over
			 * once our lease there ended): nothing of ours. */
			h->mask &= ~(1u << i);
			continue;
		}
		h->owner[i] = (uint64_t)g;
		lm_ctx_record_join(c, h->held, i, (uint32_t)g, mode);
		kept++;
	}
	h->mode = mode;
	lm_lock_changed(r, h->lock, LM_CHANGE_GRANTED, mode,
			LM_SESS_PID(c->life), h->token);
	/* Waiting readers can join us now. */
	if (lm_queue_count(lm_queue_of(r, h->lock)) != 0)
		lm_wake_next(r, h->lock, c->session);
	return kept >= LM_QUORUM ? 0 : LM_R_LEASELOST;
}

/* Undo a converted table: back to a group of one member (us, in mode). */
static void revert(struct lm_session_ctx *c, struct lm_hold *h, unsigned i,
		   uint64_t w, uint32_t mode)
{
	int64_t g = to_group(lm_slot_of(&c->region, i, h->lock), w, mode);
	if (g < 0) {
		h->mask &= ~(1u << i);
		return;
	}
	h->owner[i] = (uint64_t)g;
	lm_ctx_record_join(c, h->held, i, (uint32_t)g, mode);
}

/*
 * Table i: claim the owner word with w, and if we are the group's only
 * member, turn the group into our X grant. STEP-like results.
 */
enum convert_step { CONV_DONE, CONV_BUSY, CONV_LOST };

static enum convert_step convert_table(struct lm_session_ctx *c,
				       struct lm_hold *h, unsigned i,
				       uint64_t w, int64_t t0, int64_t srv_now,
				       int64_t expiry, int64_t *busy_until)
{
	struct lm_region *r = &c->region;
	struct lm_slot *slot = lm_slot_of(r, i, h->lock);
	uint32_t gen = (uint32_t)h->owner[i];
	uint64_t cur = atomic_load(&slot->owner);
	bool abandoned = false;
	for (;;) {
		int64_t busy_srv = 0;
		enum take t = lm_slot_takeable(r, h->lock, i, cur,
					       LM_SRV_EPOCH(h->state[i]), t0,
					       srv_now, &abandoned, &busy_srv);
		if (t == TAKE_STALE)
			return CONV_LOST;
		if (t == TAKE_BUSY) {
			*busy_until = busy_srv;
			return CONV_BUSY;
		}
		if (atomic_compare_exchange_weak(&slot->owner, &cur, w))
			break;
	}
	LM_HOOK("convert.owner_taken");
	uint64_t gw = atomic_load(&slot->shared);
	for (;;) {
		if (!only_member(gw, gen, h->mode)) {
			uint64_t lease = atomic_load(&slot->lease);
			atomic_compare_exchange_strong(&slot->owner, &w,
						       LM_OWNER_FREE);
			if (LM_GROUP_GEN(gw) != (gen & 0xffffffu))
				return CONV_LOST; /* our group ended */
			*busy_until = LM_LEASE_EXPIRY(lease);
			return CONV_BUSY;
		}
		if (atomic_compare_exchange_strong(&slot->shared, &gw,
						   lm_group_reset(gw)))
			break;
	}
	/* We left the group with its reset: our record of the join goes. */
	if (h->held >= 0)
		atomic_store(&c->self->joined[h->held][i], 0);
	uint64_t lease = atomic_load(&slot->lease);
	if (!lm_store_lease(slot, w, lease, LM_LEASE_WORD(w, expiry)) ||
	    atomic_load(&r->servers[i]->state) != h->state[i]) {
		atomic_compare_exchange_strong(&slot->owner, &w, LM_OWNER_FREE);
		return CONV_LOST;
	}
	return CONV_DONE;
}

enum grab_result lm_hold_upgrade(struct lm_session_ctx *c, struct lm_hold *h,
				 int64_t ttl_ms, struct grab_info *info)
{
	struct lm_region *r = &c->region;
	int64_t t0 = lm_now_ns();
	uint64_t seq = ++c->seq;
	atomic_store_explicit(&c->self->grant_ttl_ms, (uint32_t)ttl_ms,
			      memory_order_relaxed);
	atomic_store_explicit(&c->self->grant_start_ns, t0,
			      memory_order_relaxed);
	atomic_store_explicit(&c->self->grant_seq, seq, memory_order_release);
	info->busy_until_ns = 0;
	info->holder_session = 0;
	info->usable = 0;
	uint32_t from = h->mode;
	int64_t expiry[LM_NSERVERS] = {0}, srv_now[LM_NSERVERS] = {0};
	uint64_t words[LM_NSERVERS] = {0};
	unsigned done = 0, lost = 0;
	bool busy = false;
	uint32_t iso = lm_ctx_isolation(c);
	for (unsigned i = 0; i < LM_NSERVERS && !busy; i++) {
		if (!(h->mask & (1u << i)) || (iso & (1u << i)))
			continue;
		const struct lm_server *srv = r->servers[i];
		if (atomic_load(&srv->state) != h->state[i]) {
			lost |= 1u << i;
			continue;
		}
		info->usable++;
		srv_now[i] = lm_server_clock_ms(srv, t0);
		expiry[i] = srv_now[i] + ttl_ms;
		words[i] = LM_OWNER_WORD(LM_SRV_EPOCH(h->state[i]), c->session,
					 seq);
		int64_t busy_srv = 0;
		switch (convert_table(c, h, i, words[i], t0, srv_now[i],
				      expiry[i], &busy_srv)) {
		case CONV_DONE:
			done |= 1u << i;
			break;
		case CONV_BUSY:
			busy = true;
			info->busy_until_ns = lm_server_to_local_ns(
				srv, busy_srv, srv_now[i], t0);
			break;
		case CONV_LOST:
			lost |= 1u << i;
			break;
		}
	}
	if (busy || __builtin_popcount(done) < (int)LM_QUORUM) {
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (done & (1u << i))
				revert(c, h, i, words[i], from);
		h->mask &= ~lost;
		if (__builtin_popcount(h->mask) < (int)LM_QUORUM)
			return GRAB_LOST;
		return busy ? GRAB_BUSY : GRAB_RETRY;
	}
	/* X now: the tables not converted hold nothing of ours. */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(h->mask & (1u << i)) || (done & (1u << i)))
			continue;
		if (h->held >= 0)
			atomic_store(&c->self->joined[h->held][i], 0);
		lm_group_leave(lm_slot_of(r, i, h->lock), (uint32_t)h->owner[i],
			       from);
	}
	h->mode = LM_MODE_X_;
	h->mask = done;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (done & (1u << i))
			h->owner[i] = words[i];
	int64_t deadline_ns =
		lm_valid_until(r, done, expiry, srv_now, t0, ttl_ms);
	uint64_t token = lm_marks_max(r, h->lock, done);
	if (token == UINT64_MAX)
		return GRAB_LOST; /* a damaged region: no larger token */
	token++;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if ((done & (1u << i)) &&
		    lm_within_reservation(r->servers[i], token, deadline_ns))
			lm_raise_token(&lm_slot_of(r, i, h->lock)->token,
				       token);
	LM_HOOK("convert.before_verify");
	int64_t t1 = lm_now_ns();
	unsigned ok = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(done & (1u << i)))
			continue;
		struct lm_slot *slot = lm_slot_of(r, i, h->lock);
		if (atomic_load(&r->servers[i]->state) == h->state[i] &&
		    atomic_load(&slot->owner) == words[i] &&
		    atomic_load(&slot->token) >= token &&
		    lm_server_clock_ms(r->servers[i], t1) < expiry[i])
			ok |= 1u << i;
	}
	if (ok != done)
		deadline_ns = lm_valid_until(r, ok, expiry, srv_now, t0, ttl_ms);
	if (__builtin_popcount(ok) < (int)LM_QUORUM ||
	    lm_now_ns() >= deadline_ns) {
		/* Became X and lost it at once: nothing to go back to. */
		return GRAB_LOST;
	}
	h->token = token;
	h->valid_until_ns = deadline_ns;
	lm_lock_changed(r, h->lock, LM_CHANGE_GRANTED, LM_MODE_X_,
			LM_SESS_PID(c->life), token);
	return GRAB_GRANTED;
}
