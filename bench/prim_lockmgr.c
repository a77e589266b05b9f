/*
 * prim_lockmgr.c - lockmgr as a primitive: lm_acquire by name, and
 * lm_acquire_ref through an lm_lockref resolved before the clock starts.
 *
 * Names are created once by the parent, through a session of its own,
 * and cached by tag: the many-locks scenario's million names are made
 * once and shared by both variants and every round. A worker process
 * registers its own session in attach (a session belongs to a process).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/lockmgr.h"
#include "bench.h"
#include "primitives.h"

/* "/lb/<tag>/<index>" fits in this with tags of up to 12 characters. */
#define NAME_STRIDE 32u

static struct {
	lm_client *client; /* the parent's session, to create names */
	char tag[16];
	uint32_t n;
	char *names;       /* n names, NAME_STRIDE apart */
} cache;

struct lmprim {
	bool by_ref;
	const char *names;
	lm_client *c;      /* the worker's own session */
	lm_grant g;        /* a worker holds at most one lock at a time */
	lm_lockref *refs;  /* by_ref: refs[i] valid when have[i] */
	uint8_t *have;
};

static const char *name_of(const char *names, uint32_t i)
{
	return names + (size_t)i * NAME_STRIDE;
}

/* Make (or reuse) the names of tag; they exist in the region after. */
static int names_for(uint32_t n, const char *tag, const char **out)
{
	if (cache.names != NULL && cache.n == n &&
	    strcmp(cache.tag, tag) == 0) {
		*out = cache.names;
		return 0;
	}
	if (strlen(tag) >= sizeof(cache.tag))
		return -EINVAL;
	if (cache.client == NULL) {
		int rc = lm_connect(bench_cfg.region, &cache.client);
		if (rc != 0)
			return rc;
	}
	free(cache.names);
	cache.names = malloc((size_t)n * NAME_STRIDE);
	cache.n = 0;
	if (cache.names == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		char *s = cache.names + (size_t)i * NAME_STRIDE;
		snprintf(s, NAME_STRIDE, "/lb/%s/%u", tag, i);
		/* lm_lookup creates the name: the measured runs find every
		 * name in place and never pay for an insert. */
		lm_lockref ref;
		int rc = lm_lookup(cache.client, s, &ref);
		if (rc != 0) {
			free(cache.names);
			cache.names = NULL;
			return rc;
		}
	}
	cache.n = n;
	snprintf(cache.tag, sizeof(cache.tag), "%s", tag);
	*out = cache.names;
	return 0;
}

void prim_lockmgr_shutdown(void)
{
	if (cache.client != NULL)
		lm_disconnect(cache.client);
	cache.client = NULL;
	free(cache.names);
	cache.names = NULL;
	cache.n = 0;
}

static int lmp_init_common(struct prim *p, uint32_t nlocks, const char *tag,
			   bool by_ref)
{
	struct lmprim *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p->state = s;
	s->by_ref = by_ref;
	return names_for(nlocks, tag, &s->names);
}

static int lmp_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	return lmp_init_common(p, nlocks, tag, false);
}

static int lmp_ref_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	return lmp_init_common(p, nlocks, tag, true);
}

static int lmp_resolve(struct lmprim *s, uint32_t i)
{
	if (s->have[i])
		return 0;
	int rc = lm_lookup(s->c, name_of(s->names, i), &s->refs[i]);
	if (rc == 0)
		s->have[i] = 1;
	return rc;
}

static int lmp_attach(struct prim *p)
{
	struct lmprim *s = p->state;
	int rc = lm_connect(bench_cfg.region, &s->c);
	if (rc != 0)
		return rc;
	if (!s->by_ref)
		return 0;
	/* calloc of a large array is lazily zeroed pages: a worker pays
	 * only for the refs it resolves. */
	s->refs = calloc(p->nlocks, sizeof(*s->refs));
	s->have = calloc(p->nlocks, 1);
	if (s->refs == NULL || s->have == NULL)
		return -ENOMEM;
	return p->nlocks == 1 ? lmp_resolve(s, 0) : 0;
}

