/*
 * grant.c - the quorum grant protocol on the three tables.
 *
 * One acquire attempt (lm_grab):
 *
 *  1. t0 = now. The lease is measured from here, before anything is
 *     taken, so that an acquire that finishes late is known to be late.
 *  2. For each usable server, in table order: read its state word
 *     (epoch and state in one load), CAS our owner word (tagged with that
 *     epoch) into the lock's slot if the slot is free, stale (earlier
 *     epoch), abandoned or expired; CAS our lease in over the lease word
 *     we read before the owner CAS; re-read the state word and give the
 *     slot back if the server restarted meanwhile (a grant from an old
 *     epoch counts for nobody). A slot held by a live lease ends the
 *     attempt: everything taken is undone at once. Tables are always
 *     tried in the same order, so two contenders meet at the first table
 *     they share and cannot split the quorum forever.
 *  3. Token: read the token high-water mark of every table we hold, take
 *     max + 1, and raise each of those tables to it (CAS max). Any later
 *     majority shares a table with ours and reads our token there after
 *     our hold on it ended, so its token is larger. "max of what each
 *     server granted" would not be monotonic (docs/protocol.md).
 *  4. Verify after all write-backs: a table counts only if its state
 *     word (epoch) is unchanged, our owner word is still there and our
 *     lease on it has not ended in that server's clock. Fewer than a
 *     majority, or a clock past t0 + TTL - drift once all that is done:
 *     undo, and the caller retries.
 *
 * The owner and the lease are two words, so step 2 is two steps. The
 * lease is stored by CAS from the value read before the owner CAS: an
 * acquirer stopped between the two once resumed after a takeover and
 * overwrote the new holder's lease with a plain store, so the new
 * holder's on-time renew failed. Now a lease that changed meanwhile is
 * replaced only while the owner word is still ours.
 *
 * Fast path when uncontended: one clock read at each end, and per table
 * a load of the state and heartbeat, one CAS on the owner, one CAS of the
 * lease and one CAS of the token; no system call.
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"
#include "futex.h"
#include "grant.h"
#include "grant_steps.h"
#include "group.h"
#include "heartbeat.h"
#include "isolation.h"
#include "modes.h"
#include "name_index.h"
#include "session.h"
#include "test_hook.h"
#include "wait_queue.h"
#include "watch.h"

bool lm_server_usable(const struct lm_session_ctx *c, unsigned i, uint64_t *state,
		      int64_t now_ms)
{
	const struct lm_server *s = c->region.servers[i];
	/* Pairs with the supervisor's and server's CAS of state: a client
	 * that sees the new epoch sees the reset that preceded it. */
	uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (LM_SRV_STATE(st) != LM_SRV_UP)
		return false;
	int64_t hb = atomic_load_explicit(&s->heartbeat_ms,
					  memory_order_relaxed);
	if (!lm_heartbeat_fresh(hb, now_ms))
		return false;
	uint32_t iso = atomic_load_explicit(&c->self->isolated,
					    memory_order_relaxed);
	if (iso & (1u << i))
		return false;
	*state = st;
	return true;
}

bool lm_quorum_lost(const struct lm_session_ctx *c)
{
	int64_t now_ms = lm_now_ms();
	unsigned usable = 0;
	uint64_t st;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		usable += lm_server_usable(c, i, &st, now_ms);
	return usable < LM_QUORUM;
}

uint32_t lm_ctx_isolation(struct lm_session_ctx *c)
{
	return lm_isolation_refresh(&c->region, c->self, LM_SESS_PID(c->life),
				    atomic_load_explicit(&c->self->start_time,
							 memory_order_relaxed),
				    &c->iso_gen, false);
}

/* How many tables a mask names. (__builtin_popcount is a libgcc call
 * without -mpopcnt, on every acquire; the loop unrolls to three bit
 * tests.) */
static inline int tables_in(unsigned mask)
{
	int n = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		n += (mask >> i) & 1u;
	return n;
}

/* The owner words of one grant differ only in their epoch bits. */
#define GRANT_ID(w) ((w) & UINT64_C(0xffffffffffff))

bool lm_grant_holds_quorum_elsewhere(const struct lm_region *r,
				     uint32_t lock, unsigned table,
				     uint64_t word, int64_t now_ns)
{
	unsigned held = 0;
	for (unsigned j = 0; j < LM_NSERVERS; j++) {
		if (j == table)
			continue;
		const struct lm_server *srv = r->servers[j];
		struct lm_slot *slot = lm_slot_of(r, j, lock);
		uint64_t w = atomic_load(&slot->owner);
		uint64_t lease = atomic_load(&slot->lease);
		uint64_t st = atomic_load(&srv->state);
		if (GRANT_ID(w) == GRANT_ID(word) &&
		    LM_OWNER_EPOCH(w) == (uint32_t)(LM_SRV_EPOCH(st) & 0xffffu) &&
		    LM_LEASE_TAG(lease) == LM_OWNER_TAG(w) &&
		    LM_LEASE_EXPIRY(lease) > lm_server_clock_ms(srv, now_ns))
			held++;
	}
	return held >= LM_QUORUM;
}


/*
 * May the owner word cur of table i's slot be replaced by a new grant at
 * epoch `epoch`? Sets *abandoned when the previous holder did not
 * release cleanly, and *busy_until_srv to when a live lease ends.
 *
 * A grant that lost its lease, or whose table restarted under it, is
 * abandoned unless it still holds a majority on the other tables: then
 * it merely dropped this table and carries on, and telling the next
 * holder "recovered" would be a false alarm.
 *
 * Owner words carry 16 bits of epoch, compared modulo 2^16. A word from
 * a *later* epoch than the one we read means that we stood still while
 * the server restarted, and that word may be a live holder's: taking it
 * as "an earlier life" once let a grab with a stale view break mutual
 * exclusion.
 */
