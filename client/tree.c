/*
 * tree.c - lock trees (a region made with lockmgrd --tree): names with
 * '/' form a tree, and taking a mode on /db/orders/row17 first takes the
 * matching intention mode on /db and on /db/orders, top-down (Gray's
 * granularity locking), so that X on /db/orders excludes every lock
 * beneath it while IX on it lets siblings below proceed in parallel.
 * Top-down order means two paths never wait for each other's prefixes
 * in opposite orders.
 *
 * The whole path is one grant for the caller: the node itself in the
 * caller's lm_grant, the ancestors in an lm_path beside it; renew and
 * release act on all, and a failure anywhere undoes what was taken.
 *
 * Fencing across the tree: the grant's token is the largest of its
 * holds' tokens, claimed on the node's tables (lifted there from below by
 * a CAS each, so that no other grant of the node has it) and written
 * back to every ancestor's marks on the tables held there. Any later
 * grant that conflicts with it, on the node or on an ancestor or a
 * descendant, conflicts on one node of the path (X on /db/orders meets
 * our IS or IX there), where it shares a table with our hold and so
 * reads a mark at least our token: its token is larger.
 */
#include <stdlib.h>
#include <string.h>

#include "../shm/clock.h"
#include "internal.h"

/* The intention mode an ancestor takes for a node's mode. */
static uint32_t intention(uint32_t mode)
{
	return mode == LM_MODE_S || mode == LM_MODE_IS ? LM_MODE_IS
						       : LM_MODE_IX;
}

/* The lengths of name's ancestors, top-down (at most LM_NAME_MAX). */
static uint32_t ancestors(const char *name, size_t len, uint16_t *at)
{
	uint32_t n = 0;
	for (size_t k = 1; k < len; k++)
		if (name[k] == '/' && name[k - 1] != '/')
			at[n++] = (uint16_t)k;
	return n;
}

static void link_path(lm_client *c, struct lm_path *p)
{
	p->prev = NULL;
	p->next = c->paths;
	if (c->paths != NULL)
		c->paths->prev = p;
	c->paths = p;
}

static void unlink_path(lm_client *c, struct lm_path *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		c->paths = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
}

/* Release ancestors anc[0..n-1], bottom-up; the first error. */
static int release_ancestors(lm_client *c, struct lm_hold *anc, uint32_t n)
{
	int rc = 0;
	while (n-- > 0) {
		int r = lm_hold_release(&c->ctx, &anc[n]);
		rc = rc != 0 ? rc : r;
	}
	return rc;
}

