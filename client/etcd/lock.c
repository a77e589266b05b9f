/*
 * lock.c - the lock recipe on etcd (etcd's client-side mutex, checked).
 *
 * acquire(name, ttl):
 *  1. grant a lease of ttl rounded up to whole seconds (etcd may raise
 *     it to its minimum: the TTL it answers counts);
 *  2. one txn: if P/lock/<name>/<lease> does not exist and no key is
 *     under P/sem/<name>/ (else LM_EKIND: the name is a semaphore's,
 *     semaphore.c), put it (attached to the lease, value "pid host");
 *     in both branches read it back and
 *     read the lowest-created key under P/lock/<name>/ (the owner). The
 *     key's create revision is the waiter's place and, once it holds,
 *     its fencing token. Sending the txn twice is harmless: the second
 *     finds the key and reads its create revision;
 *  3. if an older key exists: a zero wait deletes ours and says
 *     LM_EBUSY; otherwise watch the newest older key (the predecessor)
 *     for its deletion from the revision of the read that found it, so
 *     that no deletion is missed, then look again (the predecessor may
 *     have been a waiter that gave up); FIFO by create revision, never
 *     a poll. The wait keeps our lease alive (a keepalive every TTL/3,
 *     between two watch streams resumed from the same revision);
 *  4. once no older key exists: a keepalive (the lease must still be
 *     there, with more than the drift bound left: the check etcd 3.4's
 *     /v3/lock/lock skips), then one txn: if our key's create revision
 *     is still our token, read and set P/last/<name> = "held <token>".
 *     The grant is valid until (time before the keepalive, or before
 *     the lease grant if nothing was waited for) + min(ttl, lease TTL)
 *     - drift bound, on CLOCK_MONOTONIC;
 *  5. a timeout or any error deletes our key and revokes the lease.
 *
 * LM_GRANT_RECOVERED: P/last/<name> says "held T" with T not ours when
 * we take over, that is, the last holder's key went away without its
 * release, which writes "released T" in the txn that deletes the key.
 * (The deletion events of a release and of a lease expiry are the same
 * DELETE, and the lease is revoked right after a release, so neither the
 * event nor the lease's timetolive can tell them apart.) A holder that
 * dies between its step 2 and its step 4 leaves "released"/"held" of
 * the one before: it never used the lock, so nothing is half-written.
 *
 * renew: a keepalive; no TTL in the answer means the lease, and so the
 * key, is gone: LM_ELEASELOST.
 * release: one txn: if the key's create revision is the token, delete
 * it and write "released <token>"; else LM_ELEASELOST (a newer holder's
 * key is never touched). Then revoke the lease.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "etcd.h"

/* lm_grant's private part, for this backend. */
#define EG_LIVE(g)  ((g)->private_u32_[0])
#define EG_LEASE(g) ((g)->private_[0])
#define EG_ID(g)    ((g)->private_[1])
#define ETCD_GRANT_LIVE 0x65746364u /* "etcd" */

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

void etcd_key_value(const struct lm_etcd *e, const char *value, char *out,
		    size_t n)
{
	snprintf(out, n, "%d %s\n%s", e->pid, e->host,
		 value != NULL ? value : "");
}

struct etcd_grant *etcd_grant_of(struct lm_etcd *e, const lm_grant *g)
{
	if (EG_LIVE(g) != ETCD_GRANT_LIVE)
		return NULL;
	for (struct etcd_grant *r = e->grants; r != NULL; r = r->next)
		if (r->id == EG_ID(g) && (uint64_t)r->lease == EG_LEASE(g) &&
		    r->token == g->token)
			return r;
	return NULL;
}

static void forget(struct lm_etcd *e, struct etcd_grant *gr)
{
	for (struct etcd_grant **p = &e->grants; *p != NULL; p = &(*p)->next)
		if (*p == gr) {
			*p = gr->next;
			free(gr);
			return;
		}
}

/* ETCD_EGRPC is for this file only: etcd refused a request. */
static int lm_err(int rc)
{
	return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
}

/* Delete our key (if it is still ours) and revoke the lease: a waiter
 * that gives up leaves nothing for the others to wait on. */
void etcd_give_up(struct lm_etcd *e, const char *key, int64_t lease)
{
	int64_t deadline = etcd_op_deadline();
	json_t *r;
	if (etcd_post(e, "/v3/kv/deleterange", etcd_range_req(key, NULL),
		      deadline, &r) == 0)
		json_decref(r);
	/* If even that failed, the lease's end removes the key. */
	etcd_lease_revoke(e, lease, deadline);
}

