/*
 * status_etcd.c - lockctl against an etcd cluster (an etcd:// address
 * in -r/--region or $LOCKMGR_REGION): checking the address, its error
 * messages, and `lockctl status`, which lists every lock under the
 * prefix with its holder (the oldest key) and its waiters, from one
 * read of the keys. run, flock, watch, leader and elect go through
 * liblockmgr as they do for a region; server and top are about
 * lockmgrd's region and say so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../etcd/etcd.h"
#include "lockctl.h"

bool ctl_is_etcd(const struct ctl_global *g)
{
	return strncmp(g->region, "etcd://", 7) == 0;
}

int ctl_resolve_etcd(struct ctl_global *g, const char *addr)
{
	char why[256];
	const char *from = g->region_arg ? "" : " (from $LOCKMGR_REGION)";
	if (strlen(addr) > LM_REGION_NAME_MAX + 1) {
		fprintf(stderr, "%s: etcd address%s is longer than %u bytes\n",
			ctl_prog, from, LM_REGION_NAME_MAX + 1);
		return EX_CTL_USAGE;
	}
	if (lm_etcd_check_address(addr, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: bad etcd address '", ctl_prog);
		ctl_print_escaped(stderr, addr, 200);
		fprintf(stderr, "'%s: %s; the form is "
				"etcd://HOST:PORT[,HOST:PORT...][/PREFIX]\n",
			from, why);
		return EX_CTL_USAGE;
	}
	snprintf(g->region, sizeof(g->region), "%s", addr);
	return 0;
}

int ctl_etcd_error(int err, const char *addr)
{
	const char *d = lm_etcd_connect_detail();
	fprintf(stderr, "%s: etcd %s: %s%s%s\n", ctl_prog, addr,
		lm_strerror(err), *d ? "\n  " : "", d);
	return err == LM_EBADREGION ? EX_CTL_USAGE : EX_CTL_UNAVAILABLE;
}

int ctl_shm_only(const struct ctl_global *g, const char *cmd)
{
	if (!ctl_is_etcd(g))
		return 0;
	fprintf(stderr, "%s: %s applies to the shared-memory service "
			"(lockmgrd and its region) only, not to an etcd "
			"cluster (%s); use 'lockctl status' for its locks\n",
		ctl_prog, cmd, g->region);
	return EX_CTL_USAGE;
}

/* How many of w[i..j) hold: a lock's first key, a semaphore's first
 * `slots` keys (semaphore.c). */
static size_t holders_of(const struct etcd_waiter *w, size_t i, size_t j)
{
	size_t h = w[i].slots != 0 ? w[i].slots : 1;
	return h < j - i ? h : j - i;
}

static void print_human(const struct lm_etcd *e, const struct etcd_waiter *w,
			size_t n, int64_t rev)
{
	printf("BACKEND etcd  ENDPOINTS");
	for (unsigned i = 0; i < e->nep; i++)
		printf("%s%s", i ? "," : " ", e->ep[i] + 7);
	printf("  PREFIX %s  REVISION %" PRId64 "\n\n", e->prefix, rev);
	if (n == 0) {
		printf("no locks held or waited for\n");
		return;
	}
	printf("%-24s  %-8s  %-16s  %-8s  %-16s  %s\n", "LOCK", "PID", "HOST",
	       "TOKEN", "LEASE", "WAITERS");
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(w[j].name, w[i].name) == 0)
			j++;
		size_t h = holders_of(w, i, j);
		/* A semaphore: a line per holder, with its slot (as the
		 * shared-memory status shows a slot). */
		for (size_t k = i; k < i + h; k++) {
			int cols = ctl_print_escaped(stdout, w[k].name,
						     SIZE_MAX);
			if (w[k].slots != 0) {
				char sl[32];
				if (w[k].slot >= 0)
					snprintf(sl, sizeof(sl),
						 " [slot %d/%u]", w[k].slot,
						 w[k].slots);
				else
					snprintf(sl, sizeof(sl),
						 " [slot ?/%u]", w[k].slots);
				cols += printf("%s", sl);
			}
			for (; cols < 24; cols++)
				putchar(' ');
			printf("  %-8d  %-16s  %-8" PRIu64 "  %016" PRIx64
			       "  %zu\n", w[k].pid, w[k].host,
			       w[k].create_rev, (uint64_t)w[k].lease,
			       j - i - h);
		}
		for (size_t k = i + h; k < j; k++)
			printf("  waiting: pid %d on %s, in line since "
			       "revision %" PRIu64 "\n", w[k].pid, w[k].host,
			       w[k].create_rev);
		i = j;
	}
}

