/*
 * client.c - the etcd backend's address, connect and disconnect, and
 * its ops table (backend.h).
 *
 * Address: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]
 *   HOST      a name, an IPv4 address, or [an IPv6 address]
 *   PORT      1 to 65535 (2379 if left out)
 *   PREFIX    where this service's keys live (default /lockmgr):
 *             letters, digits, '.', '_', '-', and '/' between them
 * Plain http: the gateway's TLS options are not offered yet.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "curl_load.h"
#include "etcd.h"

#define SCHEME "etcd://"

bool lm_addr_is_etcd(const char *addr)
{
	if (addr == NULL)
		addr = getenv("LOCKMGR_REGION");
	return addr != NULL && strncmp(addr, SCHEME, strlen(SCHEME)) == 0;
}

static int bad(char *why, size_t n, const char *fmt, const char *what)
{
	if (why != NULL && n > 0)
		snprintf(why, n, fmt, what);
	return LM_EBADREGION;
}

static bool prefix_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '_' ||
	       ch == '-' || ch == '/';
}

/* Parse addr into e (NULL: only check). 0 or LM_EBADREGION. */
static int parse(const char *addr, struct lm_etcd *e, char *why, size_t n)
{
	if (!lm_addr_is_etcd(addr))
		return bad(why, n, "'%s' does not begin with etcd://", "");
	if (strlen(addr) >= 512)
		return bad(why, n, "%s", "the address is longer than 511 "
					 "bytes");
	const char *p = addr + strlen(SCHEME);
	const char *slash = strchr(p, '/');
	size_t hl = slash != NULL ? (size_t)(slash - p) : strlen(p);
	const char *prefix = slash != NULL ? slash : ETCD_DEFAULT_PREFIX;
	size_t pl = strlen(prefix);
	if (pl < 2 || pl > ETCD_PREFIX_MAX)
		return bad(why, n, "the prefix '%s' must be 1 to 127 "
				   "characters after its '/'", prefix);
	for (size_t i = 0; i < pl; i++)
		if (!prefix_char(prefix[i]) ||
		    (prefix[i] == '/' && (i + 1 == pl || prefix[i + 1] == '/')))
			return bad(why, n, "bad prefix '%s': use letters, "
					   "digits, '.', '_', '-' and single "
					   "inner '/'", prefix);
	if (hl == 0)
		return bad(why, n, "%s", "no HOST:PORT after etcd://");
	unsigned count = 0;
	const char *h = p;
	while (h < p + hl) {
		const char *comma = memchr(h, ',', (size_t)(p + hl - h));
		const char *end = comma != NULL ? comma : p + hl;
		size_t len = (size_t)(end - h);
		char ep[300];
		if (len == 0 || len > 255)
			return bad(why, n, "%s", "an empty or over-long "
						 "HOST:PORT in the list");
		memcpy(ep, h, len);
		ep[len] = '\0';
		/* host: [v6] or a name/v4 without ':' */
		char *port = NULL;
		if (ep[0] == '[') {
			char *rb = strchr(ep, ']');
			if (rb == NULL || rb == ep + 1)
				return bad(why, n, "bad IPv6 host in '%s'", ep);
			for (char *q = ep + 1; q < rb; q++)
				if (!isxdigit((unsigned char)*q) && *q != ':' &&
				    *q != '.')
					return bad(why, n, "bad IPv6 host in "
							   "'%s'", ep);
			if (rb[1] == ':')
				port = rb + 2;
			else if (rb[1] != '\0')
				return bad(why, n, "bad HOST:PORT '%s'", ep);
		} else {
			char *colon = strchr(ep, ':');
			if (colon != NULL) {
				*colon = '\0';
				port = colon + 1;
			}
			if (ep[0] == '\0')
				return bad(why, n, "%s", "an empty HOST");
			for (char *q = ep; *q; q++)
				if (!isalnum((unsigned char)*q) && *q != '.' &&
				    *q != '-')
					return bad(why, n, "bad host name '%s'",
						   ep);
		}
		long pn = 2379;
		if (port != NULL) {
			char *pe;
			pn = strtol(port, &pe, 10);
			if (port[0] < '0' || port[0] > '9' || *pe != '\0' ||
			    pn < 1 || pn > 65535)
				return bad(why, n, "bad port '%s' (1 to 65535)",
					   port);
		}
		if (count == ETCD_MAX_ENDPOINTS)
			return bad(why, n, "%s", "more than 16 endpoints");
		if (e != NULL) {
			char url[320];
			snprintf(url, sizeof(url), "http://%s:%ld", ep, pn);
			e->ep[count] = strdup(url);
			if (e->ep[count] == NULL)
				return LM_ESYS;
		}
		count++;
		h = comma != NULL ? comma + 1 : p + hl;
		if (comma != NULL && h == p + hl)
			return bad(why, n, "%s", "a trailing ',' in the list");
	}
	if (e != NULL) {
		e->nep = count;
		memcpy(e->prefix, prefix, pl + 1);
		snprintf(e->addr, sizeof(e->addr), "%s", addr);
	}
	return 0;
}

int lm_etcd_check_address(const char *addr, char *why, size_t n)
{
	if (why != NULL && n > 0)
		why[0] = '\0';
	return parse(addr, NULL, why, n);
}

static _Thread_local char connect_detail[512];

const char *lm_etcd_connect_detail(void)
{
	return connect_detail;
}

