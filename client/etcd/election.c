/*
 * election.c - leader election on etcd, on the lock recipe's keys.
 *
 * The leader is the holder of the election's lock (lock.c): the oldest
 * key under P/lock/<election>/, leased and fenced like any grant. Its
 * value lives in its own key, after the line "pid host" that every
 * waiter's key holds: "pid host\nVALUE". So a value can never outlive
 * its leader (it goes with the key when the lease ends), observers
 * learn the leader and its value from one read, and a campaigner's
 * value is there from the moment its key is, so an observer woken by
 * the grant already reads it (as on shared memory, client/election.c).
 *
 *   lm_campaign   the lock recipe, with the value in the key;
 *   lm_proclaim   one txn: if our key's create revision is still our
 *                 token, put the new value (on the same lease); else
 *                 LM_ELEASELOST. A watch reports it as PROCLAIMED;
 *   lm_resign     lm_release (the key, and the value with it, go);
 *   lm_leader_get one range read of P/lock/<election>/, the oldest key
 *                 first: its pid, create revision (the token) and value;
 *                 version = the read's revision (no change of the
 *                 election is later than it, and any change a watch
 *                 reports after it has a higher version).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shm/clock.h"
#include "etcd.h"

int etcd_campaign(lm_client *c, const char *election, const char *value,
		  int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	return etcd_acquire_value(c, election, value != NULL ? value : "",
				  ttl_ms, wait_ms, g);
}

static json_t *b64str(const char *s)
{
	char *b = etcd_b64(s, strlen(s));
	json_t *j = json_string(b != NULL ? b : "");
	free(b);
	return j;
}

int etcd_proclaim(lm_client *c, lm_grant *g, const char *value)
{
	struct lm_etcd *e = c->etcd;
	struct etcd_grant *gr = etcd_grant_of(e, g);
	if (gr == NULL)
		return LM_ENOTHELD;
	if (gr->sem)
		return LM_EINVAL; /* a semaphore's grant leads nothing */
	if (value == NULL)
		value = "";
	char val[LM_VALUE_MAX + 96];
	etcd_key_value(e, value, val, sizeof(val));
	/* Put on our lease, or the key would outlive it; only while the
	 * key is the one we were granted (a txn sent twice puts the same
	 * value twice: harmless). */
	json_t *cmp = json_pack(
		"[{s:o,s:s,s:s,s:o}]", "key", b64str(gr->key), "target",
		"CREATE", "result", "EQUAL", "create_revision",
		json_sprintf("%llu", (unsigned long long)gr->token));
	json_t *put = json_pack(
		"[{s:{s:o,s:o,s:o}}]", "request_put", "key", b64str(gr->key),
		"value", b64str(val), "lease",
		json_sprintf("%lld", (long long)gr->lease));
	json_t *body = json_pack("{s:o,s:o,s:[]}", "compare", cmp, "success",
				 put, "failure");
	json_t *r;
	int rc = etcd_post(e, "/v3/kv/txn", body,
			   etcd_op_deadline(), &r);
	if (rc != 0)
		return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
	bool ok = json_is_true(json_object_get(r, "succeeded"));
	json_decref(r);
	if (!ok) {
		snprintf(e->detail, sizeof(e->detail),
			 "the lead of token %llu is lost: its key is gone",
			 (unsigned long long)gr->token);
		return LM_ELEASELOST;
	}
	snprintf(gr->value, sizeof(gr->value), "%s", value);
	return 0;
}

int etcd_resign(lm_client *c, lm_grant *g)
{
	return etcd_release(c, g);
}

int etcd_leader_get(lm_client *c, const char *election, lm_leader *out)
{
	struct lm_etcd *e = c->etcd;
	size_t len = strnlen(election, LM_NAME_MAX + 1);
	if (len == 0 || len > LM_NAME_MAX)
		return LM_EBADNAME;
	memset(out, 0, sizeof(*out));
	char lp[ETCD_KEY_MAX], end[ETCD_KEY_MAX];
	etcd_lock_prefix(e, election, lp);
	etcd_prefix_end(lp, end);
	json_t *req = etcd_range_req(lp, end);
	json_object_set_new(req, "sort_target", json_string("CREATE"));
	json_object_set_new(req, "sort_order", json_string("ASCEND"));
	json_object_set_new(req, "limit", json_string("1"));
	json_t *r;
	int rc = etcd_post(e, "/v3/kv/range", req,
			   etcd_op_deadline(), &r);
	if (rc != 0)
		return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
	out->version = (uint64_t)etcd_rev(r);
	json_t *kv = json_array_get(json_object_get(r, "kvs"), 0);
	if (kv == NULL) {
		json_decref(r);
		return LM_ENOLEADER;
	}
	char val[LM_VALUE_MAX + 128];
	if (etcd_kv_bytes(kv, "value", val, sizeof(val)) < 0) {
		json_decref(r);
		snprintf(e->detail, sizeof(e->detail),
			 "the leader's key of '%s' is not lockmgr's", election);
		return LM_EINCOMPAT;
	}
	out->token = (uint64_t)etcd_i64(kv, "create_revision");
	json_decref(r);
	char *nl = strchr(val, '\n');
	if (nl != NULL) {
		snprintf(out->value, sizeof(out->value), "%s", nl + 1);
		*nl = '\0';
	}
	if (sscanf(val, "%d", &out->pid) != 1)
		out->pid = 0;
	return 0;
}
