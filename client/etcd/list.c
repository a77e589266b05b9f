/*
 * list.c - every waiter and holder under the prefix, for lockctl status:
 * one range read of P/lock/, sorted by key (so by lock), then by create
 * revision within each lock (the first of a lock holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shm/clock.h"
#include "etcd.h"

static int by_lock(const void *a, const void *b)
{
	const struct etcd_waiter *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x->create_rev < y->create_rev ? -1 : x->create_rev > y->create_rev;
}

int etcd_list(struct lm_etcd *e, struct etcd_waiter **out, size_t *n,
	      int64_t *revision)
{
	*out = NULL;
	*n = 0;
	char lp[ETCD_KEY_MAX], end[ETCD_KEY_MAX];
	snprintf(lp, sizeof(lp), "%s/lock/", e->prefix);
	etcd_prefix_end(lp, end);
	json_t *r;
	int rc = etcd_post(e, "/v3/kv/range", etcd_range_req(lp, end),
			   lm_now_ns() + (int64_t)ETCD_OP_MS * 1000000, &r);
	if (rc != 0)
		return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
	*revision = etcd_rev(r);
	json_t *kvs = json_object_get(r, "kvs");
	size_t cnt = json_array_size(kvs);
	struct etcd_waiter *w = calloc(cnt + 1, sizeof(*w));
	if (w == NULL) {
		json_decref(r);
		return LM_ESYS;
	}
	size_t k, m = 0, lpl = strlen(lp);
	json_t *kv;
	json_array_foreach(kvs, k, kv) {
		char key[ETCD_KEY_MAX], val[LM_VALUE_MAX + 128];
		if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0 ||
		    strncmp(key, lp, lpl) != 0)
			continue;
		char *slash = strrchr(key + lpl, '/');
		if (slash == NULL ||
		    etcd_name_decode(key + lpl, (size_t)(slash - (key + lpl)),
				     w[m].name, sizeof(w[m].name)) < 0)
			continue; /* not one of ours */
		w[m].create_rev = (uint64_t)etcd_i64(kv, "create_revision");
		w[m].lease = etcd_i64(kv, "lease");
		if (etcd_kv_bytes(kv, "value", val, sizeof(val)) >= 0) {
			char *nl = strchr(val, '\n');
			if (nl != NULL) {
				snprintf(w[m].value, sizeof(w[m].value), "%s",
					 nl + 1);
				*nl = '\0';
			}
			if (sscanf(val, "%d %63s", &w[m].pid, w[m].host) < 1)
				w[m].pid = 0;
		}
		m++;
	}
	json_decref(r);
	qsort(w, m, sizeof(*w), by_lock);
	*out = w;
	*n = m;
	return 0;
}