static inline enum take slot_takeable(const struct lm_region *r, uint32_t lock,
			       unsigned i, uint64_t cur, uint64_t epoch,
			       int64_t t0, int64_t srv_now, bool *abandoned,
			       int64_t *busy_until_srv)
{
	if (LM_OWNER_SESSION(cur) == 0) {
		*abandoned = (cur & LM_OWNER_ABANDONED) != 0;
		return TAKE;
	}
	int16_t age = (int16_t)(uint16_t)(LM_OWNER_EPOCH(cur) -
					  (uint32_t)(epoch & 0xffffu));
	if (age > 0)
		return TAKE_STALE;
	const struct lm_session *holder = lm_owner_session(r, cur);
	if (holder == NULL || !lm_session_is_live(holder)) {
		*abandoned = true; /* corrupted, or holder gone without release */
		return TAKE;
	}
	if (age < 0) {
		/* Granted in an earlier life of the table: it counts for
		 * nobody here any more. */
		*abandoned = !lm_grant_holds_quorum_elsewhere(r, lock, i, cur,
							       t0);
		return TAKE;
	}
	struct lm_slot *slot = lm_slot_of(r, i, lock);
	uint64_t lease = atomic_load(&slot->lease);
	if (LM_LEASE_TAG(lease) != LM_OWNER_TAG(cur)) {
		/* The holder has CASed the owner but not yet stored its
		 * lease: it is being granted right now (if it froze there,
		 * its server caps the grant with a lease of its TTL). */
		*busy_until_srv = srv_now + 1;
		return TAKE_BUSY;
	}
	if (LM_LEASE_EXPIRY(lease) <= srv_now) {
		*abandoned = !lm_grant_holds_quorum_elsewhere(r, lock, i, cur,
							       t0);
		return TAKE;
	}
	*busy_until_srv = LM_LEASE_EXPIRY(lease);
	return TAKE_BUSY;
}

/*
 * Put `freed` back in place of our owner word on each table of mask, and
 * wake the head waiter if anything was given back. Returns the tables
 * where the word was still ours in the same life of the server. Only our
 * own word is ever replaced: a holder that lost its lease cannot free a
 * newer holder's grant. A table that restarted since the grant gets FREE
 * whatever `freed` says: the grant never counted in its new life, and an
 * ABANDONED mark there would tell its next holder of a loss that did not
 * happen.
 */
static unsigned give_up(struct lm_session_ctx *c, uint32_t lock,
			const struct lm_hold *h, unsigned mask, uint64_t freed)
{
	struct lm_region *r = &c->region;
	unsigned ours = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)))
			continue;
		bool same_life = atomic_load(&r->servers[i]->state) ==
				 h->state[i];
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		if (h->mode != LM_MODE_X_) {
			/* Clear the record before the leave (layout.h, "Join
			 * record"): never two leaves for one join. */
			if (h->held >= 0)
				atomic_store(&c->self->joined[h->held][i], 0);
			if (lm_group_leave(slot, (uint32_t)h->owner[i],
					   h->mode) &&
			    same_life)
				ours++;
			continue;
		}
		uint64_t w = h->owner[i];
		if (atomic_compare_exchange_strong(
			    &slot->owner, &w,
			    same_life ? freed : LM_OWNER_FREE) &&
		    same_life)
			ours++;
	}
	/* Pairs with a waiter's raise of the count before it tries the
	 * tables: either we see it here, or it sees the slots free. (A
	 * semaphore's slot wakes its gate's queue too.) */
	if (mask != 0)
		lm_wake_freed(r, lock, c->session);
	return ours;
}

/*
 * May token be written to table i? Only up to the server's reservation,
 * which with a state directory is what it has made durable. Asks for
 * more half a block ahead, so that grants rarely wait for an fsync.
 */
static inline bool within_reservation(struct lm_server *srv, uint64_t token,
			       int64_t deadline_ns)
{
	uint64_t res = atomic_load_explicit(&srv->token_reserved,
					    memory_order_acquire);
	if (res - token >= LM_TOKEN_BLOCK / 2 && token <= res)
		return true;
	uint64_t want = atomic_load(&srv->token_wanted);
	uint64_t asked = want;
	while (want < token &&
	       !atomic_compare_exchange_weak(&srv->token_wanted, &want, token))
		;
	if (asked <= res) /* nobody has asked yet: wake the server */
		lm_futex_bump_wake(&srv->wake, 1);
	while (token > res) {
		int64_t now = lm_now_ns();
		if (now >= deadline_ns)
			return false;
		uint32_t seq = atomic_load(&srv->reserve_seq);
		res = atomic_load_explicit(&srv->token_reserved,
					   memory_order_acquire);
		if (token <= res)
			break;
		lm_futex_wait(&srv->reserve_seq, seq, deadline_ns);
		res = atomic_load_explicit(&srv->token_reserved,
					   memory_order_acquire);
	}
	return true;
}

/* Take a free entry of our session's held[] for lock, or -1 (and mark
 * the session as needing a full scan at cleanup). */
/*
 * Clear the join records of held[k]. A record left by a hold that did
 * not leave a table (isolated from it, or it dropped out of the grant)
 * would otherwise outlive the entry, and whoever frees the session would
 * leave the group of the entry's next lock with it: generations of
 * different locks can be equal. (That table's count then ends with its
 * group's lease.)
 */
static void forget_joins(struct lm_session_ctx *c, int k)
{
	if (!(c->joins_set & (1u << k)))
		return;
	/* Usually cleared already, each before its leave (give_up). */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (atomic_load_explicit(&c->self->joined[k][i],
					 memory_order_relaxed) != 0)
			atomic_store(&c->self->joined[k][i], 0);
	c->joins_set &= ~(1u << k);
}

void lm_ctx_record_join(struct lm_session_ctx *c, int k, unsigned i,
			uint32_t gen, uint32_t mode)
{
	if (k < 0 || k >= (int)LM_HELD_MAX)
		return;
	c->joins_set |= 1u << k;
	/* After the join (release: the group CAS before it is seen
	 * first); a record is only ever read by whoever frees the session
	 * once this process is dead. */
	atomic_store_explicit(&c->self->joined[k][i], LM_JOIN_WORD(gen, mode),
			      memory_order_release);
}

