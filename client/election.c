/*
 * election.c - leader election on a lock (lm_campaign, lockmgr.h).
 *
 * The leader is the X holder of the election's lock: leased, fenced and
 * freed on death like any grant, so "at most one leader with a running
 * lease" is the lock's own guarantee. What the leader proclaims lives in
 * its session slot (lm_session.value, a seqlock that only the session
 * writes), naming the election it is for: an observer finds the holder
 * through the lock and reads the holder's value, and a value can never
 * outlive its leader's session. The value is written before the acquire,
 * so that observers woken by the grant already read it.
 */
#include <stdatomic.h>
#include <string.h>

#include "../shm/clock.h"
#include "../shm/holders.h"
#include "../shm/name_index.h"
#include "../shm/test_hook.h"
#include "../shm/watch.h"
#include "internal.h"
#include "lockmgr.h"

/* Write our value for election lock index + 1 `lock1` (0: none). */
static void value_write(struct lm_session *s, uint32_t lock1, const char *v,
			size_t len)
{
	uint64_t words[LM_VALUE_WORDS] = { 0 };
	memcpy(words, v, len);
	uint32_t seq = atomic_load_explicit(&s->value_seq, memory_order_relaxed);
	atomic_store_explicit(&s->value_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->value_lock, lock1, memory_order_relaxed);
	atomic_store_explicit(&s->value_len, (uint32_t)len,
			      memory_order_relaxed);
	for (unsigned k = 0; k < LM_VALUE_WORDS; k++)
		atomic_store_explicit(&s->value[k], words[k],
				      memory_order_relaxed);
	atomic_store_explicit(&s->value_seq, seq + 2, memory_order_release);
}

/* Read session s's value if it is for lock index + 1 `lock1`. */
static void value_read(const struct lm_session *s, uint32_t lock1, char *out)
{
	out[0] = '\0';
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t seq = atomic_load_explicit(&s->value_seq,
						    memory_order_acquire);
		if (seq & 1u)
			continue;
		uint64_t words[LM_VALUE_WORDS];
		uint32_t l = atomic_load_explicit(&s->value_lock,
						  memory_order_relaxed);
		uint32_t len = atomic_load_explicit(&s->value_len,
						    memory_order_relaxed);
		for (unsigned k = 0; k < LM_VALUE_WORDS; k++)
			words[k] = atomic_load_explicit(&s->value[k],
							memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->value_seq, memory_order_relaxed) !=
		    seq)
			continue;
		if (l != lock1 || len > LM_VALUE_MAX)
			return;
		memcpy(out, words, len);
		out[len] = '\0';
		return;
	}
}

static int value_check(const char *value, size_t *len)
{
	if (value == NULL)
		value = "";
	*len = strnlen(value, LM_VALUE_MAX + 1);
	return *len > LM_VALUE_MAX ? LM_EINVAL : 0;
}

int lm_campaign(lm_client *c, const char *election, const char *value,
		int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	size_t len;
	if (c == NULL || g == NULL || value_check(value, &len) != 0)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->campaign(c, election, value, ttl_ms, wait_ms, g);
	if (value == NULL)
		value = "";
	lm_lockref ref;
	int rc = lm_lookup(c, election, &ref);
	if (rc != 0)
		return rc;
	uint32_t lock = (uint32_t)REF_IDX(&ref);
	/* A failed campaign puts back what we proclaimed before: we may
	 * lead this election already, or another one. */
	char had[LM_VALUE_MAX + 1] = "";
	uint32_t had_lock = atomic_load(&c->ctx.self->value_lock);
	if (had_lock != 0)
		value_read(c->ctx.self, had_lock, had);
	value_write(c->ctx.self, lock + 1, value, len);
	rc = lm_acquire_ref(c, &ref, ttl_ms, wait_ms, g);
	if (rc != 0) {
		value_write(c->ctx.self, had_lock, had, strlen(had));
		return rc;
	}
	if (G_LOCK(g) != lock) /* the name moved while we waited */
		return lm_proclaim(c, g, value);
	return 0;
}

int lm_proclaim(lm_client *c, lm_grant *g, const char *value)
{
	size_t len;
	if (c == NULL || g == NULL || value_check(value, &len) != 0)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->proclaim(c, g, value);
	if (grant_live(g) != LM_HOLD_LIVE || g->mode != LM_MODE_X)
		return LM_ENOTHELD;
	if (value == NULL)
		value = "";
	value_write(c->ctx.self, G_LOCK(g) + 1, value, len);
	lm_lock_changed(&c->ctx.region, G_LOCK(g), LM_CHANGE_PROCLAIMED,
			LM_MODE_X_, LM_SESS_PID(c->ctx.life), g->token);
	return 0;
}

int lm_resign(lm_client *c, lm_grant *g)
{
	if (c == NULL || g == NULL)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->resign(c, g);
	uint32_t lock = G_LOCK(g);
	int rc = lm_release(c, g);
	if (atomic_load(&c->ctx.self->value_lock) == lock + 1)
		value_write(c->ctx.self, 0, "", 0);
	return rc;
}

int lm_leader_get(lm_client *c, const char *election, lm_leader *out)
{
	if (c == NULL || out == NULL)
		return LM_EINVAL;
	if (election == NULL)
		return LM_EBADNAME;
	if (LM_BACKEND(c) != NULL)
		return c->be->leader_get(c, election, out);
	size_t len = strnlen(election, LM_NAME_MAX + 1);
	int rc = lm_name_check(election, len);
	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	struct lm_region *r = &c->ctx.region;
	int64_t idx = lm_name_lookup(r, election, len, 0);
	if (idx < 0)
		return idx == LM_R_NOTHELD ? LM_ENOLEADER : (int)idx;
	uint32_t lock = (uint32_t)idx;
	/* The value is read after the holder: look again, so that one
	 * term's pid and token never go out with another term's value (a
	 * session that lost the lead and won it back with a new value). */
	for (int tries = 0; tries < 100; tries++) {
		out->version = lm_lock_version(r, lock);
		struct lm_lock_view v, again;
		lm_lock_look(r, lock, lm_now_ns(), &v);
		if (v.holders == 0 || v.mode != LM_MODE_X_)
			return LM_ENOLEADER;
		LM_HOOK("leader.looked");
		value_read(&r->sessions[v.session], lock + 1, out->value);
		lm_lock_look(r, lock, lm_now_ns(), &again);
		if (again.holders != 0 && again.mode == LM_MODE_X_ &&
		    again.session == v.session && again.token == v.token) {
			out->pid = v.pid;
			out->token = v.token;
			return 0;
		}
	}
	return LM_EBUSY; /* the lead changes faster than we can read it */
}
