/*
 * name_reclaim.c - reclaiming the names nothing uses (name_reclaim.h).
 */
#include "name_reclaim.h"

#include "actor.h"
#include "name_index.h"
#include "pins.h"
#include "test_hook.h"
#include "watch.h"

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
		if (!LM_GROUP_EMPTY(
			    atomic_load(&lm_slot_of(r, i, idx)->shared)))
			return true;
	}
	if (LM_WAITERS_COUNT(atomic_load(&lm_queue_of(r, idx)->waiters)) != 0)
		return true;
	return lm_pinned(r, idx); /* watched, or a semaphore's gate */
}

static void raise_to(_Atomic uint64_t *v, uint64_t x)
{
	uint64_t cur = atomic_load(v);
	while (cur < x && !atomic_compare_exchange_weak(v, &cur, x))
		;
}

/*
 * DYING(gen), as its finisher: back to LIVE if anything uses it, else
 * fold its tokens and commit it DEAD. Only the finisher starts a DYING
 * round and only it decides one, so the users it looked for are those of
 * this very round. True if the name ended DEAD.
 */
static bool decide(struct lm_region *r, uint32_t idx, uint64_t gen,
		   bool take_marked)
{
	_Atomic uint64_t *life = lm_name_life(r, idx);
	uint64_t dying = LM_NAME_LIFE(gen, LM_NAME_DYING);
	bool busy = in_use(r, idx, take_marked);
	if (!busy)
		/* Before DEAD: from DEAD on the name may be created again,
		 * and its first token must be above this life's last. */
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			raise_to(&r->servers[i]->token_floor,
				 atomic_load(&lm_slot_of(r, i, idx)->token));
	uint64_t to = LM_NAME_LIFE(gen, busy ? LM_NAME_LIVE : LM_NAME_DEAD);
	if (atomic_compare_exchange_strong(life, &dying, to))
		return !busy;
	return false; /* called off by a user meanwhile */
}

/* Give the finisher word back (we are it). */
static void release_finisher(struct lm_region *r, uint32_t idx, uint64_t me)
{
	atomic_compare_exchange_strong(&r->names[idx].finisher, &me, 0);
}

/*
 * Become the name's finisher: it has none, or one proven gone. A word
 * that names us already is another thread of ours at work: refused too.
 */
static bool take_finisher(struct lm_region *r, uint32_t idx, uint64_t me)
{
	_Atomic uint64_t *f = &r->names[idx].finisher;
	uint64_t cur = atomic_load(f);
	if (cur == me || (cur != 0 && !lm_actor_gone(cur)))
		return false;
	return atomic_compare_exchange_strong(f, &cur, me);
}

/* DEAD(gen) -> FREE(gen), as its finisher: step 3 of name_reclaim.h. */
static void finish(struct lm_region *r, uint32_t idx, uint64_t gen,
		   uint64_t me)
{
	_Atomic uint64_t *life = lm_name_life(r, idx);
	struct lm_name *n = &r->names[idx];
	uint64_t dead = LM_NAME_LIFE(gen, LM_NAME_DEAD);
	LM_HOOK("names.finishing");
	uint64_t next = atomic_load(&n->next);
	while (!(next & LM_LINK_MARK) &&
	       !atomic_compare_exchange_weak(&n->next, &next,
					     next | LM_LINK_MARK))
		;
	if (!lm_name_unlink(r, idx, gen))
		return; /* a damaged index: the slot stays out of use */
	/* The next life starts clean: no mark meant for this name's next
	 * holder. (A word of a session here is a stale acquire of this
	 * life, which undoes it itself.) */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		_Atomic uint64_t *owner = &lm_slot_of(r, i, idx)->owner;
		uint64_t w = atomic_load(owner);
		if (LM_OWNER_SESSION(w) == 0 && w != LM_OWNER_FREE)
			atomic_compare_exchange_strong(owner, &w, LM_OWNER_FREE);
	}
	struct lm_queue *q = lm_queue_of(r, idx);
	uint16_t mark = atomic_load(&q->woken);
	if (mark != 0)
		atomic_compare_exchange_strong(&q->woken, &mark, 0);
	/* Nothing pins the name (decide looked): no watcher and no
	 * semaphore user is left to read these. */
	lm_lock_unwatch(r, idx);
	atomic_store(&q->sem_slots, 0);
	atomic_store(&lm_slot_of(r, 2, idx)->note.gate, 0);
	atomic_compare_exchange_strong(life, &dead,
				       LM_NAME_LIFE(gen, LM_NAME_FREE));
	release_finisher(r, idx, me);
}