static inline int held_take(struct lm_session_ctx *c, uint32_t lock)
{
	uint32_t free = ~c->held_used & ((1u << LM_HELD_MAX) - 1);
	if (free == 0) {
		if (!c->held_overflow) {
			atomic_store(&c->self->held_overflow, 1);
			c->held_overflow = true;
		}
		return -1;
	}
	int k = __builtin_ctz(free);
	c->held_used |= 1u << k;
	forget_joins(c, k);
	atomic_store_explicit(&c->self->held[k], lock + 1,
			      memory_order_release);
	return k;
}

/* A give-up of a grant without a held[] entry names its lock in the
 * session until its version bump is done (layout.h, `unrecorded`), so
 * that whoever frees the session after our death announces it. */
static inline void unrecorded_set(struct lm_session_ctx *c, int k,
				  uint32_t lock1)
{
	if (k < 0)
		atomic_store(&c->self->unrecorded, lock1);
}

static inline void held_put(struct lm_session_ctx *c, int k)
{
	if (k < 0 || k >= (int)LM_HELD_MAX || !(c->held_used & (1u << k)))
		return;
	forget_joins(c, k);
	atomic_store_explicit(&c->self->held[k], 0, memory_order_release);
	c->held_used &= ~(1u << k);
}

static inline void raise_token(_Atomic uint64_t *t, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(t, memory_order_relaxed);
	while (cur < v && !atomic_compare_exchange_weak(t, &cur, v))
		;
}

/*
 * Store our lease after our owner CAS: by CAS from `seen`, the lease
 * word read before that owner CAS. If the lease changed meanwhile (the
 * server capped our frozen grant, or the previous holder's late renew
 * wrote one), ours replaces it only while the owner word is still ours;
 * false means the slot was taken over and is not ours at all.
 */
static inline bool store_lease(struct lm_slot *slot, uint64_t w, uint64_t seen,
			uint64_t mine)
{
	while (!atomic_compare_exchange_strong(&slot->lease, &seen, mine)) {
		/* seen now holds the current lease, read before the owner
		 * check below: if a taker moves in after the check, its own
		 * lease store changes the word and our CAS fails. */
		if (atomic_load(&slot->owner) != w)
			return false;
	}
	return true;
}

/*
 * Until when (local ns) a grant whose leases end at expiry[] (server
 * clocks, read as srv_now[] at t0) on the tables of mask is valid: while
 * a majority of them run, less the drift bound. The published skew of
 * each server is taken into account, so a grant on a server whose clock
 * runs fast is trusted for less.
 */
static inline int64_t valid_until(const struct lm_region *r, unsigned mask,
			   const int64_t *expiry, const int64_t *srv_now,
			   int64_t t0, int64_t ttl_ms)
{
	int64_t end[LM_NSERVERS];
	unsigned n = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (mask & (1u << i))
			end[n++] = lm_server_to_local_ns(r->servers[i],
							 expiry[i], srv_now[i],
							 t0);
	/* The QUORUM-th latest end: insertion sort, largest first. */
	for (unsigned a = 1; a < n; a++)
		for (unsigned b = a; b > 0 && end[b] > end[b - 1]; b--) {
			int64_t x = end[b];
			end[b] = end[b - 1];
			end[b - 1] = x;
		}
	int64_t drift_ns = lm_drift_ms(ttl_ms) * 1000000;
	int64_t v = t0 + ttl_ms * 1000000 - drift_ns;
	if (n >= LM_QUORUM && end[LM_QUORUM - 1] - drift_ns < v)
		v = end[LM_QUORUM - 1] - drift_ns;
	return v;
}

/* How one table of an attempt went. */
enum step {
	STEP_TAKEN, /* ours on this table */
	STEP_BUSY,  /* held there by a live lease: the attempt ends */
	STEP_STALE, /* our view of the server is out of date: retry */
	STEP_LOST,  /* taken over while we stood still, or the server
		     * restarted under us: not counted, go on */
};

/* What one table step needs and tells. */
struct table_step {
	unsigned i;
	uint64_t st;          /* the server's state word we act under */
	int64_t t0, srv_now;  /* local ns and server ms at the start */
	int64_t expiry;       /* our lease there (server ms) */
	bool abandoned;       /* out: its last holder did not release */
	int64_t busy_until_srv; /* out, on STEP_BUSY */
	int64_t judged;       /* out: a joined group's lease expiry that
			       * must not have passed when the clock is
			       * read again (lm_group_extend); INT64_MAX if
			       * there is nothing to check */
	uint32_t holder;      /* out, on STEP_BUSY: session + 1, or 0 */
};

/*
 * Is the group of counted holders on ts's table in the way of an X
 * grant that has just CASed its owner word in? A group whose lease has
 * ended is reset (its members all lost their leases). seq_cst load of
 * the group word after the owner CAS: the other half of a joiner's
 * group CAS, then owner load.
 */
static bool group_blocks_owner(struct lm_slot *slot, struct table_step *ts)
{
	uint64_t gw = atomic_load(&slot->shared);
	for (;;) {
		uint64_t lease = atomic_load(&slot->lease);
		switch (lm_group_state(gw, lease, ts->srv_now)) {
		case LM_GROUP_NONE:
			return false;
		case LM_GROUP_RUNS:
			ts->busy_until_srv = LM_LEASE_EXPIRY(lease);
			ts->holder = 0;
			return true;
		case LM_GROUP_ENDED:
			if (lm_group_end(slot, gw))
				return false;
			gw = atomic_load(&slot->shared);
			break;
		}
	}
}

