/*
 * semaphore.c - counting semaphores on etcd (lm_sem_acquire), the lock
 * recipe (lock.c) with N holders instead of one.
 *
 * Keys, for a semaphore <name> of N slots (NNNN: N in 4 decimal digits,
 * so that the keys of every N sort apart and a range compare can find
 * another N's):
 *
 *   P/sem/<name>/NNNN/w/<lease, 16 hex>  one per waiter or holder, on
 *                                         its lease; the N oldest (by
 *                                         create revision) hold
 *   P/sem/<name>/NNNN/s/<slot, 4 digits> the slot (0 .. N-1) a holder
 *                                         took, on the holder's lease
 *
 * acquire(name, N, ttl):
 *  1. grant a lease (as lock.c);
 *  2. one txn: if our key does not exist, no key is under P/lock/<name>/
 *     (the name is not a lock's; lock.c compares the other way) and no
 *     key is under P/sem/<name>/ with another NNNN, put our key. A
 *     failed compare with our key absent is LM_EKIND, as on shared
 *     memory; with our key present, the txn was sent twice;
 *  3. our rank: the keys under .../w/ created before ours (a range with
 *     max_create_revision and limit N: etcd filters, then limits; a
 *     count_only range would count the unfiltered keys). Rank < N
 *     holds. Else a zero wait gives up (LM_EBUSY), and a wait watches
 *     the whole .../w/ range from the revision of that read for a
 *     DELETE, then reads the rank again. Not the key N places ahead
 *     only: the deletion of any key ahead promotes us, and a watch on
 *     one key would sleep through a waiter ahead of it giving up.
 *     Keys behind us are never counted, so waiters are served in the
 *     order of their keys' creation (FIFO). The lease is kept alive
 *     while waiting (a keepalive every TTL/3, as lock.c);
 *  4. after a wait, a keepalive: the lease must still have more than
 *     the drift bound left (as lock.c);
 *  5. the slot: read .../s/, and in one txn, if our key's create
 *     revision is still ours (the check lock.c's step 4 makes) and the
 *     lowest free slot's key does not exist, put it on our lease; a
 *     failed compare with our key still there means another new holder
 *     took that slot first: read again. A free slot always exists: at
 *     most N-1 other keys hold, each with one slot key, and a holder's
 *     keys go in one revision (one release txn, or one lease's end);
 *  6. a timeout or any error deletes our key and revokes the lease.
 *
 * The token is our key's create revision: distinct per holder, and
 * higher for each later grant (of any slot, so of each slot too).
 * lm_sem_slot() gives the slot of step 5. LM_GRANT_RECOVERED is never
 * set: no per-slot record of how the last grant ended is kept (a slot
 * is a number here, not a lock of its own as on shared memory).
 *
 * renew is lock.c's (a keepalive). release: one txn, if our key's
 * create revision is the token, deletes it and the slot's key; then
 * the lease is revoked. A failed compare while our lease still lives
 * means our own delete of a txn sent twice (only a lease's end or our
 * release removes our key); else LM_ELEASELOST.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shm/clock.h"
#include "../../shm/semaphore.h"
#include "etcd.h"

/* lm_grant's private part, as lock.c's, and the slot where
 * lm_sem_slot() reads it (G_PATH, internal.h: no pin on etcd). */
#define EG_LIVE(g)  ((g)->private_u32_[0])
#define EG_LEASE(g) ((g)->private_[0])
#define EG_ID(g)    ((g)->private_[1])
#define ETCD_GRANT_LIVE 0x65746364u /* "etcd" */

