/*
 * lease.c - etcd leases: grant, keepalive, timetolive, revoke.
 *
 * A lease's TTL is whole seconds, and etcd raises one below its minimum
 * (1.5 election timeouts, rounded up: 2 s with etcd's defaults) to that
 * minimum; the TTL it answers is the one that counts. Its clock is the
 * leader's, started when the leader applies the grant or keepalive, so
 * a deadline measured here from before the request ends no later than
 * the lease (less the drift bound for clocks that run at other rates).
 * A new leader extends every lease by an election timeout: leases only
 * ever last longer than this side counts, never shorter.
 *
 * Sending any of these twice is harmless: a second grant leaves a spare
 * lease that ends by itself, a second keepalive or revoke does what the
 * first did.
 */
#include <stdio.h>

#include "etcd.h"

static json_t *id_req(int64_t id)
{
	return json_pack("{s:o}", "ID", json_sprintf("%lld", (long long)id));
}

int etcd_lease_grant(struct lm_etcd *e, int64_t ttl_s, int64_t deadline_ns,
		     int64_t *id, int64_t *ttl_out)
{
	json_t *r;
	int rc = etcd_post(e, "/v3/lease/grant",
			   json_pack("{s:o}", "TTL",
				     json_sprintf("%lld", (long long)ttl_s)),
			   deadline_ns, &r);
	if (rc != 0)
		return rc;
	*id = etcd_i64(r, "ID");
	*ttl_out = etcd_i64(r, "TTL");
	json_decref(r);
	if (*id == 0 || *ttl_out <= 0) {
		snprintf(e->detail, sizeof(e->detail),
			 "etcd granted no lease (no ID or TTL)");
		return LM_EINCOMPAT;
	}
	return 0;
}

int etcd_lease_keepalive(struct lm_etcd *e, int64_t id, int64_t deadline_ns,
			 int64_t *ttl_out)
{
	json_t *r;
	int rc = etcd_post(e, "/v3/lease/keepalive", id_req(id), deadline_ns,
			   &r);
	if (rc != 0)
		return rc;
	/* A lease that is gone comes back as a result without a TTL. */
	*ttl_out = etcd_i64(json_object_get(r, "result"), "TTL");
	json_decref(r);
	return 0;
}

int etcd_lease_ttl(struct lm_etcd *e, int64_t id, int64_t deadline_ns,
		   int64_t *ttl_out)
{
	json_t *r;
	int rc = etcd_post(e, "/v3/lease/timetolive", id_req(id), deadline_ns,
			   &r);
	if (rc != 0)
		return rc;
	*ttl_out = json_object_get(r, "TTL") != NULL ? etcd_i64(r, "TTL") : -1;
	json_decref(r);
	return 0;
}

int etcd_lease_revoke(struct lm_etcd *e, int64_t id, int64_t deadline_ns)
{
	json_t *r;
	int rc = etcd_post(e, "/v3/lease/revoke", id_req(id), deadline_ns, &r);
	if (rc == 0)
		json_decref(r);
	return rc == ETCD_EGRPC ? 0 : rc; /* not found: gone already */
}