/* X on one table: CAS our owner word in, then the group must be empty. */
static enum step claim_owner(struct lm_session_ctx *c, uint32_t lock,
			     uint64_t w, struct table_step *ts)
{
	struct lm_region *r = &c->region;
	struct lm_slot *slot = lm_slot_of(r, ts->i, lock);
	/* seq_cst: the other half of the releaser's Dekker pair (its CAS
	 * of the owner, then its load of the waiter count). */
	uint64_t cur = atomic_load(&slot->owner);
	uint64_t lease_seen;
	for (;;) {
		lease_seen = atomic_load(&slot->lease);
		enum take t = slot_takeable(r, lock, ts->i, cur,
					    LM_SRV_EPOCH(ts->st), ts->t0,
					    ts->srv_now, &ts->abandoned,
					    &ts->busy_until_srv);
		if (t == TAKE_STALE)
			return STEP_STALE;
		if (t == TAKE_BUSY) {
			ts->holder = LM_OWNER_SESSION(cur);
			return STEP_BUSY;
		}
		if (atomic_compare_exchange_weak(&slot->owner, &cur, w))
			break;
	}
	LM_HOOK("grant.owner_taken");
	uint64_t back = ts->abandoned ? LM_OWNER_ABANDONED : LM_OWNER_FREE;
	if (group_blocks_owner(slot, ts)) {
		atomic_compare_exchange_strong(&slot->owner, &w, back);
		return STEP_BUSY;
	}
	if (!store_lease(slot, w, lease_seen,
			 LM_LEASE_WORD(w, ts->expiry)))
		return STEP_LOST; /* taken over while we stood still */
	if (atomic_load(&r->servers[ts->i]->state) != ts->st) {
		/* Restarted under us: this grant counts for nobody. What we
		 * replaced could be taken, so it goes back as free (or
		 * abandoned), never as the word it was: a ghost of a grant
		 * under a lease that is not its own would block the lock. */
		atomic_compare_exchange_strong(&slot->owner, &w, back);
		return STEP_LOST;
	}
	return STEP_TAKEN;
}

/*
 * After a group join, the owner word must hold no live X grant (seq_cst
 * load after our group CAS: the other half of an X taker's owner CAS,
 * then group load). A grant that may be taken is cleared out of the
 * way, marked abandoned if its holder lost it. False if an X grant is
 * live (or our view of the server is out of date).
 */
static bool owner_clear(struct lm_region *r, uint32_t lock,
			struct table_step *ts, enum step *why)
{
	struct lm_slot *slot = lm_slot_of(r, ts->i, lock);
	uint64_t cur = atomic_load(&slot->owner);
	for (;;) {
		bool abandoned = false;
		enum take t = slot_takeable(r, lock, ts->i, cur,
					    LM_SRV_EPOCH(ts->st), ts->t0,
					    ts->srv_now, &abandoned,
					    &ts->busy_until_srv);
		if (t == TAKE_STALE || t == TAKE_BUSY) {
			ts->holder = LM_OWNER_SESSION(cur);
			*why = t == TAKE_STALE ? STEP_STALE : STEP_BUSY;
			return false;
		}
		ts->abandoned |= abandoned;
		if (LM_OWNER_SESSION(cur) == 0)
			return true;
		if (atomic_compare_exchange_weak(
			    &slot->owner, &cur,
			    abandoned ? LM_OWNER_ABANDONED : LM_OWNER_FREE))
			return true;
	}
}

/*
 * A counted mode on one table: join the group (layout.h, "Group word").
 * A generation whose lease runs is joined as it is, and its lease
 * extended; otherwise a new generation is started, its lease written
 * before the group word that names it. *gen: the generation joined.
 */
static enum step join_group(struct lm_session_ctx *c, uint32_t lock,
			    uint32_t mode, struct table_step *ts, uint32_t *gen)
{
	struct lm_region *r = &c->region;
	struct lm_slot *slot = lm_slot_of(r, ts->i, lock);
	const struct lm_server *srv = r->servers[ts->i];
	for (int tries = 0; tries < 64; tries++) {
		uint64_t w = atomic_load(&slot->shared);
		uint64_t lease = atomic_load(&slot->lease);
		uint32_t g = LM_GROUP_GEN(w);
		bool runs = LM_GROUP_TAG_IS(LM_LEASE_TAG(lease), g) &&
			    LM_LEASE_EXPIRY(lease) > ts->srv_now;
		if (runs) {
			if (!lm_group_admits(w, mode)) {
				ts->busy_until_srv = LM_LEASE_EXPIRY(lease);
				ts->holder = 0;
				return STEP_BUSY;
			}
			if (!atomic_compare_exchange_strong(
				    &slot->shared, &w, lm_group_plus(w, mode)))
				continue;
		} else {
			/* A new generation writes the lease word, which is
			 * an X holder's while one holds: only over a free
			 * owner word, read after the lease (an X taker
			 * stores its lease after its owner CAS, so our CAS
			 * below fails if one got in between). */
			enum step why;
			if (!owner_clear(r, lock, ts, &why))
				return why;
			g = (g + 1u) & 0xffffffu;
			/* (Another starter of g may have written its lease
			 * already: only raise it.) */
			if (!atomic_compare_exchange_strong(
				    &slot->lease, &lease,
				    LM_GROUP_LEASE_NEXT(lease, g, ts->expiry)))
				continue;
			LM_HOOK("grant.group_lease");
			uint64_t fresh = lm_group_plus(lm_group_reset(w), mode);
			if (!atomic_compare_exchange_strong(&slot->shared, &w,
							    fresh))
				continue;
		}
		LM_HOOK("grant.group_joined");
		enum step why = STEP_LOST;
		ts->judged = INT64_MAX;
		if (!owner_clear(r, lock, ts, &why) ||
		    (runs && !lm_group_extend(slot, g, ts->expiry, ts->srv_now,
					      &ts->judged))) {
			lm_group_leave(slot, g, mode);
			if (why != STEP_LOST)
				return why;
			continue; /* the lease ended as we joined */
		}
		if (atomic_load(&srv->state) != ts->st) {
			lm_group_leave(slot, g, mode);
			return STEP_LOST;
		}
		*gen = g;
		return STEP_TAKEN;
	}
	return STEP_LOST;
}

/*
 * Raise the token marks of the tables of mask to token. A counted mode's
 * holders are granted side by side, so each must *be* the one that
 * raised every mark to its token (two majorities share a table, where
 * only one CAS can lift a mark to a given value): then no two grants,
 * of any modes, share a token. False (and *token moved past what was
 * found) if some mark was at or past it already.
 */