static int lmp_prepare(struct prim *p, const uint32_t *idx, size_t n)
{
	struct lmprim *s = p->state;
	if (!s->by_ref)
		return 0;
	for (size_t k = 0; k < n; k++) {
		int rc = lmp_resolve(s, idx[k]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int lmp_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct lmprim *s = p->state;
	int64_t wait_ms = -1;
	if (deadline_ns != INT64_MAX) {
		int64_t left = deadline_ns - bench_now_ns();
		wait_ms = left <= 0 ? 0 : (left + 999999) / 1000000;
	}
	int rc;
	if (s->by_ref) {
		rc = lmp_resolve(s, i);
		if (rc == 0)
			rc = lm_acquire_ref(s->c, &s->refs[i], bench_cfg.ttl_ms,
					    wait_ms, &s->g);
	} else {
		rc = lm_acquire(s->c, name_of(s->names, i), bench_cfg.ttl_ms,
				wait_ms, &s->g);
	}
	if (rc == LM_ETIMEDOUT)
		return -ETIMEDOUT;
	if (rc == 0 && (s->g.flags & LM_GRANT_RECOVERED))
		p->recovered = true;
	return rc;
}

/* Read-write scenario: both modes through lm_acquire_ex by name, so
 * that S and X are compared through the same call. */
static int lmp_acquire_mode(struct prim *p, uint32_t i, bool shared,
			    int64_t deadline_ns)
{
	struct lmprim *s = p->state;
	int64_t wait_ms = -1;
	if (deadline_ns != INT64_MAX) {
		int64_t left = deadline_ns - bench_now_ns();
		wait_ms = left <= 0 ? 0 : (left + 999999) / 1000000;
	}
	lm_acquire_opts o = LM_ACQUIRE_OPTS(shared ? LM_MODE_S : LM_MODE_X,
					    bench_cfg.ttl_ms, wait_ms);
	int rc = lm_acquire_ex(s->c, name_of(s->names, i), &o, &s->g);
	if (rc == LM_ETIMEDOUT)
		return -ETIMEDOUT;
	if (rc == 0 && (s->g.flags & LM_GRANT_RECOVERED))
		p->recovered = true;
	return rc;
}

static int lmp_release(struct prim *p, uint32_t i)
{
	(void)i;
	struct lmprim *s = p->state;
	return lm_release(s->c, &s->g);
}

static void lmp_detach(struct prim *p)
{
	struct lmprim *s = p->state;
	if (s->c != NULL)
		lm_disconnect(s->c);
	s->c = NULL;
	free(s->refs);
	free(s->have);
	s->refs = NULL;
	s->have = NULL;
}

static void lmp_destroy(struct prim *p)
{
	/* The names stay (they are never freed in a region) and are
	 * cached for the next instance with the same tag. */
	free(p->state);
	p->state = NULL;
}

const struct prim_ops prim_lockmgr_ops = {
	.key = "lockmgr",
	.label = "lockmgr",
	.max_locks = UINT32_MAX,
	.init = lmp_init,
	.attach = lmp_attach,
	.prepare = lmp_prepare,
	.acquire = lmp_acquire,
	.release = lmp_release,
	.acquire_mode = lmp_acquire_mode,
	.detach = lmp_detach,
	.destroy = lmp_destroy,
};

const struct prim_ops prim_lockmgr_ref_ops = {
	.key = "lockmgr-ref",
	.label = "lockmgr ref",
	.max_locks = UINT32_MAX,
	.init = lmp_ref_init,
	.attach = lmp_attach,
	.prepare = lmp_prepare,
	.acquire = lmp_acquire,
	.release = lmp_release,
	.detach = lmp_detach,
	.destroy = lmp_destroy,
};
