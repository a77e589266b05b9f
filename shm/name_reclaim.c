/*
 * name_reclaim.c - reclaiming the names nothing uses (name_reclaim.h).
 */
#include "name_reclaim.h"

#include "name_index.h"
#include "test_hook.h"

/* Does anything use lock idx? With take_marked, an ABANDONED mark for
 * the next holder does not count as a use. */
static bool in_use(const struct lm_region *r, uint32_t idx, bool take_marked)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		/* seq_cst: the other half of an acquire's owner CAS then
		 * life load (layout.h, "Names"). */
		uint64_t w = atomic_load(&lm_slot_of(r, i, idx)->owner);
		if (LM_OWNER_SESSION(w) != 0)
			return true;
		if (!take_marked && w == LM_OWNER_ABANDONED)
			return true;
	}
	return LM_WAITERS_COUNT(atomic_load(&lm_queue_of(r, idx)->waiters)) !=
	       0;
}

/* DYING(gen): back to LIVE if anything uses it, else DEAD. True if the
 * name ended DEAD (by us or by whoever decided first). */
static bool decide(struct lm_region *r, uint32_t idx, uint32_t gen)
{
	_Atomic uint32_t *life = lm_name_life(r, idx);
	uint32_t dying = LM_NAME_LIFE(gen, LM_NAME_DYING);
	bool busy = in_use(r, idx, true);
	uint32_t to = LM_NAME_LIFE(gen, busy ? LM_NAME_LIVE : LM_NAME_DEAD);
	if (atomic_compare_exchange_strong(life, &dying, to))
		return !busy;
	return dying == LM_NAME_LIFE(gen, LM_NAME_DEAD);
}

static void raise_to(_Atomic uint64_t *v, uint64_t x)
{
	uint64_t cur = atomic_load(v);
	while (cur < x && !atomic_compare_exchange_weak(v, &cur, x))
		;
}

/* DEAD(gen) -> FREE(gen): steps 2 to 4 of name_reclaim.h. */
static void finish(struct lm_region *r, uint32_t idx, uint32_t gen)
{
	_Atomic uint32_t *life = lm_name_life(r, idx);
	uint32_t dead = LM_NAME_LIFE(gen, LM_NAME_DEAD);
	if (atomic_load(life) != dead)
		return;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		raise_to(&r->servers[i]->token_floor,
			 atomic_load(&lm_slot_of(r, i, idx)->token));
	LM_HOOK("names.folded");
	if (!lm_name_unlink(r, idx, gen))
		return; /* still linked, or a damaged index: keep the slot */
	/* The next life starts clean: no mark meant for this name's next
	 * holder. (A word of a session here is a stale acquire of this
	 * life, which undoes it itself.) */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		_Atomic uint64_t *owner = &lm_slot_of(r, i, idx)->owner;
		uint64_t w = atomic_load(owner);
		if (LM_OWNER_SESSION(w) == 0 && w != LM_OWNER_FREE &&
		    atomic_load(life) == dead)
			atomic_compare_exchange_strong(owner, &w, LM_OWNER_FREE);
	}
	struct lm_queue *q = lm_queue_of(r, idx);
	uint16_t mark = atomic_load(&q->woken);
	if (mark != 0 && atomic_load(life) == dead)
		atomic_compare_exchange_strong(&q->woken, &mark, 0);
	atomic_compare_exchange_strong(life, &dead,
				       LM_NAME_LIFE(gen, LM_NAME_FREE));
}

enum lm_reclaim lm_name_reclaim(struct lm_region *r, uint32_t idx,
				bool take_marked)
{
	if (idx >= r->max_locks)
		return LM_NOT_LIVE;
	_Atomic uint32_t *life = lm_name_life(r, idx);
	uint32_t l = atomic_load(life);
	if (LM_NAME_STATE(l) != LM_NAME_LIVE)
		return LM_NOT_LIVE;
	if (in_use(r, idx, take_marked))
		return LM_IN_USE;
	LM_HOOK("names.prechecked");
	uint32_t gen = LM_NAME_GEN(l);
	if (!atomic_compare_exchange_strong(life, &l,
					    LM_NAME_LIFE(gen, LM_NAME_DYING)))
		return LM_IN_USE;
	LM_HOOK("names.dying");
	if (!decide(r, idx, gen))
		return LM_IN_USE;
	finish(r, idx, gen);
	return LM_RECLAIMED;
}

void lm_name_settle(struct lm_region *r, uint32_t idx, uint32_t gen)
{
	if (idx >= r->max_locks)
		return;
	uint32_t l = atomic_load(lm_name_life(r, idx));
	if (l == LM_NAME_LIFE(gen, LM_NAME_DYING) && !decide(r, idx, gen))
		return;
	finish(r, idx, gen);
}

/* Does a live session name slot idx as the one it is inserting? (A
 * session that is not LIVE inserts nothing: its marker is left over.) */
static bool claimed_by_session(const struct lm_region *r, uint32_t idx)
{
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t s = 0; s < n; s++) {
		const struct lm_session *ss = &r->sessions[s];
		if (atomic_load(&ss->inserting) == idx + 1 &&
		    LM_SESS_STATE(atomic_load(&ss->life)) == LM_SESS_LIVE)
			return true;
	}
	return false;
}

bool lm_name_tidy(struct lm_region *r, uint32_t idx, bool seen_before)
{
	if (idx >= r->max_locks)
		return false;
	_Atomic uint32_t *life = lm_name_life(r, idx);
	uint32_t l = atomic_load(life);
	uint32_t gen = LM_NAME_GEN(l);
	switch (LM_NAME_STATE(l)) {
	case LM_NAME_INSERTING:
		/* Linked: complete, only not yet marked LIVE. */
		if (lm_name_linked(r, idx, gen)) {
			atomic_compare_exchange_strong(
				life, &l, LM_NAME_LIFE(gen, LM_NAME_LIVE));
			return false;
		}
		/* Not linked: its inserter is at work (a session names the
		 * slot until it has linked it), or died. A claim no session
		 * names, seen so on the caller's last pass too, is an
		 * orphan. */
		if (claimed_by_session(r, idx))
			return false;
		if (seen_before && !lm_name_linked(r, idx, gen))
			atomic_compare_exchange_strong(
				life, &l, LM_NAME_LIFE(gen, LM_NAME_FREE));
		return true;
	case LM_NAME_DYING:
	case LM_NAME_DEAD:
		lm_name_settle(r, idx, gen);
		return false;
	default:
		return false;
	}
}