bool etcd_on_delete(void *arg, json_t *result)
{
	bool *deleted = arg;
	size_t k;
	json_t *ev;
	json_array_foreach(json_object_get(result, "events"), k, ev) {
		if (json_is_string(json_object_get(ev, "type")) &&
		    strcmp(json_string_value(json_object_get(ev, "type")),
			   "DELETE") == 0)
			*deleted = true;
	}
	return *deleted;
}

/* One try of the recipe with a fresh lease. LM_ELEASELOST means our key
 * went away while we waited: the caller may start over. */
static int acquire_once(lm_client *c, const char *name, const char *value,
			int64_t ttl_ms, int64_t wait_ms, int64_t deadline,
			lm_grant *g)
{
	struct lm_etcd *e = c->etcd;
	struct etcd_grant *gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return LM_ESYS;
	char lp[ETCD_KEY_MAX];
	etcd_lock_prefix(e, name, lp);
	etcd_last_key(e, name, gr->last);
	if (value != NULL)
		snprintf(gr->value, sizeof(gr->value), "%s", value);
	int64_t op_deadline = etcd_op_deadline();
	int64_t t0 = lm_now_ns();
	int64_t ttl_s = (ttl_ms + 999) / 1000, lease_ttl;
	int64_t lease = 0;
	json_t *r = NULL;
	int rc = etcd_lease_grant(e, ttl_s, op_deadline, &lease, &lease_ttl);
	if (rc != 0) {
		free(gr);
		return lm_err(rc);
	}
	snprintf(gr->key, sizeof(gr->key), "%s%016" PRIx64, lp,
		 (uint64_t)lease);
	char val[LM_VALUE_MAX + 96];
	etcd_key_value(e, value, val, sizeof(val));

	/* 2: our key, and the owner; not while the name is a semaphore's
	 * (its keys are under P/sem/<name>/, semaphore.c), in the same
	 * txn, so that a name is never both at once. */
	char sp[ETCD_KEY_MAX], sp_end[ETCD_KEY_MAX];
	etcd_sem_prefix(e, name, sp);
	etcd_prefix_end(sp, sp_end);
	rc = etcd_txn(e, json_pack("[o,o]", etcd_cmp_create(gr->key, 0),
				   etcd_cmp_none(sp, sp_end)),
		 json_pack("[o,o]", etcd_op_put(gr->key, val, lease),
			   etcd_op_range(etcd_owner_range(lp, 0))),
		 json_pack("[o,o]", etcd_op_range(etcd_range_req(gr->key, NULL)),
			   etcd_op_range(etcd_owner_range(lp, 0))),
		 op_deadline, &r);
	if (rc != 0)
		goto fail;
	bool put = json_is_true(json_object_get(r, "succeeded"));
	int64_t mine = put ? etcd_rev(r)
			   : etcd_i64(etcd_txn_kv(r, 0), "create_revision");
	int64_t owner = etcd_i64(etcd_txn_kv(r, 1), "create_revision");
	json_decref(r);
	r = NULL;
	if (mine == 0) {
		/* Not put, and not there from a txn sent twice: the
		 * semaphore's compare failed. */
		snprintf(e->detail, sizeof(e->detail),
			 "'%s' is in use as a semaphore", name);
		rc = LM_EKIND;
		goto fail;
	}
	bool waited = false;
	if (owner != mine) {
		if (wait_ms == 0) {
			rc = LM_EBUSY;
			goto fail;
		}
		/* 3: wait for every older key to go, newest first. */
		int64_t interval = lease_ttl * 1000000000 / 3;
		int64_t next_ka = t0 + interval;
		for (;;) {
			rc = etcd_post(e, "/v3/kv/range",
				       etcd_owner_range(lp, mine), op_deadline, &r);
			if (rc != 0)
				goto fail;
			json_t *kv = json_array_get(json_object_get(r, "kvs"),
						    0);
			char pred[ETCD_KEY_MAX];
			if (kv == NULL) {
				json_decref(r);
				r = NULL;
				break;
			}
			if (etcd_kv_bytes(kv, "key", pred, sizeof(pred)) < 0) {
				rc = LM_EINCOMPAT;
				goto fail;
			}
			int64_t from = etcd_rev(r) + 1;
			json_decref(r);
			r = NULL;
			waited = true;
			for (;;) {
				bool d = false;
				int64_t until = min64(deadline, next_ka);
				rc = etcd_watch(e, c->etcd->curl, pred, NULL,
						&from, until, NULL, etcd_on_delete,
						&d);
				if (rc == 0)
					break; /* deleted (or canceled): look */
				if (rc != LM_ETIMEDOUT)
					goto fail;
				if (lm_now_ns() >= deadline) {
					rc = LM_ETIMEDOUT;
					goto fail;
				}
				int64_t ttl;
				rc = etcd_lease_keepalive(e, lease,
							  etcd_op_deadline(),
							  &ttl);
				if (rc != 0)
					goto fail;
				if (ttl <= 0) {
					rc = LM_ELEASELOST;
					goto fail;
				}
				next_ka = lm_now_ns() + interval;
			}
			op_deadline = etcd_op_deadline();
		}
	}
	/* 4: still ours, and time left on the lease? */
	if (waited) {
		t0 = lm_now_ns();
		rc = etcd_lease_keepalive(e, lease, op_deadline, &lease_ttl);
		if (rc != 0)
			goto fail;
		if (lease_ttl * 1000 <= lm_drift_ms(ttl_ms)) {
			rc = LM_ELEASELOST;
			goto fail;
		}
	}
	/* The range runs before the put in the txn: it reads how the
	 * last grant ended. */
	char held[64];
	snprintf(held, sizeof(held), "held %lld", (long long)mine);
	rc = etcd_txn(e, json_pack("[o]", etcd_cmp_create(gr->key, mine)),
		 json_pack("[o,o]", etcd_op_range(etcd_range_req(gr->last, NULL)),
			   etcd_op_put(gr->last, held, 0)),
		 json_array(), op_deadline, &r);
	if (rc != 0)
		goto fail;
	if (!json_is_true(json_object_get(r, "succeeded"))) {
		rc = LM_ELEASELOST;
		goto fail;
	}
	char last[64];
	bool recovered = false;
	if (etcd_kv_bytes(etcd_txn_kv(r, 0), "value", last, sizeof(last)) > 0) {
		unsigned long long t;
		recovered = sscanf(last, "held %llu", &t) == 1 &&
			    t != (unsigned long long)mine;
	}
	json_decref(r);
	r = NULL;
	gr->id = ++e->next_id;
	gr->lease = lease;
	gr->token = (uint64_t)mine;
	gr->lease_ttl_s = lease_ttl;
	gr->next = e->grants;
	e->grants = gr;
	memset(g, 0, sizeof(*g));
	g->token = (uint64_t)mine;
	g->valid_until_ns = t0 + (min64(ttl_ms, lease_ttl * 1000) -
				  lm_drift_ms(ttl_ms)) * 1000000;
	g->flags = recovered ? LM_GRANT_RECOVERED : 0;
	g->mode = LM_MODE_X;
	EG_LIVE(g) = ETCD_GRANT_LIVE;
	EG_LEASE(g) = (uint64_t)lease;
	EG_ID(g) = gr->id;
	return 0;
fail:
	json_decref(r);
	etcd_give_up(e, gr->key, lease);
	free(gr);
	return lm_err(rc);
}

