/*
 * watch.c - lm_watch_* and the election on etcd: not there yet, so they
 * say LM_ENOTSUP (never an approximation).
 */
#include <stdio.h>

#include "etcd.h"

static int notsup(lm_client *c, const char *what)
{
	if (c != NULL && c->etcd != NULL)
		snprintf(c->etcd->detail, sizeof(c->etcd->detail),
			 "the etcd backend has no %s yet", what);
	return LM_ENOTSUP;
}

int etcd_watch_open(lm_client *c, const char *name, lm_watch **out,
		    lm_watch_event *now)
{
	(void)name;
	(void)now;
	*out = NULL;
	return notsup(c, "watches");
}

int etcd_watch_next(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev)
{
	(void)timeout_ms;
	(void)ev;
	return notsup(lm_watch_client(w), "watches");
}

int etcd_watch_fd(lm_watch *w)
{
	return notsup(lm_watch_client(w), "watches");
}

void etcd_watch_close(lm_watch *w)
{
	(void)w;
}

int etcd_campaign(lm_client *c, const char *election, const char *value,
		  int64_t ttl_ms, int64_t wait_ms, lm_grant *g)
{
	(void)election;
	(void)value;
	(void)ttl_ms;
	(void)wait_ms;
	(void)g;
	return notsup(c, "elections");
}

int etcd_proclaim(lm_client *c, lm_grant *g, const char *value)
{
	(void)g;
	(void)value;
	return notsup(c, "elections");
}

int etcd_resign(lm_client *c, lm_grant *g)
{
	(void)g;
	return notsup(c, "elections");
}

int etcd_leader_get(lm_client *c, const char *election, lm_leader *out)
{
	(void)election;
	(void)out;
	return notsup(c, "elections");
}