/* The largest token mark (or server floor) of lock's tables in mask: a
 * new grant's token is one above it. */
static inline uint64_t marks_max(const struct lm_region *r, uint32_t lock,
				 unsigned mask)
{
	uint64_t token = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)))
			continue;
		uint64_t t = atomic_load(&lm_slot_of(r, i, lock)->token);
		uint64_t f = atomic_load_explicit(&r->servers[i]->token_floor,
						  memory_order_relaxed);
		token = t > token ? t : token;
		token = f > token ? f : token;
	}
	return token;
}

static bool write_back_token(struct lm_region *r, uint32_t lock,
			     unsigned mask, uint64_t *token, bool strict,
			     int64_t deadline_ns)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (!within_reservation(r->servers[i], *token, deadline_ns))
			continue; /* no reservation before the deadline: it
				   * has passed, and verify fails the grab */
		_Atomic uint64_t *t = &lm_slot_of(r, i, lock)->token;
		if (!strict) {
			raise_token(t, *token);
			continue;
		}
		uint64_t cur = atomic_load(t);
		while (cur < *token &&
		       !atomic_compare_exchange_weak(t, &cur, *token))
			;
		if (cur >= *token) {
			*token = cur == UINT64_MAX ? cur : cur + 1;
			return false;
		}
	}
	return true;
}

/*
 * A failed attempt gives its tables back. One that held a majority
 * (owner words under stored leases, or joins) was the lock's holder to
 * anyone who looked meanwhile (lm_lock_look, lm_leader_get), though it
 * never verified: its end is a change, announced like a release's (and
 * named in `unrecorded` meanwhile if held[] has no entry for it).
 */
static void grab_give_back(struct lm_session_ctx *c, uint32_t lock,
			   const struct lm_hold *h, unsigned mask,
			   uint64_t undo)
{
	bool seen = tables_in(mask) >= (int)LM_QUORUM;
	if (seen)
		unrecorded_set(c, h->held, lock + 1);
	give_up(c, lock, h, mask, undo);
	if (seen) {
		LM_HOOK("grant.given_back");
		lm_lock_changed(&c->region, lock, LM_CHANGE_OTHER, 0, 0, 0);
		unrecorded_set(c, h->held, 0);
	}
}

enum grab_result lm_grab(struct lm_session_ctx *c, uint32_t lock,
			 uint64_t gen, uint32_t mode, int64_t ttl_ms,
			 struct lm_hold *h, struct grab_info *info)
{
	struct lm_region *r = &c->region;
	int64_t t0 = lm_now_ns();
	int64_t now_ms = t0 / 1000000;
	uint64_t seq = ++c->seq;
	/* The attempt's TTL and start, then its sequence (release): a
	 * server that finds this attempt frozen between its owner CAS and
	 * its lease bounds it by them (daemon/server.c). */
	atomic_store_explicit(&c->self->grant_ttl_ms, (uint32_t)ttl_ms,
			      memory_order_relaxed);
	atomic_store_explicit(&c->self->grant_start_ns, t0,
			      memory_order_relaxed);
	atomic_store_explicit(&c->self->grant_seq, seq, memory_order_release);

	/* Record the lock before any owner CAS, so that whoever cleans up
	 * after our death finds it without scanning every lock. */
	int held = held_take(c, lock);
	LM_HOOK("grant.before_tables");

	unsigned mask = 0, usable = 0;
	bool busy = false, stale = false, recovered = false;
	int64_t expiry[LM_NSERVERS] = {0}, srv_now[LM_NSERVERS] = {0};
	int64_t judged[LM_NSERVERS] = {INT64_MAX, INT64_MAX, INT64_MAX};
	info->busy_until_ns = 0;
	info->holder_session = 0;
	h->mode = mode;
	h->held = held;

	/* Count the usable servers first: with fewer than a majority the
	 * answer is "no quorum", whatever the lock's state, and nothing is
	 * touched. */
	uint64_t states[LM_NSERVERS];
	unsigned up = 0;
	lm_ctx_isolation(c);
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (lm_server_usable(c, i, &states[i], now_ms))
			up |= 1u << i;
	usable = (unsigned)tables_in(up);
	info->usable = (int)usable;
	if (usable < LM_QUORUM) {
		held_put(c, held);
		return GRAB_NOQUORUM;
	}

	for (unsigned i = 0; i < LM_NSERVERS && !busy && !stale; i++) {
		if (!(up & (1u << i)))
			continue;
		const struct lm_server *srv = r->servers[i];
		srv_now[i] = lm_server_clock_ms(srv, t0);
		expiry[i] = srv_now[i] + ttl_ms;
		struct table_step ts = {
			.i = i, .st = states[i], .t0 = t0,
			.srv_now = srv_now[i], .expiry = expiry[i],
		};
		uint64_t w = LM_OWNER_WORD(LM_SRV_EPOCH(states[i]), c->session,
					   seq);
		uint32_t joined = 0;
		enum step s = mode == LM_MODE_X_
				      ? claim_owner(c, lock, w, &ts)
				      : join_group(c, lock, mode, &ts, &joined);
		if (s == STEP_STALE) {
			stale = true;
		} else if (s == STEP_BUSY) {
			busy = true;
			info->busy_until_ns = lm_server_to_local_ns(
				srv, ts.busy_until_srv, srv_now[i], t0);
			info->holder_session = ts.holder;
		} else if (s == STEP_TAKEN) {
			judged[i] = mode == LM_MODE_X_ ? INT64_MAX : ts.judged;
			h->owner[i] = mode == LM_MODE_X_ ? w : joined;
			h->state[i] = states[i];
			recovered |= ts.abandoned;
			mask |= 1u << i;
			/* After the join (layout.h, "Join record"). */
			if (mode != LM_MODE_X_)
				lm_ctx_record_join(c, held, i, joined, mode);
		}
	}
	/* Undoing keeps "abandoned" if that is what we found, so that the
	 * next holder is still told. */
	uint64_t undo = recovered ? LM_OWNER_ABANDONED : LM_OWNER_FREE;
	/* Only now, after our owner CASes and joins (seq_cst): is the name
	 * still the one we resolved? A reclaimer marks it DYING before it
	 * looks at the owner and group words, so either it sees ours, or we
	 * see it going (shm/layout.h, "Names"). */
	enum grab_result fail = GRAB_GRANTED;
	if (!lm_name_is(r, lock, gen))
		fail = GRAB_STALE;
	/* A semaphore's gate is never granted as a lock. seq_cst after our
	 * owner CASes and joins: the other half of a semaphore user's CAS
	 * of sem_slots, then its look at the owner and group words
	 * (lm_sem_gate_claim): one of us sees the other. One load, on the
	 * queue line the acquire has touched already. */
	else if (atomic_load(&lm_queue_of(r, lock)->sem_slots) != 0)
		fail = GRAB_KIND;
	else if (busy)
		fail = GRAB_BUSY;
	else if (stale || tables_in(mask) < (int)LM_QUORUM)
		fail = GRAB_RETRY;
	if (fail != GRAB_GRANTED) {
		grab_give_back(c, lock, h, mask, undo);
		held_put(c, held);
		return fail;
	}