static int check_name(const char *name)
{
	if (name == NULL)
		return LM_EBADNAME;
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	return len == 0 || len > LM_NAME_MAX ? LM_EBADNAME : 0;
}

int etcd_acquire_value(lm_client *c, const char *name, const char *value,
		       int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	if (c == NULL || g == NULL)
		return LM_EINVAL;
	EG_LIVE(g) = 0; /* a failed acquire leaves nothing to release */
	int rc = check_name(name);
	if (rc != 0)
		return rc;
	if (ttl_ms < LM_MIN_TTL_MS || ttl_ms > ETCD_MAX_TTL_MS)
		return LM_EBADTTL;
	int64_t deadline = wait_ms < 0 || wait_ms > INT64_C(3153600000000)
				   ? INT64_MAX
			   : wait_ms == 0 ? 0
					  : lm_now_ns() + wait_ms * 1000000;
	for (;;) {
		rc = acquire_once(c, name, value, ttl_ms, wait_ms, deadline, g);
		/* Our key vanished while we waited (a lease that could not
		 * be kept alive): start over while the wait lasts. */
		if (rc != LM_ELEASELOST)
			return rc;
		if (wait_ms == 0 || lm_now_ns() >= deadline)
			return wait_ms == 0 ? LM_EBUSY : LM_ETIMEDOUT;
	}
}

