/*
 * name_index.c - the lock-name index (see name_index.h and layout.h).
 *
 * Every link and life read from the region is checked before use: an
 * index out of range, or a chain longer than there are names (a cycle in
 * a damaged region), ends the walk with LM_R_INCOMPAT rather than a stray
 * read or a hang.
 */
#include "name_index.h"
#include "semaphore.h"

#include <string.h>

#include "status.h"
#include "name_reclaim.h"
#include "test_hook.h"

/* How often a walk may start over (the name it stood on was reused, or
 * its predecessor changed) before it calls the index damaged. Each
 * restart means another process made progress, so this is not reached
 * in practice. */
#define MAX_RESTARTS 100000

/* Name slots an insert looks at for a free one before it extends the
 * range in use. */
#define CLAIM_PROBES 64u

int lm_name_check(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > LM_NAME_MAX)
		return LM_R_BADNAME;
	if (memchr(name, '\0', len) != NULL)
		return LM_R_BADNAME;
	return 0;
}

uint32_t lm_name_hash(const char *name, size_t len)
{
	/* FNV-1a, then a finaliser so that similar names spread out. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	return h;
}

/* A name being looked for: its bytes in the words a slot keeps them in. */
struct query {
	uint64_t text[LM_NAME_WORDS];
	uint32_t len;
	uint32_t hash;
	uint32_t words; /* words that hold the name */
};

static void make_query(struct query *q, const char *name, size_t len)
{
	memset(q->text, 0, sizeof(q->text));
	memcpy(q->text, name, len);
	q->len = (uint32_t)len;
	q->hash = lm_name_hash(name, len);
	q->words = ((uint32_t)len + 7) / 8;
}

static bool slot_matches(const struct lm_name *n, const struct query *q)
{
	if (atomic_load_explicit(&n->hash, memory_order_relaxed) != q->hash ||
	    atomic_load_explicit(&n->len, memory_order_relaxed) != q->len)
		return false;
	for (uint32_t i = 0; i < q->words; i++)
		if (atomic_load_explicit(&n->text[i], memory_order_relaxed) !=
		    q->text[i])
			return false;
	return true;
}

static _Atomic uint64_t *bucket_of(struct lm_region *r, uint32_t hash)
{
	return &r->buckets[hash & r->bucket_mask];
}

/*
 * The outcome of a walk of one chain: the link of the name looked for
 * and the life it had (found), or the head the walk started from (not
 * found: an insert CASes the head from it).
 */
struct walk {
	uint64_t link;
	uint64_t life;
	uint64_t head;
};

enum walk_result { WALK_FOUND, WALK_ABSENT, WALK_DAMAGED };

/*
 * Walk the chain of bucket b looking for q (or, with q NULL, for the
 * link `target`), unlinking marked names on the way and passing DEAD
 * ones by (they are committed to removal: only the lookup for their
 * exact link finds them). Restarts when a name it stands on changes
 * life under it.
 */
static enum walk_result walk(struct lm_region *r, _Atomic uint64_t *bucket,
			     const struct query *q, uint64_t target,
			     struct walk *w)
{
	for (int restarts = 0; restarts < MAX_RESTARTS; restarts++) {
		_Atomic uint64_t *prev = bucket;
		uint64_t cur = atomic_load(prev);
		w->head = cur;
		uint32_t steps = 0;
		for (;;) {
			uint32_t ix = LM_LINK_IDX(cur);
			if (ix == 0)
				return WALK_ABSENT;
			if (ix > r->max_locks || ++steps > r->max_locks ||
			    (cur & LM_LINK_MARK))
				return WALK_DAMAGED;
			uint32_t idx = ix - 1;
			struct lm_name *n = &r->names[idx];
			uint64_t next = atomic_load(&n->next);
			bool match = q != NULL ? slot_matches(n, q)
					       : cur == target;
			/* Read the life after the fields: if it is still the
			 * life the link names, the fields were that life's
			 * (a reuse claims the slot, bumping the generation,
			 * before it rewrites them). The fence keeps the
			 * relaxed reads above before this load. */
			atomic_thread_fence(memory_order_acquire);
			uint64_t life = atomic_load(lm_name_life(r, idx));
			if ((LM_NAME_GEN(life) & LM_LINK_GEN_MASK) !=
				    LM_LINK_GEN(cur) ||
			    LM_NAME_STATE(life) == LM_NAME_FREE)
				break; /* reused under us: start over */
			if (next & LM_LINK_MARK) {
				/* Being removed: unlink it from prev. */
				uint64_t after = next & ~LM_LINK_MARK;
				if (!atomic_compare_exchange_strong(prev, &cur,
								    after))
					break;
				cur = after;
				continue;
			}
			if (match && (q == NULL || LM_NAME_STATE(life) !=
							   LM_NAME_DEAD)) {
				w->link = cur;
				w->life = life;
				return WALK_FOUND;
			}
			prev = &n->next;
			cur = next;
		}
	}
	return WALK_DAMAGED;
}

bool lm_name_linked(struct lm_region *r, uint32_t idx, uint64_t gen)
{
	if (idx >= r->max_locks)
		return false;
	uint32_t hash = atomic_load(&r->names[idx].hash);
	struct walk w;
	return walk(r, bucket_of(r, hash), NULL, LM_LINK(idx, gen), &w) ==
	       WALK_FOUND;
}

bool lm_name_unlink(struct lm_region *r, uint32_t idx, uint64_t gen)
{
	if (idx >= r->max_locks)
		return false;
	/* A walk for it unlinks it when it meets it marked, and comes out
	 * at the end of the chain once it is gone. */
	uint32_t hash = atomic_load(&r->names[idx].hash);
	struct walk w;
	enum walk_result wr;
	while ((wr = walk(r, bucket_of(r, hash), NULL, LM_LINK(idx, gen),
			  &w)) == WALK_FOUND)
		if (!(atomic_load(&r->names[idx].next) & LM_LINK_MARK))
			return false; /* not marked: it cannot be unlinked */
	return wr == WALK_ABSENT;
}

/* Raise the high-water mark of name slots to cover slot i. */
static void cover_name(struct lm_region *r, uint32_t i)
{
	uint32_t hwm = atomic_load(&r->hdr->names_hwm);
	while (hwm < i + 1 &&
	       !atomic_compare_exchange_weak(&r->hdr->names_hwm, &hwm, i + 1))
		;
}

/*
 * Claim name slot i if it is FREE: FREE(g) -> INSERTING(g + 1). The
 * claimer's session names the slot first (seq_cst, before the CAS), so a
 * server that finds the claim not yet linked and no session naming it
 * knows its claimer died (name_reclaim.c).
 */
static bool claim_slot(struct lm_region *r, uint32_t i, uint64_t *gen,
		       struct lm_session *self)
{
	_Atomic uint64_t *life = lm_name_life(r, i);
	uint64_t l = atomic_load_explicit(life, memory_order_relaxed);
	if (LM_NAME_STATE(l) != LM_NAME_FREE)
		return false;
	if (self != NULL)
		atomic_store(&self->inserting, i + 1);
	cover_name(r, i);
	uint64_t g = LM_NAME_GEN(l) + 1;
	if (!atomic_compare_exchange_strong(life, &l,
					    LM_NAME_LIFE(g, LM_NAME_INSERTING)))
		return false;
	*gen = g;
	return true;
}

/*
 * A free name slot, claimed. While the range in use can still grow: a
 * few free slots from the shared cursor within it, else the next slot
 * beyond it. Once every slot is (or was) in use: from the cursor on, a
 * free slot, else a name nothing uses, reclaimed (sparing, on the first
 * round, those that carry a mark for their next holder); names met half
 * way through a removal are moved along. Returns the slot, or -1 if
 * every name is in use.
 */
static int64_t alloc_slot(struct lm_region *r, uint64_t *gen,
			  struct lm_session *self)
{
	uint32_t n = lm_names_in_use(r);
	if (n < r->max_locks) {
		for (uint32_t p = 0; n > 0 && p < CLAIM_PROBES && p < n; p++) {
			uint32_t i = atomic_fetch_add(&r->hdr->names_cursor,
						      1) % n;
			if (claim_slot(r, i, gen, self))
				return i;
		}
		for (;;) {
			uint32_t hwm = atomic_load(&r->hdr->names_hwm);
			if (hwm >= r->max_locks)
				break;
			if (claim_slot(r, hwm, gen, self))
				return hwm;
			/* Taken at the edge by someone else: look past it. */
			atomic_compare_exchange_strong(&r->hdr->names_hwm, &hwm,
						       hwm + 1);
		}
	}
	for (int round = 0; round < 2; round++)
		for (uint32_t k = 0; k < r->max_locks; k++) {
			uint32_t i = atomic_fetch_add(&r->hdr->names_cursor,
						      1) % r->max_locks;
			if (claim_slot(r, i, gen, self))
				return i;
			uint64_t l = atomic_load(lm_name_life(r, i));
			if (LM_NAME_STATE(l) == LM_NAME_DYING ||
			    LM_NAME_STATE(l) == LM_NAME_DEAD)
				lm_name_settle(r, i, LM_NAME_GEN(l));
			else if (lm_name_reclaim(r, i, round == 1) !=
				 LM_RECLAIMED)
				continue;
			if (claim_slot(r, i, gen, self)) {
				/* Tell the servers inserts are short of
				 * slots: they reclaim ahead of us then. */
				atomic_fetch_add_explicit(&r->hdr->names_short,
							  1,
							  memory_order_relaxed);
				return i;
			}
		}
	return -1;
}

/* Give back a slot that was claimed but never linked. */
static void unclaim_slot(struct lm_region *r, uint32_t i, uint64_t gen)
{
	uint64_t l = LM_NAME_LIFE(gen, LM_NAME_INSERTING);
	atomic_compare_exchange_strong(lm_name_life(r, i), &l,
				       LM_NAME_LIFE(gen, LM_NAME_FREE));
}

static void fill_slot(struct lm_region *r, uint32_t i, const struct query *q)
{
	struct lm_name *n = &r->names[i];
	/* After the claim (our new life), before the fields: a reader that
	 * sees a field we write then sees that life too (its acquire fence
	 * pairs with this one), and knows the slot moved on. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&n->hash, q->hash, memory_order_relaxed);
	atomic_store_explicit(&n->len, q->len, memory_order_relaxed);
	for (uint32_t k = 0; k < LM_NAME_WORDS; k++)
		atomic_store_explicit(&n->text[k], q->text[k],
				      memory_order_relaxed);
}

static int64_t resolve_in(struct lm_region *r, const char *name, size_t len,
			  bool create, struct lm_session *self, uint64_t *gen);

int64_t lm_name_resolve(struct lm_region *r, const char *name, size_t len,
			bool create, struct lm_session *self, uint64_t *gen)
{
	int64_t idx = resolve_in(r, name, len, create, self, gen);
	if (self != NULL)
		atomic_store(&self->inserting, 0);
	return idx;
}

static int64_t resolve_in(struct lm_region *r, const char *name, size_t len,
			  bool create, struct lm_session *self, uint64_t *gen)
{
	/* A user's name, or a semaphore's slot (NAME, NUL, digits:
	 * shm/semaphore.h), which no user can name. */
	size_t base;
	uint32_t k;
	int rc = lm_name_check(name, len);
	if (rc != 0 && !(len <= LM_NAME_MAX &&
			 lm_sem_slot_parse(name, len, &base, &k)))
		return rc;
	struct query q;
	make_query(&q, name, len);
	_Atomic uint64_t *bucket = bucket_of(r, q.hash);
	int64_t mine = -1;
	uint64_t mine_gen = 0;
	for (int rounds = 0; rounds < MAX_RESTARTS; rounds++) {
		struct walk w;
		enum walk_result wr = walk(r, bucket, &q, 0, &w);
		if (wr == WALK_DAMAGED) {
			if (mine >= 0)
				unclaim_slot(r, (uint32_t)mine, mine_gen);
			return LM_R_INCOMPAT;
		}
		if (wr == WALK_FOUND) {
			uint32_t idx = LM_LINK_IDX(w.link) - 1;
			uint64_t g = LM_NAME_GEN(w.life);
			switch (LM_NAME_STATE(w.life)) {
			case LM_NAME_INSERTING:
				/* Linked, so complete: make it LIVE for its
				 * inserter, which may be slow or dead. */
				atomic_compare_exchange_strong(
					lm_name_life(r, idx), &w.life,
					LM_NAME_LIFE(g, LM_NAME_LIVE));
				/* fall through */
			case LM_NAME_LIVE:
				if (mine >= 0)
					unclaim_slot(r, (uint32_t)mine,
						     mine_gen);
				*gen = g;
				return idx;
			default:
				/* DYING: we want it, so call the removal off,
				 * then look again (a DEAD name is passed by:
				 * it may be made anew). */
				lm_name_keep(r, idx, g);
				continue;
			}
		}
		if (!create)
			return LM_R_NOTHELD;
		if (mine < 0) {
			mine = alloc_slot(r, &mine_gen, self);
			if (mine < 0)
				return LM_R_TABLEFULL;
			fill_slot(r, (uint32_t)mine, &q);
			continue; /* the walk may be stale by now */
		}
		LM_HOOK("names.before_link");
		atomic_store(&r->names[mine].next, w.head);
		uint64_t head = w.head;
		if (!atomic_compare_exchange_strong(
			    bucket, &head, LM_LINK((uint32_t)mine, mine_gen)))
			continue; /* the chain changed: walk it again */
		uint64_t ins = LM_NAME_LIFE(mine_gen, LM_NAME_INSERTING);
		atomic_compare_exchange_strong(
			lm_name_life(r, (uint32_t)mine), &ins,
			LM_NAME_LIFE(mine_gen, LM_NAME_LIVE));
		*gen = mine_gen;
		return mine;
	}
	if (mine >= 0)
		unclaim_slot(r, (uint32_t)mine, mine_gen);
	return LM_R_INCOMPAT;
}

int64_t lm_name_lookup(struct lm_region *r, const char *name, size_t len,
		       int create)
{
	uint64_t gen;
	return lm_name_resolve(r, name, len, create != 0, NULL, &gen);
}

uint32_t lm_name_copy(const struct lm_region *r, uint32_t idx, char *out,
		      uint64_t *gen)
{
	out[0] = '\0';
	if (idx >= r->max_locks)
		return 0;
	const struct lm_name *n = &r->names[idx];
	_Atomic uint64_t *life = lm_name_life(r, idx);
	uint64_t before = atomic_load(life);
	if (LM_NAME_STATE(before) != LM_NAME_LIVE)
		return 0;
	uint32_t len = atomic_load_explicit(&n->len, memory_order_relaxed);
	if (len == 0 || len > LM_NAME_MAX)
		return 0;
	uint64_t text[LM_NAME_WORDS];
	for (uint32_t k = 0; k < (len + 7) / 8; k++)
		text[k] = atomic_load_explicit(&n->text[k],
					       memory_order_relaxed);
	/* Still the same life: the bytes were its name. The fence keeps the
	 * relaxed reads above before the load. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load(life) != before)
		return 0;
	memcpy(out, text, len);
	out[len] = '\0';
	if (gen != NULL)
		*gen = LM_NAME_GEN(before);
	return len;
}
