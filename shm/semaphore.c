/*
 * semaphore.c - counting semaphores on the grant protocol (semaphore.h).
 */
#include "semaphore.h"

#include <stdatomic.h>
#include <string.h>

#include "group.h"
#include "name_index.h"
#include "status.h"
#include "test_hook.h"

size_t lm_sem_slot_name(const char *name, size_t len, uint32_t k, char *out)
{
	char digits[8];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + k % 10);
		k /= 10;
	} while (k != 0 && n < sizeof(digits));
	memcpy(out, name, len);
	out[len] = '\0';
	for (size_t d = 0; d < n; d++)
		out[len + 1 + d] = digits[n - 1 - d];
	out[len + 1 + n] = '\0';
	return len + 1 + n;
}

bool lm_sem_slot_parse(const char *name, size_t len, size_t *base_len,
		       uint32_t *k)
{
	const char *nul = memchr(name, '\0', len);
	if (nul == NULL || nul == name)
		return false;
	size_t base = (size_t)(nul - name), digits = len - base - 1;
	if (digits == 0 || digits > LM_SEM_SUFFIX_MAX - 1)
		return false;
	uint32_t v = 0;
	for (size_t d = 0; d < digits; d++) {
		char ch = name[base + 1 + d];
		if (ch < '0' || ch > '9')
			return false;
		v = v * 10 + (uint32_t)(ch - '0');
	}
	*base_len = base;
	*k = v;
	return true;
}

/* Does a session hold (or is one taking) gate as a lock on any table,
 * in X (its owner word) or a counted mode (its group word)? seq_cst
 * loads: see lm_sem_gate_claim. */
static bool held_as_lock(struct lm_region *r, uint32_t gate)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_slot *slot = lm_slot_of(r, i, gate);
		if (LM_OWNER_SESSION(atomic_load(&slot->owner)) != 0 ||
		    !LM_GROUP_EMPTY(atomic_load(&slot->shared)))
			return true;
	}
	return false;
}

int lm_sem_gate_claim(struct lm_region *r, uint32_t gate, uint32_t slots)
{
	_Atomic uint16_t *word = &lm_queue_of(r, gate)->sem_slots;
	uint16_t cur = atomic_load(word);
	if (cur == 0) {
		/*
		 * Look before we claim. sem_slots is reset only by the
		 * name's reclaimer, so a claim that then loses to a plain
		 * holder (found by the look after it, below) would leave
		 * the name a semaphore for everyone once that holder is
		 * gone: plain acquires refused (LM_EKIND), a semaphore of
		 * our count granted. Undoing our CAS is no cure: another
		 * user may have found our count meanwhile and be using
		 * it. Looking first leaves that only to a plain grab that
		 * CASes its owner word (or joins) between this look and
		 * our CAS: safe still (the look after the CAS sees it, or
		 * it sees our count and backs off), but the count stays
		 * until the name is reclaimed (docs/protocol.md,
		 * "Semaphores").
		 */
		if (held_as_lock(r, gate))
			return LM_R_KIND;
		LM_HOOK("sem.gate_looked");
		if (!atomic_compare_exchange_strong(word, &cur,
						    (uint16_t)slots) &&
		    cur != slots)
			return LM_R_KIND;
	} else if (cur != slots) {
		return LM_R_KIND;
	}
	LM_HOOK("sem.gate_claimed");
	/* seq_cst, after our CAS (or the load that found our count): the
	 * other half of a plain grab's owner CAS or group join, then its
	 * load of sem_slots. An owner word of a session (a holder, or one
	 * being granted and about to see us and back off) or a group is a
	 * plain lock's. */
	return held_as_lock(r, gate) ? LM_R_KIND : 0;
}