	/* At most this long (verify may shorten it): the reservations must
	 * cover it. */
	int64_t deadline_ns = valid_until(r, mask, expiry, srv_now, t0, ttl_ms);
	uint64_t token = marks_max(r, lock, mask);
	bool written = false;
	for (int round = 0; round < 16 && token != UINT64_MAX && !written;
	     round++) {
		token++;
		written = write_back_token(r, lock, mask, &token,
					   mode != LM_MODE_X_, deadline_ns);
		if (!written)
			token--; /* write_back_token moved it past the mark */
	}
	if (token == UINT64_MAX || !written) {
		/* No token above it: only a damaged region gets here, and
		 * a token that wrapped to 0 would not increase. (Or others
		 * kept taking the next token first: try again.) */
		grab_give_back(c, lock, h, mask, undo);
		held_put(c, held);
		return token == UINT64_MAX ? GRAB_DAMAGED : GRAB_RETRY;
	}

	/* Verify only after every write-back (docs/protocol.md). */
	LM_HOOK("grant.before_verify");
	unsigned ok = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)))
			continue;
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		bool ours;
		if (mode == LM_MODE_X_) {
			ours = atomic_load(&slot->owner) == h->owner[i];
		} else {
			uint32_t g = (uint32_t)h->owner[i];
			uint64_t lease = atomic_load(&slot->lease);
			ours = LM_GROUP_GEN(atomic_load(&slot->shared)) == g &&
			       LM_GROUP_TAG_IS(LM_LEASE_TAG(lease), g) &&
			       LM_LEASE_EXPIRY(lease) >= expiry[i];
		}
		if (ours &&
		    atomic_load(&r->servers[i]->state) == h->state[i] &&
		    atomic_load(&slot->token) >= token)
			ok |= 1u << i;
	}
	/*
	 * One clock read, after every load of the checks above: each
	 * table's lease must still run at it, and so must the grant. An
	 * acquire that completes past its own deadline is already a
	 * zombie. (This read once came twice, one before the loads for the
	 * leases and one after them for the deadline; the one after is the
	 * stricter for both, since the monotonic clock never runs
	 * backwards and the skew settings are read after the loads, as
	 * before; a skew changed after a grant is a clock fault, which
	 * fencing covers.)
	 * It is also after a joined group's lease extension
	 * (lm_group_extend): the lease we judged running still is.
	 */
	int64_t t1 = lm_now_ns();
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(ok & (1u << i)))
			continue;
		int64_t srv_t1 = lm_server_clock_ms(r->servers[i], t1);
		if (!(srv_t1 < expiry[i] && srv_t1 < judged[i]))
			ok &= ~(1u << i);
	}
	/* Valid while a majority of the tables that verified run: a table
	 * dropped here holds nothing, however long its lease looked. (All
	 * verified, the usual case: the bound above stands.) */
	if (ok != mask)
		deadline_ns = valid_until(r, ok, expiry, srv_now, t0, ttl_ms);
	if (tables_in(ok) < (int)LM_QUORUM || t1 >= deadline_ns) {
		grab_give_back(c, lock, h, mask, undo);
		held_put(c, held);
		return GRAB_RETRY;
	}

	h->token = token;
	h->valid_until_ns = deadline_ns;
	h->flags = recovered ? LM_HOLD_RECOVERED : 0;
	h->lock = lock;
	h->mask = mask;
	h->live = LM_HOLD_LIVE;
	atomic_store_explicit(&c->self->acquires,
			      atomic_load_explicit(&c->self->acquires,
						   memory_order_relaxed) + 1,
			      memory_order_relaxed);
	lm_lock_changed(r, lock, LM_CHANGE_GRANTED, mode,
			LM_SESS_PID(c->life), token);
	return GRAB_GRANTED;
}

/* Which end h's is (watch.h): an X grant's, by its owner word on a table
 * of mask, or a group member's own. */
static uint64_t hold_end(const struct lm_session_ctx *c,
			 const struct lm_hold *h, unsigned mask)
{
	if (h->mode == LM_MODE_X_)
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (mask & (1u << i))
				return lm_end_of_grant(h->owner[i]);
	return lm_end_of_member(LM_SESS_PID(c->life), h->token);
}