int etcd_acquire(lm_client *c, const char *name, uint32_t mode,
		 int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		 lm_grant *g)
{
	if (g != NULL)
		EG_LIVE(g) = 0;
	if (mode >= LM_MODE_COUNT)
		return LM_EINVAL;
	/* Shared and intention modes, and a deadlock search, are not
	 * there on etcd: say so rather than take X instead. */
	if (mode != LM_MODE_X || deadlock_ms > 0) {
		snprintf(c->etcd->detail, sizeof(c->etcd->detail),
			 "%s", mode != LM_MODE_X
				       ? "the etcd backend has only mode X"
				       : "the etcd backend has no deadlock "
					 "detection (deadlock_timeout_ms)");
		return LM_ENOTSUP;
	}
	return etcd_acquire_value(c, name, NULL, ttl_ms, wait_ms, g);
}

int etcd_renew(lm_client *c, lm_grant *g, int64_t ttl_ms)
{
	struct etcd_grant *gr = etcd_grant_of(c->etcd, g);
	if (gr == NULL)
		return LM_ENOTHELD;
	if (ttl_ms < LM_MIN_TTL_MS || ttl_ms > ETCD_MAX_TTL_MS)
		return LM_EBADTTL;
	int64_t t0 = lm_now_ns(), ttl;
	int rc = etcd_lease_keepalive(c->etcd, gr->lease,
				      t0 + (int64_t)ETCD_OP_MS * 1000000, &ttl);
	if (rc != 0)
		return lm_err(rc);
	if (ttl <= 0)
		return LM_ELEASELOST; /* etcd ended the lease: key gone */
	gr->lease_ttl_s = ttl;
	g->valid_until_ns =
		t0 + (min64(ttl_ms, ttl * 1000) - lm_drift_ms(ttl_ms)) * 1000000;
	return 0;
}

int etcd_release(lm_client *c, lm_grant *g)
{
	struct lm_etcd *e = c->etcd;
	struct etcd_grant *gr = etcd_grant_of(e, g);
	if (gr == NULL)
		return LM_ENOTHELD;
	if (gr->sem) {
		int rc = etcd_sem_release(e, gr);
		if (rc == 0 || rc == LM_ELEASELOST) {
			etcd_lease_revoke(e, gr->lease,
					  etcd_op_deadline());
			EG_LIVE(g) = 0;
			forget(e, gr);
		}
		return rc;
	}
	int64_t deadline = etcd_op_deadline();
	char released[64];
	snprintf(released, sizeof(released), "released %" PRIu64, gr->token);
	json_t *r;
	int rc = etcd_txn(e, json_pack("[o]", etcd_cmp_create(gr->key, (int64_t)gr->token)),
		     json_pack("[o,o]",
			       json_pack("{s:o}", "request_delete_range",
					 etcd_range_req(gr->key, NULL)),
			       etcd_op_put(gr->last, released, 0)),
		     json_pack("[o]", etcd_op_range(etcd_range_req(gr->last, NULL))),
		     deadline, &r);
	if (rc == 0) {
		char last[64] = "";
		bool ok = json_is_true(json_object_get(r, "succeeded"));
		/* A txn sent twice (the first answer lost with its
		 * connection) fails its compare the second time: our own
		 * "released" mark says it was ours. */
		if (!ok && etcd_kv_bytes(etcd_txn_kv(r, 0), "value", last,
					 sizeof(last)) > 0 &&
		    strcmp(last, released) == 0)
			ok = true;
		json_decref(r);
		rc = ok ? 0 : LM_ELEASELOST;
	}
	if (rc == 0 || rc == LM_ELEASELOST) {
		etcd_lease_revoke(e, gr->lease, deadline);
		EG_LIVE(g) = 0;
		forget(e, gr);
	}
	return lm_err(rc);
}

void etcd_release_all(lm_client *c)
{
	while (c->etcd->grants != NULL) {
		struct etcd_grant *gr = c->etcd->grants;
		lm_grant g;
		memset(&g, 0, sizeof(g));
		g.token = gr->token;
		EG_LIVE(&g) = ETCD_GRANT_LIVE;
		EG_LEASE(&g) = (uint64_t)gr->lease;
		EG_ID(&g) = gr->id;
		if (etcd_release(c, &g) != 0 && etcd_grant_of(c->etcd, &g))
			forget(c->etcd, gr); /* unreachable: the lease ends */
	}
}