enum lm_reclaim lm_name_reclaim(struct lm_region *r, uint32_t idx,
				bool take_marked)
{
	if (idx >= r->max_locks)
		return LM_NOT_LIVE;
	_Atomic uint64_t *life = lm_name_life(r, idx);
	uint64_t l = atomic_load(life);
	if (LM_NAME_STATE(l) != LM_NAME_LIVE)
		return LM_NOT_LIVE;
	if (in_use(r, idx, take_marked))
		return LM_IN_USE;
	uint64_t me = lm_actor_self();
	if (me == 0 || !take_finisher(r, idx, me))
		return LM_IN_USE; /* another process is removing it (or we
				   * cannot name ourselves just now) */
	LM_HOOK("names.prechecked");
	uint64_t gen = LM_NAME_GEN(l);
	if (!atomic_compare_exchange_strong(life, &l,
					    LM_NAME_LIFE(gen, LM_NAME_DYING))) {
		release_finisher(r, idx, me);
		return LM_IN_USE;
	}
	LM_HOOK("names.dying");
	if (!decide(r, idx, gen, take_marked)) {
		release_finisher(r, idx, me);
		return LM_IN_USE;
	}
	finish(r, idx, gen, me);
	return atomic_load(life) == LM_NAME_LIFE(gen, LM_NAME_FREE)
		       ? LM_RECLAIMED
		       : LM_IN_USE;
}

bool lm_name_keep(struct lm_region *r, uint32_t idx, uint64_t gen)
{
	if (idx >= r->max_locks)
		return false;
	uint64_t dying = LM_NAME_LIFE(gen, LM_NAME_DYING);
	uint64_t live = LM_NAME_LIFE(gen, LM_NAME_LIVE);
	_Atomic uint64_t *life = lm_name_life(r, idx);
	/* Calling a removal off is always safe: the name just lives on. */
	if (atomic_compare_exchange_strong(life, &dying, live))
		return true;
	return dying == live;
}

void lm_name_settle(struct lm_region *r, uint32_t idx, uint64_t gen)
{
	if (idx >= r->max_locks)
		return;
	_Atomic uint64_t *life = lm_name_life(r, idx);
	uint64_t l = atomic_load(life);
	if (l != LM_NAME_LIFE(gen, LM_NAME_DYING) &&
	    l != LM_NAME_LIFE(gen, LM_NAME_DEAD))
		return;
	uint64_t me = lm_actor_self();
	if (me == 0)
		return; /* we cannot name ourselves just now */
	LM_HOOK("names.settling");
	if (!take_finisher(r, idx, me))
		return; /* its finisher is at work (or stopped): its job */
	/* The finisher may have finished between our look and our take:
	 * a word taken for a life that moved on would bar the next life's
	 * removal, so look again, now that no other finisher can act. */
	l = atomic_load(life);
	bool dying = l == LM_NAME_LIFE(gen, LM_NAME_DYING);
	if (!dying && l != LM_NAME_LIFE(gen, LM_NAME_DEAD)) {
		release_finisher(r, idx, me);
		return;
	}
	/* A taken-over round spares a mark for the next holder. */
	if (dying && !decide(r, idx, gen, false)) {
		release_finisher(r, idx, me);
		return;
	}
	finish(r, idx, gen, me);
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
	_Atomic uint64_t *life = lm_name_life(r, idx);
	uint64_t l = atomic_load(life);
	uint64_t gen = LM_NAME_GEN(l);
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