int lm_hold_renew(struct lm_session_ctx *c, struct lm_hold *h, int64_t ttl_ms)
{
	struct lm_region *r = &c->region;
	uint32_t lock = h->lock;
	int64_t t0 = lm_now_ns();
	unsigned ok = 0, lost = 0, mask = h->mask;
	uint32_t iso = lm_ctx_isolation(c);
	int64_t expiry[LM_NSERVERS] = {0}, srv_now[LM_NSERVERS] = {0};
	int64_t judged[LM_NSERVERS] = {INT64_MAX, INT64_MAX, INT64_MAX};
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)))
			continue;
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		const struct lm_server *srv = r->servers[i];
		uint64_t w = h->owner[i];
		uint64_t lease = atomic_load(&slot->lease);
		srv_now[i] = lm_server_clock_ms(srv, t0);
		if (h->mode != LM_MODE_X_) {
			/* A member extends its group's lease (group.c); the
			 * clock is read again below. */
			uint32_t g = (uint32_t)w;
			expiry[i] = srv_now[i] + ttl_ms;
			if (iso & (1u << i) ||
			    atomic_load(&srv->state) != h->state[i] ||
			    LM_GROUP_GEN(atomic_load(&slot->shared)) != g ||
			    !lm_group_extend(slot, g, expiry[i], srv_now[i],
					     &judged[i]))
				lost |= 1u << i;
			continue;
		}
		/* An isolated session cannot reach that server, as in a
		 * real partition: its lease there runs out. */
		bool kept = !(iso & (1u << i)) &&
			    atomic_load(&srv->state) == h->state[i] &&
			    atomic_load(&slot->owner) == w &&
			    LM_LEASE_TAG(lease) == LM_OWNER_TAG(w) &&
			    LM_LEASE_EXPIRY(lease) > srv_now[i];
		if (kept) {
			expiry[i] = srv_now[i] + ttl_ms;
			uint64_t nl = LM_LEASE_WORD(w, expiry[i]);
			kept = atomic_compare_exchange_strong(&slot->lease,
							      &lease, nl);
		}
		/* A taker decides "expired" only once the old expiry has
		 * passed; if it has not passed now, after our CAS, no taker
		 * can have seen the old lease as expired. */
		if (kept)
			kept = lm_server_clock_ms(srv, lm_now_ns()) <
				       LM_LEASE_EXPIRY(lease) &&
			       atomic_load(&slot->owner) == w;
		if (!kept)
			lost |= 1u << i;
	}
	/* Only after every CAS: a table counts if its server is still in
	 * the grant's life. A restarted server bounds its quarantine by the
	 * leases it (or, if it lost its table, its peers) holds once its new
	 * epoch is out, so a renew counted here must have made all its
	 * writes before that (the same rule as an acquire's verify). The
	 * clock is read again here for the group leases extended above. */
	int64_t t1 = h->mode == LM_MODE_X_ ? 0 : lm_now_ns();
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(mask & (1u << i)) || (lost & (1u << i)))
			continue;
		if (atomic_load(&r->servers[i]->state) == h->state[i] &&
		    (h->mode == LM_MODE_X_ ||
		     lm_server_clock_ms(r->servers[i], t1) < judged[i]))
			ok++;
		else
			lost |= 1u << i;
	}
	if (ok < LM_QUORUM) {
		/* Give back everything at once, marked abandoned (the
		 * holder worked without a lease), but keep the grant live:
		 * its release still gets LM_R_LEASELOST, not "already
		 * released". Not on a server we are isolated from: behind
		 * a partition our lease there runs out on its own, and
		 * freeing it early would let the next holder in while
		 * valid_until_ns still vouches for ours. */
		unrecorded_set(c, h->held, lock + 1);
		if (give_up(c, lock, h, mask & ~iso, LM_OWNER_ABANDONED))
			lm_lock_expired(r, lock, h->mode, LM_SESS_PID(c->life),
					h->token, hold_end(c, h, mask));
		unrecorded_set(c, h->held, 0);
		h->mask = 0;
		return LM_R_LEASELOST;
	}
	/* The grant goes on with a majority: the tables it dropped were
	 * not lost by its holder, so they are freed clean (but not behind
	 * a partition, as above: there the lease runs out). */
	give_up(c, lock, h, lost & ~iso, LM_OWNER_FREE);
	h->mask = mask & ~lost;
	h->valid_until_ns = valid_until(r, h->mask, expiry, srv_now, t0,
					ttl_ms);
	return 0;
}

int lm_hold_release(struct lm_session_ctx *c, struct lm_hold *h)
{
	/* Released after the lease ended: the critical section outlived
	 * its lease, so the next holder is told (LM_HOLD_RECOVERED). */
	bool late = lm_now_ns() >= h->valid_until_ns;
	/* A release cannot reach a server we are isolated from: there the
	 * lease runs out, as behind a partition. */
	uint32_t iso = lm_ctx_isolation(c);
	unrecorded_set(c, h->held, h->lock + 1);
	uint64_t end = hold_end(c, h, h->mask);
	unsigned kept = give_up(c, h->lock, h, h->mask & ~iso,
				late ? LM_OWNER_ABANDONED : LM_OWNER_FREE);
	h->live = 0;
	h->mask = 0;
	LM_HOOK("release.given_up");
	/* A late release's end may have been announced already, by a
	 * server that freed its table: one end, one change. */
	if (kept != 0 && late)
		lm_lock_expired(&c->region, h->lock, h->mode,
				LM_SESS_PID(c->life), h->token, end);
	else if (kept != 0)
		lm_lock_changed(&c->region, h->lock, LM_CHANGE_RELEASED,
				h->mode, LM_SESS_PID(c->life), h->token);
	unrecorded_set(c, h->held, 0);
	held_put(c, h->held);
	return kept >= LM_QUORUM && !late ? 0 : LM_R_LEASELOST;
}

void lm_hold_raise_token(struct lm_session_ctx *c, const struct lm_hold *h,
			 uint64_t token)
{
	struct lm_region *r = &c->region;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if ((h->mask & (1u << i)) &&
		    within_reservation(r->servers[i], token,
					  h->valid_until_ns))
			raise_token(&lm_slot_of(r, i, h->lock)->token,
				       token);
}

bool lm_hold_claim_token(struct lm_session_ctx *c, const struct lm_hold *h,
			 uint64_t *token)
{
	struct lm_region *r = &c->region;
	if (*token == h->token)
		return true; /* its own, claimed when it was granted */
	for (int round = 0; round < 16 && *token != UINT64_MAX; round++) {
		bool mine = true;
		unsigned lifted = 0;
		for (unsigned i = 0; i < LM_NSERVERS && mine; i++) {
			if (!(h->mask & (1u << i)) ||
			    !within_reservation(r->servers[i], *token,
						   h->valid_until_ns))
				continue;
			_Atomic uint64_t *t = &lm_slot_of(r, i, h->lock)->token;
			uint64_t cur = atomic_load(t);
			while (cur < *token &&
			       !atomic_compare_exchange_weak(t, &cur, *token))
				;
			if (cur >= *token) {
				*token = cur + 1;
				mine = false;
			} else {
				lifted++;
			}
		}
		/* Lifted by us on a majority, which any other grant of the
		 * node shares a table with; a table left out (no
		 * reservation) proves nothing. */
		if (mine)
			return lifted >= LM_QUORUM;
	}
	return false;
}