int lm_tree_acquire(lm_client *c, const char *name, uint32_t mode,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		    lm_grant *g)
{
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	uint16_t at[LM_NAME_MAX];
	uint32_t n = ancestors(name, len, at);
	/* One deadline for the whole path, over its retries. */
	int64_t deadline = wait_ms < 0 || wait_ms > INT64_C(3153600000000)
				   ? INT64_MAX
				   : lm_now_ns() + wait_ms * 1000000;
again:;
	struct lm_path *p = malloc(sizeof(*p) + n * sizeof(p->anc[0]));
	if (p == NULL)
		return LM_ESYS;
	p->n = 0;
	int rc = 0;
	for (uint32_t k = 0; k <= n; k++) {
		char node[LM_NAME_MAX + 1];
		size_t nl = k < n ? at[k] : len;
		memcpy(node, name, nl);
		node[nl] = '\0';
		int64_t left = wait_ms;
		if (wait_ms > 0) {
			int64_t now = lm_now_ns();
			left = now >= deadline ? 0 : (deadline - now) / 1000000;
			if (left == 0 && k > 0) {
				rc = LM_ETIMEDOUT;
				break;
			}
		}
		lm_lockref ref;
		rc = lm_lookup(c, node, &ref);
		if (rc != 0)
			break;
		lm_grant ng;
		rc = lm_acquire_node(c, &ref, k < n ? intention(mode) : mode,
				     ttl_ms, left, deadlock_ms, &ng);
		/* A busy ancestor is a busy lock, however long we waited. */
		if (rc == LM_EBUSY && wait_ms > 0)
			rc = LM_ETIMEDOUT;
		if (rc != 0)
			break;
		if (k < n) {
			lm_hold_from_grant(&p->anc[k], &ng);
			p->n++;
		} else {
			*g = ng;
		}
	}
	if (rc != 0) {
		release_ancestors(c, p->anc, p->n);
		free(p);
		grant_clear(g);
		return rc;
	}
	/* The ancestors were taken first, and their leases ran on while the
	 * node was waited for: renew those that would end well before the
	 * node, so that the path is valid as long as its node. A path that
	 * lost an ancestor meanwhile is no grant at all. */
	struct lm_hold h;
	lm_hold_from_grant(&h, g);
	bool lost = false;
	for (uint32_t k = 0; k < n && !lost; k++) {
		if (p->anc[k].valid_until_ns <
		    h.valid_until_ns - ttl_ms * 1000000 / 4)
			lost = lm_hold_renew(&c->ctx, &p->anc[k], ttl_ms) != 0;
		if (p->anc[k].valid_until_ns < h.valid_until_ns)
			h.valid_until_ns = p->anc[k].valid_until_ns;
		if (p->anc[k].flags & LM_HOLD_RECOVERED)
			h.flags |= LM_HOLD_RECOVERED;
	}
	/* One token for the path: the largest of its holds', claimed on the
	 * node (so no other grant of the node has it) and written back to
	 * every ancestor (so a later conflicting grant anywhere on the path
	 * gets a larger one). */
	uint64_t token = h.token;
	for (uint32_t k = 0; k < n; k++)
		token = p->anc[k].token > token ? p->anc[k].token : token;
	if (lost || !lm_hold_claim_token(&c->ctx, &h, &token) ||
	    lm_now_ns() >= h.valid_until_ns) {
		lm_hold_release(&c->ctx, &h);
		release_ancestors(c, p->anc, p->n);
		free(p);
		grant_clear(g);
		/* Taken again from the top, if the wait allows. */
		if (wait_ms != 0 && lm_now_ns() < deadline)
			goto again;
		return wait_ms == 0 ? LM_EBUSY : LM_ETIMEDOUT;
	}
	for (uint32_t k = 0; k < n; k++)
		lm_hold_raise_token(&c->ctx, &p->anc[k], token);
	h.token = token;
	lm_hold_to_grant(g, &h);
	link_path(c, p);
	G_PATH(g) = (uint64_t)(uintptr_t)p;
	return 0;
}

int lm_tree_renew(lm_client *c, lm_grant *g, int64_t ttl_ms)
{
	struct lm_path *p = grant_path(g);
	int rc = 0;
	for (uint32_t k = 0; k < p->n; k++) {
		int r = lm_hold_renew(&c->ctx, &p->anc[k], ttl_ms);
		rc = rc != 0 ? rc : r;
		if (p->anc[k].valid_until_ns < g->valid_until_ns)
			g->valid_until_ns = p->anc[k].valid_until_ns;
	}
	return rc;
}

int lm_tree_release(lm_client *c, lm_grant *g)
{
	struct lm_path *p = grant_path(g);
	int rc = release_ancestors(c, p->anc, p->n);
	unlink_path(c, p);
	free(p);
	G_PATH(g) = 0;
	return rc;
}

void lm_tree_forget_all(lm_client *c)
{
	while (c->paths != NULL) {
		struct lm_path *p = c->paths;
		c->paths = p->next;
		/* Released, not only forgotten: a hold the session could
		 * not record (more than LM_HELD_MAX at once) is not freed
		 * with the session, and would stay until its lease ends. */
		release_ancestors(c, p->anc, p->n);
		free(p);
	}
}