static void print_json(const struct lm_etcd *e, const struct etcd_waiter *w,
		       size_t n, int64_t rev)
{
	printf("{\"backend\":\"etcd\",\"endpoints\":[");
	for (unsigned i = 0; i < e->nep; i++) {
		printf("%s", i ? "," : "");
		ctl_json_str(stdout, e->ep[i] + 7, strlen(e->ep[i] + 7));
	}
	printf("],\"prefix\":");
	ctl_json_str(stdout, e->prefix, strlen(e->prefix));
	printf(",\"revision\":%" PRId64 ",\"locks\":[", rev);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(w[j].name, w[i].name) == 0)
			j++;
		printf("%s{\"name\":", i ? "," : "");
		ctl_json_str(stdout, w[i].name, strlen(w[i].name));
		size_t h = holders_of(w, i, j);
		/* "holder": the (oldest) holder; a semaphore adds its slot
		 * count and every holder with its slot. */
		printf(",\"holder\":{\"pid\":%d,\"host\":", w[i].pid);
		ctl_json_str(stdout, w[i].host, strlen(w[i].host));
		printf(",\"token\":%" PRIu64 ",\"lease\":\"%016" PRIx64 "\"}",
		       w[i].create_rev, (uint64_t)w[i].lease);
		if (w[i].slots != 0) {
			printf(",\"slots\":%u,\"holders\":[", w[i].slots);
			for (size_t k = i; k < i + h; k++) {
				printf("%s{\"pid\":%d,\"host\":",
				       k > i ? "," : "", w[k].pid);
				ctl_json_str(stdout, w[k].host,
					     strlen(w[k].host));
				printf(",\"token\":%" PRIu64
				       ",\"lease\":\"%016" PRIx64 "\"",
				       w[k].create_rev, (uint64_t)w[k].lease);
				if (w[k].slot >= 0)
					printf(",\"slot\":%d}", w[k].slot);
				else
					printf(",\"slot\":null}");
			}
			printf("]");
		}
		printf(",\"waiters\":[");
		for (size_t k = i + h; k < j; k++) {
			printf("%s{\"pid\":%d,\"host\":", k > i + h ? "," : "",
			       w[k].pid);
			ctl_json_str(stdout, w[k].host, strlen(w[k].host));
			printf(",\"revision\":%" PRIu64 "}", w[k].create_rev);
		}
		printf("]}");
		i = j;
	}
	printf("]}\n");
}

int ctl_status_etcd(struct ctl_global *g, bool json)
{
	lm_client *c;
	int err = lm_connect(g->region, &c);
	if (err != 0)
		return ctl_etcd_error(err, g->region);
	struct lm_etcd *e = lm_etcd_of(c);
	struct etcd_waiter *w;
	size_t n;
	int64_t rev;
	err = etcd_list(e, &w, &n, &rev);
	if (err != 0) {
		fprintf(stderr, "%s: etcd %s: %s\n  %s\n", ctl_prog, g->region,
			lm_strerror(err), lm_backend_detail(c));
		lm_disconnect(c);
		return err == LM_ESYS ? EX_CTL_OSERR : EX_CTL_UNAVAILABLE;
	}
	if (json)
		print_json(e, w, n, rev);
	else
		print_human(e, w, n, rev);
	free(w);
	lm_disconnect(c);
	return fflush(stdout) == 0 ? EX_CTL_OK : EX_CTL_OSERR;
}