const char *lm_backend_detail(const lm_client *c)
{
	return c != NULL && c->etcd != NULL ? c->etcd->detail : "";
}

struct lm_etcd *lm_etcd_of(lm_client *c)
{
	return c != NULL ? c->etcd : NULL;
}

void etcd_free(struct lm_etcd *e)
{
	for (unsigned i = 0; i < ETCD_MAX_ENDPOINTS; i++)
		free(e->ep[i]);
	etcd_curl_free(e->curl);
	free(e);
}

struct lm_etcd *etcd_clone(const struct lm_etcd *e)
{
	struct lm_etcd *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	for (unsigned i = 0; i < e->nep; i++)
		if ((k->ep[i] = strdup(e->ep[i])) == NULL)
			goto fail;
	k->nep = e->nep;
	k->cur = e->cur;
	memcpy(k->prefix, e->prefix, sizeof(k->prefix));
	memcpy(k->addr, e->addr, sizeof(k->addr));
	k->pid = e->pid;
	memcpy(k->host, e->host, sizeof(k->host));
	k->curl = etcd_curl_new();
	if (k->curl == NULL)
		goto fail;
	return k;
fail:
	etcd_free(k);
	return NULL;
}

static int etcd_disconnect(lm_client *c)
{
	/* The watches first: their threads stop before the grants'
	 * releases, which they would otherwise report. */
	etcd_watch_close_all(c);
	etcd_release_all(c);
	etcd_free(c->etcd);
	free(c);
	return 0;
}

static int64_t etcd_max_ttl_ms(const lm_client *c)
{
	(void)c;
	return ETCD_MAX_TTL_MS;
}

static int etcd_convert(lm_client *c, lm_grant *g, uint32_t mode,
			int64_t ttl_ms, int64_t wait_ms)
{
	(void)ttl_ms;
	(void)wait_ms;
	struct etcd_grant *gr = etcd_grant_of(c->etcd, g);
	if (gr == NULL)
		return LM_ENOTHELD;
	/* A semaphore's slot has no mode to change (as on shared
	 * memory). */
	if (mode >= LM_MODE_COUNT || gr->sem)
		return LM_EINVAL;
	if (mode == g->mode)
		return 0;
	snprintf(c->etcd->detail, sizeof(c->etcd->detail),
		 "the etcd backend has only mode X: no conversion");
	return LM_ENOTSUP;
}

static const struct lm_backend_ops etcd_ops = {
	.name = "etcd",
	.disconnect = etcd_disconnect,
	.max_ttl_ms = etcd_max_ttl_ms,
	.acquire = etcd_acquire,
	.renew = etcd_renew,
	.release = etcd_release,
	.convert = etcd_convert,
	.sem_acquire = etcd_sem_acquire,
	.watch_open = etcd_watch_open,
	.watch_next = etcd_watch_next,
	.watch_fd = etcd_watch_fd,
	.watch_close = etcd_watch_close,
	.campaign = etcd_campaign,
	.proclaim = etcd_proclaim,
	.resign = etcd_resign,
	.leader_get = etcd_leader_get,
};

int lm_etcd_connect(const char *addr, lm_client **out)
{
	connect_detail[0] = '\0';
	struct lm_etcd *e = calloc(1, sizeof(*e));
	lm_client *c = calloc(1, sizeof(*c));
	int rc = LM_ESYS;
	if (e == NULL || c == NULL)
		goto fail;
	rc = parse(addr, e, connect_detail, sizeof(connect_detail));
	if (rc != 0)
		goto fail;
	e->curl = etcd_curl_new();
	if (e->curl == NULL) {
		/* libcurl is loaded here, on the first etcd connection
		 * (curl_load.h): say so if it is not installed. */
		if (lm_curl() == NULL)
			snprintf(connect_detail, sizeof(connect_detail),
				 "the etcd backend needs libcurl: %s",
				 lm_curl_error());
		rc = LM_ESYS;
		goto fail;
	}
	e->pid = (int)getpid();
	if (gethostname(e->host, sizeof(e->host) - 1) != 0)
		snprintf(e->host, sizeof(e->host), "?");
	for (char *q = e->host; *q; q++)
		if (*q == ' ' || *q == '\n')
			*q = '_';
	/* Is it etcd, and does it answer? One read of the prefix (any
	 * member, a leader required). */
	json_t *r;
	json_t *req = etcd_range_req(e->prefix, NULL);
	json_object_set_new(req, "count_only", json_true());
	rc = etcd_post(e, "/v3/kv/range", req,
		       lm_now_ns() + (int64_t)ETCD_REQUEST_MS * 1000000, &r);
	if (rc != 0) {
		snprintf(connect_detail, sizeof(connect_detail), "%s",
			 e->detail);
		if (rc == ETCD_EGRPC)
			rc = LM_EINCOMPAT;
		goto fail;
	}
	if (json_object_get(r, "header") == NULL) {
		json_decref(r);
		snprintf(connect_detail, sizeof(connect_detail),
			 "%s: not etcd's v3 JSON gateway", e->ep[e->cur] + 7);
		rc = LM_EINCOMPAT;
		goto fail;
	}
	json_decref(r);
	c->be = &etcd_ops;
	c->etcd = e;
	*out = c;
	return 0;
fail:
	if (e != NULL)
		etcd_free(e);
	free(c);
	return rc;
}
