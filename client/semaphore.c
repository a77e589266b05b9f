/*
 * semaphore.c - counting semaphores (lm_sem_acquire, lockmgr.h).
 *
 * A semaphore of N slots is a gate (the lock named by the semaphore's
 * name, never held: its queue is where waiters wait, and it carries N)
 * and N slot locks, each an ordinary exclusive lock with its own lease
 * and tokens (shm/semaphore.h has the protocol). This file is the
 * session's side: arguments, the pin of the gate (kept while waiting
 * and while holding, so that the gate's slot count stays for as long as
 * anyone uses it), the barging try and the wait in the gate's queue.
 */
#include <stdlib.h>
#include <string.h>

#include "../shm/name_index.h"
#include "../shm/pins.h"
#include "../shm/semaphore.h"
#include "../shm/wait_queue.h"
#include "internal.h"

_Static_assert(LM_SEM_SLOTS_MAX == LM_SEM_SLOTS_MAX_, "slots");
_Static_assert(LM_SEM_SLOTS_MAX_ < 2048u, "a slot fits G_SEM_WORD");
_Static_assert(LM_PINS_MAX < 31u, "a pin entry fits G_SEM_WORD");
_Static_assert(LM_SEM_SLOTS_MAX_ <= UINT16_MAX, "lm_queue.sem_slots");

/* Resolve the gate and pin it: its pin entry, or an LM_E* code. */
static int pin_gate(lm_client *c, const char *name, uint32_t *gate,
		    uint64_t *gen)
{
	for (int tries = 0; tries < 64; tries++) {
		lm_lockref ref;
		int rc = lm_lookup(c, name, &ref);
		if (rc != 0)
			return rc;
		*gate = (uint32_t)REF_IDX(&ref);
		*gen = REF_GEN(&ref);
		int k = lm_pin(&c->ctx, *gate, *gen);
		if (k == LM_PIN_FULL)
			return LM_EPINS;
		if (k >= 0)
			return k;
		/* Reclaimed between the lookup and the pin: again. */
	}
	return LM_ETABLEFULL;
}

/*
 * One acquire: straight to the slots when nobody waits at the gate (or
 * within the barging window, as a lock's newcomer), else a try's
 * LM_EBUSY or a wait in the gate's queue.
 */
static int acquire_slots(lm_client *c, uint32_t gate, uint64_t gen,
			 struct lm_sem_try *t, int64_t wait_ms,
			 int64_t deadline, lm_grant *g)
{
	struct lm_region *r = &c->ctx.region;
	struct grab_info info;
	bool tried = lm_may_barge(r, gate);
	enum grab_result gr = GRAB_BUSY;
	if (tried)
		gr = lm_sem_attempt(&c->ctx, t, grant_hold(g), &info);
	if (gr == GRAB_GRANTED)
		return 0;
	if (gr == GRAB_DAMAGED)
		return t->err;
	if (gr == GRAB_NOQUORUM && wait_ms == 0)
		return lm_client_no_quorum(c);
	if (wait_ms == 0) {
		if (lm_quorum_lost(&c->ctx))
			return lm_client_no_quorum(c);
		/* Counted as waiting, but nobody queued: nobody to
		 * overtake. */
		if (!tried && !lm_queue_has_waiter(r, gate)) {
			gr = lm_sem_attempt(&c->ctx, t, grant_hold(g), &info);
			if (gr == GRAB_GRANTED)
				return 0;
			if (gr == GRAB_DAMAGED)
				return t->err;
		}
		return LM_EBUSY;
	}
	/* Deadlock detection follows holders through the tables, and the
	 * gate has none: a semaphore's waits are not searched. */
	struct lm_turn turn = {
		.attempt = lm_sem_attempt, .arg = t,
		.pass_on = LM_PASS_ALWAYS,
	};
	int rc = lm_wait_turn(&c->ctx, gate, gen, LM_MODE_X_, &turn, deadline,
			      -1, grant_hold(g));
	if (rc == LM_R_INCOMPAT && t->err != 0)
		return t->err;
	if (rc == LM_ENOQUORUM)
		return lm_client_no_quorum(c);
	if (rc == LM_STALE_NAME) /* the gate is pinned: damage */
		return LM_EINCOMPAT;
	return rc;
}

int lm_sem_acquire(lm_client *c, const char *name, uint32_t slots,
		   int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	if (c == NULL || g == NULL || slots == 0 || slots > LM_SEM_SLOTS_MAX)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->sem_acquire(c, name, slots, ttl_ms, wait_ms, g);
	if (name == NULL)
		return LM_EBADNAME;
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	int rc = lm_name_check(name, len);
	if (rc != 0)
		return rc;
	/* Its slots' names are its own and a few bytes more. */
	if (len > LM_SEM_NAME_MAX)
		return LM_EBADNAME;
	rc = lm_client_check_ttl(c, ttl_ms);
	if (rc != 0)
		return rc;
	grant_clear(g);
	int64_t deadline = lm_client_deadline(wait_ms);
	uint32_t gate = 0;
	uint64_t gen = 0;
	int pin = pin_gate(c, name, &gate, &gen);
	if (pin < 0)
		return pin;
	rc = lm_sem_gate_claim(&c->ctx.region, gate, slots);
	if (rc != 0)
		goto out;
	struct lm_sem_try t = {
		.gate = gate, .slots = slots, .name = name, .len = len,
		.ttl_ms = ttl_ms,
		.idx = calloc(slots, sizeof(uint32_t)),
		.gen = calloc(slots, sizeof(uint64_t)),
	};
	if (t.idx == NULL || t.gen == NULL)
		rc = LM_ESYS;
	else
		rc = acquire_slots(c, gate, gen, &t, wait_ms, deadline, g);
	free(t.idx);
	free(t.gen);
	if (rc == 0) {
		/* The pin's tag: this grant's, and no copy's of an earlier
		 * grant that used the entry (lm_client.sem_pin_tag). */
		uint32_t tag = ++c->sem_tag_next;
		if (tag == 0)
			tag = ++c->sem_tag_next;
		c->sem_pin_tag[pin] = tag;
		G_PATH(g) = G_SEM_WORD(t.slot, pin, tag);
	}
out:
	if (rc != 0) {
		lm_unpin(&c->ctx, pin);
		grant_clear(g);
	}
	return rc;
}

int lm_sem_slot(const lm_grant *g)
{
	if (g == NULL || !G_IS_SEM(g))
		return -1;
	return (int)G_SEM_SLOT(g);
}

bool lm_sem_current(const lm_client *c, const lm_grant *g)
{
	int pin = G_SEM_PIN(g);
	return pin >= 0 && pin < (int)LM_PINS_MAX && G_SEM_PINTAG(g) != 0 &&
	       c->sem_pin_tag[pin] == G_SEM_PINTAG(g);
}

void lm_sem_released(lm_client *c, lm_grant *g)
{
	if (!lm_sem_current(c, g))
		return;
	int pin = G_SEM_PIN(g);
	/* After the slot's release (and its wake of the gate's queue):
	 * until then the gate must stay the gate. */
	c->sem_pin_tag[pin] = 0;
	lm_unpin(&c->ctx, pin);
	G_PATH(g) = G_SEM_WORD(G_SEM_SLOT(g), -1, 0);
}