/* Resolve slot k of t's semaphore (creating its name). */
static int resolve_slot(struct lm_session_ctx *c, struct lm_sem_try *t,
			uint32_t k)
{
	char name[LM_NAME_MAX + 1];
	size_t len = lm_sem_slot_name(t->name, t->len, k, name);
	uint64_t gen;
	int64_t idx = lm_name_resolve(&c->region, name, len, true, c->self,
				      &gen);
	if (idx < 0)
		return (int)idx;
	t->idx[k] = (uint32_t)idx + 1;
	t->gen[k] = gen;
	return 0;
}

/*
 * Name the gate in slot lock's note, before the slot is taken: whoever
 * frees the slot reads it after seeing our owner word (seq_cst both), and
 * wakes the gate's waiters. A store only when it changes: a slot is
 * usually taken again and again for the same gate. Tagged with the
 * life of the slot's name we resolved (gen), and never written over a
 * later life's word: a waiter keeps its slots' indexes for its whole
 * wait, and a slot's name, unused, may be reclaimed meanwhile and its
 * index given to another semaphore's slot. A plain store there named
 * our gate in that slot's note, so its releases woke our gate instead
 * of its own, and its waiters slept until the lease would have ended.
 * (Our own grab then finds the name gone, GRAB_STALE.)
 */
static void name_gate(struct lm_region *r, uint32_t lock, uint64_t gen,
		      uint32_t gate)
{
	_Atomic uint64_t *g = &lm_slot_of(r, 2, lock)->note.gate;
	uint64_t want = LM_GATE_WORD(gen, gate + 1);
	uint64_t cur = atomic_load(g);
	while (cur != want) {
		/* A later life's word (by serial number: lives only
		 * grow) is that name's users' to write. */
		if (cur != 0 &&
		    (int32_t)(LM_GATE_GEN(cur) - (uint32_t)gen) > 0)
			return;
		if (atomic_compare_exchange_weak(g, &cur, want))
			return;
	}
}

enum grab_result lm_sem_attempt(struct lm_session_ctx *c, void *arg,
				struct lm_hold *h, struct grab_info *info)
{
	struct lm_sem_try *t = arg;
	struct lm_region *r = &c->region;
	bool retry = false;
	int64_t busy_until = INT64_MAX;
	uint32_t holder = 0;
	int usable = LM_NSERVERS;
	for (uint32_t k = 0; k < t->slots; k++) {
		for (int tries = 0; tries < 4; tries++) {
			if (t->idx[k] == 0 || t->idx[k] > r->max_locks) {
				int rc = resolve_slot(c, t, k);
				if (rc != 0) {
					t->err = rc;
					return GRAB_DAMAGED;
				}
			}
			uint32_t lock = t->idx[k] - 1;
			name_gate(r, lock, t->gen[k], t->gate);
			LM_HOOK("sem.gate_named");
			struct grab_info in;
			enum grab_result gr = lm_grab(c, lock, t->gen[k],
						      LM_MODE_X_, t->ttl_ms,
						      h, &in);
			usable = in.usable;
			if (gr == GRAB_GRANTED) {
				t->slot = k;
				return GRAB_GRANTED;
			}
			if (gr == GRAB_NOQUORUM) {
				*info = in;
				return GRAB_NOQUORUM;
			}
			if (gr == GRAB_DAMAGED) {
				t->err = LM_R_INCOMPAT;
				return GRAB_DAMAGED;
			}
			if (gr == GRAB_STALE) {
				/* The slot's name was reclaimed while
				 * nobody used it: find it again. */
				t->idx[k] = 0;
				continue;
			}
			if (gr == GRAB_BUSY) {
				if (in.busy_until_ns < busy_until) {
					busy_until = in.busy_until_ns;
					holder = in.holder_session;
				}
				break;
			}
			/* GRAB_RETRY (a restart, a slow attempt) or
			 * GRAB_KIND (a slot's name cannot be a gate's:
			 * damage): try again, then move on. */
			retry = true;
		}
	}
	info->busy_until_ns = busy_until == INT64_MAX ? 0 : busy_until;
	info->holder_session = holder;
	info->usable = usable;
	return retry ? GRAB_RETRY : GRAB_BUSY;
}
