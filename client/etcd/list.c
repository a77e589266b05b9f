/*
 * list.c - every waiter and holder under the prefix, for lockctl status:
 * a range read of P/lock/ and one of P/sem/ at the same revision,
 * sorted by name, then by create revision within each name (the first
 * of a lock holds; the first `slots` of a semaphore).
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

/* One range read of every key under prefix pre ("P/lock/", "P/sem/"). */
static int read_all(struct lm_etcd *e, const char *pre, json_t **out)
{
	char end[ETCD_KEY_MAX];
	etcd_prefix_end(pre, end);
	int rc = etcd_post(e, "/v3/kv/range", etcd_range_req(pre, end),
			   etcd_op_deadline(), out);
	return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
}

/* "pid host\nvalue" into w. */
static void parse_value(const json_t *kv, struct etcd_waiter *w)
{
	char val[LM_VALUE_MAX + 128];
	if (etcd_kv_bytes(kv, "value", val, sizeof(val)) < 0)
		return;
	char *nl = strchr(val, '\n');
	if (nl != NULL) {
		snprintf(w->value, sizeof(w->value), "%s", nl + 1);
		*nl = '\0';
	}
	if (sscanf(val, "%d %63s", &w->pid, w->host) < 1)
		w->pid = 0;
}

int etcd_list(struct lm_etcd *e, struct etcd_waiter **out, size_t *n,
	      int64_t *revision)
{
	*out = NULL;
	*n = 0;
	char lp[ETCD_KEY_MAX], sp[ETCD_KEY_MAX];
	snprintf(lp, sizeof(lp), "%s/lock/", e->prefix);
	snprintf(sp, sizeof(sp), "%s/sem/", e->prefix);
	json_t *r, *rs = NULL;
	int rc = read_all(e, lp, &r);
	if (rc != 0)
		return rc;
	/* The semaphores' keys at the revision of the locks' read: one
	 * picture of the prefix. */
	char end[ETCD_KEY_MAX];
	etcd_prefix_end(sp, end);
	json_t *req = etcd_range_req(sp, end);
	json_object_set_new(req, "revision", etcd_i64str(etcd_rev(r)));
	rc = etcd_post(e, "/v3/kv/range", req,
		       etcd_op_deadline(), &rs);
	if (rc != 0) {
		json_decref(r);
		return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
	}
	*revision = etcd_rev(r);
	json_t *kvs = json_object_get(r, "kvs"), *skvs = json_object_get(rs, "kvs");
	size_t cnt = json_array_size(kvs) + json_array_size(skvs);
	struct etcd_waiter *w = calloc(cnt + 1, sizeof(*w));
	if (w == NULL) {
		json_decref(r);
		json_decref(rs);
		return LM_ESYS;
	}
	size_t k, m = 0, lpl = strlen(lp), spl = strlen(sp);
	json_t *kv;
	json_array_foreach(kvs, k, kv) {
		char key[ETCD_KEY_MAX + 48];
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
		w[m].slot = -1;
		parse_value(kv, &w[m]);
		m++;
	}
	/* Semaphores: P/sem/<name>/NNNN/w/<lease> is a waiter or holder,
	 * P/sem/<name>/NNNN/s/<slot> the slot of the holder whose lease
	 * it is on (semaphore.c). */
	size_t first_sem = m;
	json_array_foreach(skvs, k, kv) {
		char key[ETCD_KEY_MAX + 48];
		if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0 ||
		    strncmp(key, sp, spl) != 0)
			continue;
		/* ".../NNNN/w/" + 16 hex, or ".../NNNN/s/" + 4 digits */
		char *t = strrchr(key + spl, '/');
		if (t == NULL || t - (key + spl) < 8 || t[-2] != '/' ||
		    (t[-1] != 'w' && t[-1] != 's') || t[-7] != '/')
			continue;
		unsigned slots;
		if (sscanf(t - 6, "%4u", &slots) != 1 || slots == 0)
			continue;
		if (t[-1] == 's')
			continue; /* matched to its holder below */
		if (etcd_name_decode(key + spl, (size_t)(t - 7 - (key + spl)),
				     w[m].name, sizeof(w[m].name)) < 0)
			continue;
		w[m].create_rev = (uint64_t)etcd_i64(kv, "create_revision");
		w[m].lease = etcd_i64(kv, "lease");
		w[m].slots = slots;
		w[m].slot = -1;
		parse_value(kv, &w[m]);
		m++;
	}
	json_array_foreach(skvs, k, kv) {
		char key[ETCD_KEY_MAX + 48];
		unsigned slot;
		int64_t lease = etcd_i64(kv, "lease");
		if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0)
			continue;
		char *t = strrchr(key, '/');
		if (t == NULL || t - key < 2 || t[-1] != 's' || t[-2] != '/' ||
		    sscanf(t + 1, "%4u", &slot) != 1)
			continue;
		for (size_t i = first_sem; i < m; i++)
			if (w[i].lease == lease && lease != 0)
				w[i].slot = (int)slot;
	}
	json_decref(r);
	json_decref(rs);
	qsort(w, m, sizeof(*w), by_lock);
	*out = w;
	*n = m;
	return 0;
}