/* Session idx's grant of lock was freed for it (freed: the owner word
 * left behind, ABANDONED when it died): tell the lock's watchers. */
static void freed_changed(struct lm_region *r, uint32_t idx, uint32_t lock,
			  uint64_t freed, uint32_t mode)
{
	lm_lock_changed(r, lock,
			freed == LM_OWNER_ABANDONED ? LM_CHANGE_DIED
						    : LM_CHANGE_RELEASED,
			mode, LM_SESS_PID(atomic_load(&r->sessions[idx].life)),
			lm_marks_max(r, lock, (1u << LM_NSERVERS) - 1));
}

/* Free lock `lock` on every table where session idx holds it. */
static bool free_one(struct lm_region *r, uint32_t idx, uint32_t lock,
		     uint64_t freed, uint32_t self)
{
	bool any = false;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		uint64_t w = atomic_load(&slot->owner);
		if (LM_OWNER_SESSION(w) == idx + 1 &&
		    atomic_compare_exchange_strong(&slot->owner, &w, freed))
			any = true;
	}
	if (any)
		freed_changed(r, idx, lock, freed, LM_MODE_X_);
	if (any)
		lm_wake_freed(r, lock, self);
	return any;
}

/* Leave the groups session idx recorded joining for its held[k]: each
 * record is taken (xchg) before its leave, so a record is left once. */
static bool leave_recorded(struct lm_region *r, uint32_t idx, unsigned k,
			   uint64_t freed, uint32_t self)
{
	struct lm_session *s = &r->sessions[idx];
	uint32_t v = atomic_load(&s->held[k]);
	uint32_t mode = 0;
	bool any = false;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		uint32_t j = atomic_exchange(&s->joined[k][i], 0);
		if (!LM_JOIN_SET(j) || v == 0 || v > r->max_locks)
			continue;
		if (lm_group_leave(lm_slot_of(r, i, v - 1), LM_JOIN_GEN(j),
				   LM_JOIN_MODE(j))) {
			any = true;
			mode = LM_JOIN_MODE(j);
		}
	}
	if (any)
		freed_changed(r, idx, v - 1, freed, mode);
	if (any)
		lm_wake_freed(r, v - 1, self);
	return any;
}

unsigned lm_free_session_grants(struct lm_region *r, uint32_t idx,
				uint64_t freed, uint32_t self)
{
	struct lm_session *s = &r->sessions[idx];
	unsigned n = 0;
	bool left[LM_HELD_MAX];
	for (unsigned k = 0; k < LM_HELD_MAX; k++)
		if ((left[k] = leave_recorded(r, idx, k, freed, self)))
			n++;
	for (unsigned k = 0; k < LM_HELD_MAX; k++) {
		uint32_t v = atomic_load(&s->held[k]);
		if (v == 0 || v > r->max_locks)
			continue;
		if (free_one(r, idx, v - 1, freed, self))
			n++;
		else if (!left[k])
			/* Recorded, yet nothing of it is left: it was given
			 * up by a process that died before it could say so
			 * (between a release's give_up and its version
			 * bump). Say it for it; a change too many costs a
			 * watcher a look, a change missed costs it the
			 * lock. (Also when the session overflowed held[]:
			 * the full scan below finds nothing of it either.) */
			lm_lock_changed(r, v - 1, LM_CHANGE_OTHER, 0, 0, 0);
	}
	if (!atomic_load(&s->held_overflow))
		return n;
	/* The same for a grant it gave up that held[] had no room for. */
	uint32_t u = atomic_load(&s->unrecorded);
	if (u != 0 && u <= r->max_locks) {
		if (free_one(r, idx, u - 1, freed, self))
			n++;
		else
			lm_lock_changed(r, u - 1, LM_CHANGE_OTHER, 0, 0, 0);
	}
	/* It held more locks at once than it could record: look at all.
	 * (Its counted holds beyond held[] are not recorded: their counts
	 * stay until their groups' leases end.) */
	uint32_t names = lm_names_in_use(r);
	for (uint32_t lock = 0; lock < names; lock++)
		if (free_one(r, idx, lock, freed, self))
			n++;
	return n;
}

/* The steps convert.c shares (grant_steps.h): grant.c calls the inline
 * ones above, on the acquire's fast path. */
enum take lm_slot_takeable(const struct lm_region *r, uint32_t lock,
			   unsigned i, uint64_t cur, uint64_t epoch,
			   int64_t t0, int64_t srv_now, bool *abandoned,
			   int64_t *busy_until_srv)
{
	return slot_takeable(r, lock, i, cur, epoch, t0, srv_now, abandoned,
			     busy_until_srv);
}

bool lm_store_lease(struct lm_slot *slot, uint64_t w, uint64_t seen,
		    uint64_t mine)
{
	return store_lease(slot, w, seen, mine);
}

int64_t lm_valid_until(const struct lm_region *r, unsigned mask,
		       const int64_t *expiry, const int64_t *srv_now,
		       int64_t t0, int64_t ttl_ms)
{
	return valid_until(r, mask, expiry, srv_now, t0, ttl_ms);
}

bool lm_within_reservation(struct lm_server *srv, uint64_t token,
			   int64_t deadline_ns)
{
	return within_reservation(srv, token, deadline_ns);
}

void lm_raise_token(_Atomic uint64_t *t, uint64_t v)
{
	raise_token(t, v);
}

uint64_t lm_marks_max(const struct lm_region *r, uint32_t lock,
		      unsigned mask)
{
	return marks_max(r, lock, mask);
}

