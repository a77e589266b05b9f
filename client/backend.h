/*
 * backend.h - which service an lm_client talks to.
 *
 * lm_connect() picks the backend from the address (lockmgr.h stays
 * backend-neutral):
 *
 *   "/name", "name", NULL ($LOCKMGR_REGION, else "/lockmgr")
 *        the shared-memory service (lockmgrd). Its code is the library's
 *        own: client.c, watch.c, election.c, tree.c over shm/.
 *   "etcd://host:port[,host:port...][/prefix]"
 *        an etcd cluster through its v3 JSON gateway (client/etcd/).
 *
 * A client of another backend than shared memory carries that backend's
 * ops table in lm_client.be, and each public call hands over to it first
 * thing (one line per call), so the shared-memory code stays as it was.
 * A call a backend cannot do returns LM_ENOTSUP, never an approximation.
 */
#ifndef LOCKMGR_CLIENT_BACKEND_H
#define LOCKMGR_CLIENT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockmgr.h"

struct lm_backend_ops {
	const char *name; /* "etcd" */
	int (*disconnect)(lm_client *c);
	int64_t (*max_ttl_ms)(const lm_client *c);
	int (*acquire)(lm_client *c, const char *name, uint32_t mode,
		       int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		       lm_grant *g);
	int (*renew)(lm_client *c, lm_grant *g, int64_t ttl_ms);
	int (*release)(lm_client *c, lm_grant *g);
	int (*convert)(lm_client *c, lm_grant *g, uint32_t mode,
		       int64_t ttl_ms, int64_t wait_ms);
	int (*sem_acquire)(lm_client *c, const char *name, uint32_t slots,
			   int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
	int (*watch_open)(lm_client *c, const char *name, lm_watch **out,
			  lm_watch_event *now);
	int (*watch_next)(lm_watch *w, int64_t timeout_ms,
			  lm_watch_event *ev);
	int (*watch_fd)(lm_watch *w);
	void (*watch_close)(lm_watch *w);
	int (*campaign)(lm_client *c, const char *election, const char *value,
			int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
	int (*proclaim)(lm_client *c, lm_grant *g, const char *value);
	int (*resign)(lm_client *c, lm_grant *g);
	int (*leader_get)(lm_client *c, const char *election, lm_leader *out);
};

/* The client's backend, or NULL for the shared-memory service. */
#define LM_BACKEND(c) ((c) != NULL ? (c)->be : NULL)

/* Every backend's struct lm_watch begins with its client, so that the
 * watch calls find the backend from the handle alone. */
struct lm_watch_head {
	lm_client *c;
};

static inline lm_client *lm_watch_client(lm_watch *w)
{
	return ((struct lm_watch_head *)(void *)w)->c;
}

/* Does addr (after $LOCKMGR_REGION for NULL) name an etcd cluster? */
bool lm_addr_is_etcd(const char *addr);

/* etcd/client.c: connect to the cluster at addr ("etcd://..."). */
int lm_etcd_connect(const char *addr, lm_client **out);

/*
 * Check an etcd address without connecting: 0, or LM_EBADREGION with a
 * sentence saying what is wrong in why.
 */
int lm_etcd_check_address(const char *addr, char *why, size_t n);

/*
 * The sentence that goes with the last error of an etcd client ("no
 * endpoint answered: 127.0.0.1:2379: Connection refused"), or "" (also
 * for a client of another backend). Valid until its next call.
 */
const char *lm_backend_detail(const lm_client *c);

/* The detail of the last failed lm_etcd_connect of this thread. */
const char *lm_etcd_connect_detail(void);

#endif