static int lm_err(int rc)
{
	return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Keys created before revision `mine` under wp, at most `limit`. */
static int rank_of(struct lm_etcd *e, const char *wp, int64_t mine,
		   uint32_t limit, int64_t deadline, size_t *rank,
		   int64_t *rev)
{
	char end[ETCD_KEY_MAX + 24];
	etcd_prefix_end(wp, end);
	json_t *req = etcd_range_req(wp, end);
	json_object_set_new(req, "keys_only", json_true());
	json_object_set_new(req, "max_create_revision",
			    etcd_i64str(mine - 1));
	json_object_set_new(req, "limit", etcd_i64str(limit));
	json_t *r;
	int rc = etcd_post(e, "/v3/kv/range", req, deadline, &r);
	if (rc != 0)
		return rc;
	*rank = json_array_size(json_object_get(r, "kvs"));
	*rev = etcd_rev(r);
	json_decref(r);
	return 0;
}

/* Step 5: take the lowest free slot. 0 and *slot, LM_ELEASELOST if our
 * key is gone, or an error. */
static int take_slot(struct lm_etcd *e, const char *base, uint32_t slots,
		     struct etcd_grant *gr, int64_t lease, int64_t deadline,
		     uint32_t *slot)
{
	char sp[ETCD_KEY_MAX + 24], end[ETCD_KEY_MAX + 24];
	snprintf(sp, sizeof(sp), "%ss/", base);
	etcd_prefix_end(sp, end);
	size_t spl = strlen(sp);
	bool *used = calloc(slots, sizeof(bool));
	if (used == NULL)
		return LM_ESYS;
	int rc;
	for (;;) {
		json_t *req = etcd_range_req(sp, end), *r;
		json_object_set_new(req, "keys_only", json_true());
		rc = etcd_post(e, "/v3/kv/range", req, deadline, &r);
		if (rc != 0)
			break;
		memset(used, 0, slots * sizeof(bool));
		size_t k;
		json_t *kv;
		json_array_foreach(json_object_get(r, "kvs"), k, kv) {
			char key[ETCD_KEY_MAX];
			unsigned s;
			if (etcd_kv_bytes(kv, "key", key, sizeof(key)) > 0 &&
			    strncmp(key, sp, spl) == 0 &&
			    sscanf(key + spl, "%4u", &s) == 1 && s < slots)
				used[s] = true;
		}
		json_decref(r);
		uint32_t s = 0;
		while (s < slots && used[s])
			s++;
		if (s == slots) {
			/* Impossible while at most N hold (see above). */
			snprintf(e->detail, sizeof(e->detail),
				 "all %u slots of the semaphore are taken "
				 "by others while we hold: keys not "
				 "lockmgr's?", slots);
			rc = LM_EINCOMPAT;
			break;
		}
		snprintf(gr->slot_key, sizeof(gr->slot_key), "%s%04hu", sp,
			 (unsigned short)s);
		char tok[32];
		snprintf(tok, sizeof(tok), "%" PRIu64, gr->token);
		rc = etcd_txn(e,
			      json_pack("[o,o]",
					etcd_cmp_create(gr->key,
							(int64_t)gr->token),
					etcd_cmp_create(gr->slot_key, 0)),
			      json_pack("[o]",
					etcd_op_put(gr->slot_key, tok, lease)),
			      json_pack("[o,o]",
					etcd_op_range(etcd_range_req(
						gr->key, NULL)),
					etcd_op_range(etcd_range_req(
						gr->slot_key, NULL))),
			      deadline, &r);
		if (rc != 0)
			break;
		bool ok = json_is_true(json_object_get(r, "succeeded"));
		int64_t mine = etcd_i64(etcd_txn_kv(r, 0), "create_revision");
		char val[32] = "";
		etcd_kv_bytes(etcd_txn_kv(r, 1), "value", val, sizeof(val));
		json_decref(r);
		/* A txn sent twice finds the slot key it put itself. */
		if (ok || (mine == (int64_t)gr->token && strcmp(val, tok) == 0)) {
			*slot = s;
			break;
		}
		if (mine != (int64_t)gr->token) {
			rc = LM_ELEASELOST;
			break;
		}
		/* Another new holder took slot s first: look again. */
	}
	free(used);
	return rc;
}

/* One try with a fresh lease (lock.c's acquire_once, for N holders). */
static int sem_once(lm_client *c, const char *name, uint32_t slots,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadline,
		    lm_grant *g)
{
	struct lm_etcd *e = c->etcd;
	struct etcd_grant *gr = calloc(1, sizeof(*gr));
	if (gr == NULL)
		return LM_ESYS;
	gr->sem = true;
	/* (Sized for what the compiler can prove, not for the longest
	 * real key, ETCD_KEY_MAX.) */
	char np[ETCD_KEY_MAX], np_end[ETCD_KEY_MAX], base[ETCD_KEY_MAX + 16],
		base_end[ETCD_KEY_MAX + 16], wp[ETCD_KEY_MAX + 24],
		lp[ETCD_KEY_MAX], lp_end[ETCD_KEY_MAX];
	etcd_sem_prefix(e, name, np);
	etcd_prefix_end(np, np_end);
	snprintf(base, sizeof(base), "%s%04hu/", np, (unsigned short)slots);
	etcd_prefix_end(base, base_end);
	snprintf(wp, sizeof(wp), "%sw/", base);
	etcd_lock_prefix(e, name, lp);
	etcd_prefix_end(lp, lp_end);
	int64_t op_deadline = etcd_op_deadline();
	int64_t t0 = lm_now_ns();
	int64_t ttl_s = (ttl_ms + 999) / 1000, lease_ttl, lease = 0;
	json_t *r = NULL;
	int rc = etcd_lease_grant(e, ttl_s, op_deadline, &lease, &lease_ttl);
	if (rc != 0) {
		free(gr);
		return lm_err(rc);
	}
	snprintf(gr->key, sizeof(gr->key), "%s%016" PRIx64, wp,
		 (uint64_t)lease);
	char val[LM_VALUE_MAX + 96];
	etcd_key_value(e, NULL, val, sizeof(val));

	/* 2: our key, if the name is no lock's nor another N's. */
	rc = etcd_txn(e,
		      json_pack("[o,o,o,o]", etcd_cmp_create(gr->key, 0),
				etcd_cmp_none(lp, lp_end),
				etcd_cmp_none(np, base),
				etcd_cmp_none(base_end, np_end)),
		      json_pack("[o]", etcd_op_put(gr->key, val, lease)),
		      json_pack("[o]",
				etcd_op_range(etcd_range_req(gr->key, NULL))),
		      op_deadline, &r);
	if (rc != 0)
		goto fail;
	bool put = json_is_true(json_object_get(r, "succeeded"));
	int64_t mine = put ? etcd_rev(r)
			   : etcd_i64(etcd_txn_kv(r, 0), "create_revision");
	json_decref(r);
	r = NULL;
	if (mine == 0) {
		snprintf(e->detail, sizeof(e->detail),
			 "'%s' is in use as a lock or as a semaphore of "
			 "another slot count than %u", name, slots);
		rc = LM_EKIND;
		goto fail;
	}
	gr->token = (uint64_t)mine;

	/* 3: wait for a rank below N. */
	bool waited = false;
	int64_t interval = lease_ttl * 1000000000 / 3;
	int64_t next_ka = t0 + interval;
	for (;;) {
		size_t rank;
		int64_t rev;
		rc = rank_of(e, wp, mine, slots, op_deadline, &rank, &rev);
		if (rc != 0)
			goto fail;
		if (rank < slots)
			break;
		if (wait_ms == 0) {
			rc = LM_EBUSY;
			goto fail;
		}
		waited = true;
		int64_t from = rev + 1;
		char w_end[ETCD_KEY_MAX + 24];
		etcd_prefix_end(wp, w_end);
		for (;;) {
			bool deleted = false;
			rc = etcd_watch(e, e->curl, wp, w_end, &from,
					min64(deadline, next_ka), NULL,
					etcd_on_delete, &deleted);
			if (rc == 0)
				break; /* a delete (or canceled): rank again */
			if (rc != LM_ETIMEDOUT)
				goto fail;
			if (lm_now_ns() >= deadline)
				goto fail;
			int64_t ttl;
			rc = etcd_lease_keepalive(e, lease, etcd_op_deadline(),
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
	/* 4: time left on the lease after a wait? */
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
	/* 5: the slot, our key checked in the same txn. */
	uint32_t slot = 0;
	rc = take_slot(e, base, slots, gr, lease, op_deadline, &slot);
	if (rc != 0)
		goto fail;
	gr->id = ++e->next_id;
	gr->lease = lease;
	gr->lease_ttl_s = lease_ttl;
	gr->next = e->grants;
	e->grants = gr;
	memset(g, 0, sizeof(*g));
	g->token = (uint64_t)mine;
	g->valid_until_ns = t0 + (min64(ttl_ms, lease_ttl * 1000) -
				  lm_drift_ms(ttl_ms)) * 1000000;
	g->mode = LM_MODE_X;
	EG_LIVE(g) = ETCD_GRANT_LIVE;
	EG_LEASE(g) = (uint64_t)lease;
	EG_ID(g) = gr->id;
	G_PATH(g) = G_SEM_WORD(slot, -1, 0);
	return 0;
fail:
	json_decref(r);
	etcd_give_up(e, gr->key, lease);
	free(gr);
	return lm_err(rc);
}

int etcd_sem_acquire(lm_client *c, const char *name, uint32_t slots,
		     int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	/* lm_sem_acquire checked c, g and slots. */
	EG_LIVE(g) = 0; /* a failed acquire leaves nothing to release */
	if (name == NULL)
		return LM_EBADNAME;
	/* The same longest name as on shared memory, so that a name that
	 * works on one backend works on the other. */
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	if (len == 0 || len > LM_SEM_NAME_MAX)
		return LM_EBADNAME;
	if (ttl_ms < LM_MIN_TTL_MS || ttl_ms > ETCD_MAX_TTL_MS)
		return LM_EBADTTL;
	int64_t deadline = wait_ms < 0 || wait_ms > INT64_C(3153600000000)
				   ? INT64_MAX
			   : wait_ms == 0 ? 0
					  : lm_now_ns() + wait_ms * 1000000;
	for (;;) {
		int rc = sem_once(c, name, slots, ttl_ms, wait_ms, deadline, g);
		/* Our key vanished while we waited: start over while the
		 * wait lasts (as lock.c). */
		if (rc != LM_ELEASELOST)
			return rc;
		if (wait_ms == 0 || lm_now_ns() >= deadline)
			return wait_ms == 0 ? LM_EBUSY : LM_ETIMEDOUT;
	}
}

int etcd_sem_release(struct lm_etcd *e, struct etcd_grant *gr)
{
	int64_t deadline = etcd_op_deadline();
	json_t *r;
	int rc = etcd_txn(
		e, json_pack("[o]", etcd_cmp_create(gr->key, (int64_t)gr->token)),
		json_pack("[o,o]",
			  json_pack("{s:o}", "request_delete_range",
				    etcd_range_req(gr->key, NULL)),
			  json_pack("{s:o}", "request_delete_range",
				    etcd_range_req(gr->slot_key, NULL))),
		json_array(), deadline, &r);
	if (rc != 0)
		return lm_err(rc);
	bool ok = json_is_true(json_object_get(r, "succeeded"));
	json_decref(r);
	if (!ok) {
		/* Our key is gone: by our own delete (a txn sent twice)
		 * if the lease still lives, by the lease's end if not. */
		int64_t ttl = -1;
		if (etcd_lease_ttl(e, gr->lease, deadline, &ttl) == 0 &&
		    ttl > 0)
			ok = true;
	}
	return ok ? 0 : LM_ELEASELOST;
}
