/*
 * top_events.c - what `lockctl top` works out from successive
 * snapshots: the events between them, how long waiters have been seen
 * waiting, and what a lease bar stands for.
 *
 * The region keeps no log, and a log would put a write on every
 * client's lock path; so top compares each snapshot with the one
 * before. An event is therefore seen up to one refresh late, and
 * anything that starts and ends between two snapshots (a lock taken
 * and released within the interval) is not seen at all. Each record is
 * matched by its identity, not its position: a session by slot and
 * generation (slots and pids are reused), a lock by index, the
 * generation of its name and the grant (session and sequence) that
 * holds it.
 *
 * How a grant ended is read from what is left behind, right after the
 * snapshot that no longer shows it:
 *   - its holder's process is gone: it died, and the supervisor (or the
 *     lease) freed the lock ("freed");
 *   - its owner word is still on some table with its lease running in
 *     that server's clock: it holds no majority of the servers that are
 *     up now ("lost": a server went down or restarted under it);
 *   - its owner words are left with their leases ended, or (none left)
 *     the lease had run out by now, or the tables carry the abandoned
 *     mark: the lease ended without a release ("expire"), even if a
 *     server whose clock runs fast already freed its own copy clean;
 *   - otherwise its holder released it ("release").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"

int top_events_init(struct top_events *ev, uint32_t cap)
{
	ev->ring = calloc(cap ? cap : 1, sizeof(*ev->ring));
	ev->cap = cap ? cap : 1;
	ev->total = 0;
	return ev->ring != NULL ? 0 : -1;
}

void top_events_free(struct top_events *ev)
{
	free(ev->ring);
	ev->ring = NULL;
}

const struct top_event *top_event_at(const struct top_events *ev,
				     uint64_t seq)
{
	if (seq >= ev->total || seq + ev->cap < ev->total)
		return NULL;
	return &ev->ring[seq % ev->cap];
}

static void vadd(struct top_events *ev, const struct timespec *when,
		 const char *kind, const char *fmt, va_list ap)
{
	struct top_event *e = &ev->ring[ev->total % ev->cap];
	e->when = *when;
	e->kind = kind;
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	ev->total++;
}

void top_event_add(struct top_events *ev, const struct timespec *when,
		   const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vadd(ev, when, kind, fmt, ap);
	va_end(ap);
}

/* An event seen in view v. */
__attribute__((format(printf, 4, 5)))
static void add(struct top_events *ev, const struct top_view *v,
		const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vadd(ev, &v->wall, kind, fmt, ap);
	va_end(ap);
}

/* Entry of session slot / lock idx in s (both sorted), or NULL. */
static const struct ctl_sess_info *find_sess(const struct ctl_snapshot *s,
					     int64_t slot)
{
	uint32_t lo = 0, hi = s->nsess;
	while (slot >= 0 && lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->sess[mid].slot < slot)
			lo = mid + 1;
		else if (s->sess[mid].slot > slot)
			hi = mid;
		else
			return &s->sess[mid];
	}
	return NULL;
}

static const struct ctl_lock_info *find_lock(const struct ctl_snapshot *s,
					     uint32_t idx)
{
	uint32_t lo = 0, hi = s->nlocks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->locks[mid].idx < idx)
			lo = mid + 1;
		else if (s->locks[mid].idx > idx)
			hi = mid;
		else
			return &s->locks[mid];
	}
	return NULL;
}

/* The same lock (index and name life) held by the same grant. */
static bool same_grant(const struct ctl_lock_info *a,
		       const struct ctl_lock_info *b)
{
	return a != NULL && b != NULL && a->gen == b->gen &&
	       a->holder_slot >= 0 && b->holder_slot >= 0 &&
	       a->grant == b->grant;
}

static bool alive_state(const char *state)
{
	return !strcmp(state, "live") || !strcmp(state, "claiming");
}

/* ------------------------------------------------------------------ */
/* What only a sequence of snapshots tells */

static void track_waits(struct top_view *v, const struct top_view *prev)
{
	struct ctl_snapshot *s = &v->s;
	for (uint32_t k = 0; k < s->nsess; k++) {
		const struct ctl_sess_info *si = &s->sess[k];
		int64_t since = -1;
		if (si->waiting_on >= 0) {
			since = s->now_ns;
			const struct ctl_sess_info *p =
				prev != NULL ? find_sess(&prev->s, si->slot)
					     : NULL;
			if (p != NULL && p->gen == si->gen &&
			    p->waiting_on == si->waiting_on) {
				int64_t was = prev->sess_wait_since_ns
						      [p - prev->s.sess];
				if (was >= 0)
					since = was;
			}
		}
		v->sess_wait_since_ns[k] = since;
	}
	for (uint32_t k = 0; k < s->nlocks; k++)
		v->lx[k].wait_since_ns = -1;
	for (uint32_t k = 0; k < s->nsess; k++) {
		int64_t since = v->sess_wait_since_ns[k];
		if (since < 0)
			continue;
		const struct ctl_lock_info *li =
			find_lock(s, (uint32_t)s->sess[k].waiting_on);
		if (li == NULL)
			continue;
		struct top_lock_extra *x = &v->lx[li - s->locks];
		if (x->wait_since_ns < 0 || since < x->wait_since_ns)
			x->wait_since_ns = since;
	}
	/* The head of a queue (its oldest waiter) has waited at least
	 * since its turn began: the one time the region records. */
	for (uint32_t k = 0; k < s->nlocks; k++) {
		int64_t turn = s->locks[k].turn_since_ns;
		struct top_lock_extra *x = &v->lx[k];
		if (turn > 0 && (x->wait_since_ns < 0 || turn < x->wait_since_ns))
			x->wait_since_ns = turn;
	}
}

/*
 * A full bar is the TTL the holder asked for when its session still
 * says; otherwise the longest lease top has seen this grant have (the
 * lease as first seen, then as renewed).
 */
static void track_spans(struct top_view *v, const struct top_view *prev)
{
	struct ctl_snapshot *s = &v->s;
	for (uint32_t k = 0; k < s->nlocks; k++) {
		const struct ctl_lock_info *li = &s->locks[k];
		int64_t span = 0;
		if (li->holder_slot >= 0) {
			span = li->ttl_ms > 0 ? li->ttl_ms : li->lease_left_ms;
			const struct ctl_lock_info *p =
				prev != NULL ? find_lock(&prev->s, li->idx)
					     : NULL;
			if (li->ttl_ms <= 0 && same_grant(p, li)) {
				int64_t was = prev->lx[p - prev->s.locks]
						      .span_ms;
				span = was > span ? was : span;
			}
			if (li->lease_left_ms > span)
				span = li->lease_left_ms;
		}
		v->lx[k].span_ms = span;
	}
}

/* ------------------------------------------------------------------ */
/* Events */

static void diff_supervisor(struct top_events *ev, const struct top_view *p,
			    const struct top_view *v)
{
	const struct ctl_snapshot *o = &p->s, *n = &v->s;
	if (!strcmp(o->sup_state, n->sup_state) && o->sup_pid == n->sup_pid)
		return;
	if (!strcmp(n->sup_state, "running"))
		add(ev, v, "service", "supervisor pid %d running%s", n->sup_pid,
		    o->sup_pid != n->sup_pid ? " (adopted the region)" : "");
	else if (!strcmp(n->sup_state, "dead"))
		add(ev, v, "service", "supervisor pid %d died: dead servers "
		    "are not restarted nor dead clients' locks freed",
		    n->sup_pid);
	else if (!strcmp(n->sup_state, "stopped"))
		add(ev, v, "service", "supervisor stopped: the region is "
		    "removed");
	else
		add(ev, v, "service", "supervisor %s", n->sup_state);
}

static void diff_servers(struct top_events *ev, const struct top_view *p,
			 const struct top_view *v)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct ctl_srv_info *o = &p->s.srv[i], *n = &v->s.srv[i];
		bool recovering = !strcmp(n->state, "recovering");
		if (n->epoch != o->epoch) {
			/* Down and back between two frames (the default
			 * restart delay is 100 ms; a frame on a loaded
			 * host can take longer): the death is still news. */
			if (strcmp(o->state, "down") != 0 && o->pid > 0)
				add(ev, v, "server", "server %u down (pid %d "
				    "gone)", i, o->pid);
			add(ev, v, "server", "server %u restarted (epoch %llu, "
			    "pid %d): %s%s%s", i,
			    (unsigned long long)n->epoch, n->pid, n->state,
			    recovering ? ", " : "",
			    recovering ? n->recovery : "");
		} else if (strcmp(n->state, o->state) != 0) {
			if (!strcmp(n->state, "down"))
				add(ev, v, "server", "server %u down (pid %d "
				    "gone)", i, o->pid);
			else if (!strcmp(n->state, "hung"))
				add(ev, v, "server", "server %u hung: no "
				    "heartbeat for %lld ms", i,
				    (long long)n->hb_age_ms);
			else if (recovering)
				add(ev, v, "server", "server %u recovering: %s",
				    i, n->recovery);
			else if (!strcmp(o->state, "recovering"))
				add(ev, v, "server", "server %u up: counts "
				    "again", i);
			else if (!strcmp(o->state, "hung"))
				add(ev, v, "server", "server %u up: its "
				    "heartbeat is back", i);
			else
				add(ev, v, "server", "server %u %s", i,
				    n->state);
		}
		if (o->skew.base_ms != n->skew.base_ms ||
		    o->skew.base_srv_ms != n->skew.base_srv_ms ||
		    o->skew.rate_ppm != n->skew.rate_ppm) {
			if (n->skew_offset_ms == 0 &&
			    n->skew_rate_ppm == LM_RATE_ONE)
				add(ev, v, "server", "server %u clock true "
				    "again", i);
			else
				add(ev, v, "server", "server %u clock skew "
				    "%+lld ms, rate %.3f", i,
				    (long long)n->skew_offset_ms,
				    (double)n->skew_rate_ppm / 1e6);
		}
	}
}

/* What the tables of o's grant say now (see the top of the file);
 * nothing of how it ended once a later grant has been there. */
struct left_behind {
	bool ours;      /* its owner word is still on some table */
	bool ours_live; /* ... with its lease running in that server's clock */
	bool abandoned; /* a table it held carries the abandoned mark */
	bool clean;     /* ... or was released cleanly */
};

static struct left_behind left_behind(const struct lm_region *r,
				      const struct ctl_lock_info *o)
{
	struct left_behind lb = {false, false, false, false};
	bool later = false;
	int64_t now_ns = lm_now_ns();
	for (unsigned j = 0; j < LM_NSERVERS; j++) {
		const struct lm_slot *slot = lm_slot_of(r, j, o->idx);
		uint64_t w = atomic_load(&slot->owner);
		if (LM_OWNER_SESSION(w) != 0 &&
		    (w & UINT64_C(0xffffffffffff)) == o->grant) {
			uint64_t lease = atomic_load(&slot->lease);
			lb.ours = true;
			if (LM_LEASE_TAG(lease) == LM_OWNER_TAG(w) &&
			    LM_LEASE_EXPIRY(lease) >
				    lm_server_clock_ms(r->servers[j], now_ns))
				lb.ours_live = true;
		}
		if (!(o->tables & (1u << j)))
			continue;
		if (w == LM_OWNER_ABANDONED)
			lb.abandoned = true;
		else if (w == LM_OWNER_FREE)
			lb.clean = true;
		/* A higher token: another grant came and went since, and
		 * the marks are its own. */
		if (atomic_load(&slot->token) > o->token)
			later = true;
	}
	if (later)
		lb.abandoned = lb.clean = false;
	return lb;
}

static void session_gone(struct top_events *ev, const struct top_view *v,
			 const struct ctl_sess_info *si, const char *state)
{
	if (!strcmp(state, "gone"))
		add(ev, v, "death", "session %u, pid %d: the process is gone, "
		    "and no supervisor frees its locks", si->slot, si->pid);
	else
		add(ev, v, "death", "session %u, pid %d: the process is gone",
		    si->slot, si->pid);
}

/*
 * Session o ended between p and now, and its process is gone. Did it
 * die, or disconnect and then exit? Both free the slot, and a process
 * that disconnects and exits within one refresh looks the same as one
 * that was killed, except for its locks: a disconnect releases them
 * cleanly, while the supervisor marks a dead holder's locks abandoned
 * (and a waiter may take them at once). So: it died if it held a lock
 * in p that was not released cleanly.
 */
static bool died_holding(const struct lm_region *r, const struct top_view *p,
			 const struct ctl_sess_info *o)
{
	for (uint32_t k = 0; k < p->s.nlocks; k++) {
		const struct ctl_lock_info *li = &p->s.locks[k];
		if (li->holder_slot != (int64_t)o->slot)
			continue;
		struct left_behind lb = left_behind(r, li);
		if (!lb.clean || lb.abandoned)
			return true;
	}
	return false;
}

static void diff_sessions(struct top_events *ev, const struct lm_region *r,
			  const struct top_view *p, const struct top_view *v)
{
	const struct ctl_snapshot *os = &p->s, *ns = &v->s;
	for (uint32_t k = 0; k < os->nsess; k++) {
		const struct ctl_sess_info *o = &os->sess[k];
		const struct ctl_sess_info *n = find_sess(ns, o->slot);
		if (n != NULL && n->gen == o->gen) {
			if (alive_state(o->state) && !alive_state(n->state))
				session_gone(ev, v, n, n->state);
			else if (!strcmp(o->state, "claiming") &&
				 !strcmp(n->state, "live"))
				add(ev, v, "connect", "session %u, pid %d",
				    n->slot, n->pid);
			continue;
		}
		/* Its slot is free or has another life: it ended. A dead
		 * or gone one was reported when it died, and a claim that
		 * never went live never connected. */
		if (strcmp(o->state, "live") != 0)
			continue;
		if (ctl_pid_alive(o->pid, o->start_time))
			add(ev, v, "disconnect", "session %u, pid %d", o->slot,
			    o->pid);
		else if (died_holding(r, p, o))
			session_gone(ev, v, o, "dead");
		else
			add(ev, v, "exit", "session %u, pid %d: ended, and its "
			    "process is gone", o->slot, o->pid);
	}
	for (uint32_t k = 0; k < ns->nsess; k++) {
		const struct ctl_sess_info *n = &ns->sess[k];
		const struct ctl_sess_info *o = find_sess(os, n->slot);
		if ((o != NULL && o->gen == n->gen) ||
		    !strcmp(n->state, "claiming"))
			continue;
		add(ev, v, "connect", "session %u, pid %d", n->slot, n->pid);
		if (!alive_state(n->state))
			session_gone(ev, v, n, n->state);
	}
}

/* How did the grant that held o in p end, now that v no longer shows
 * it? (See the top of the file.) */
static void grant_ended(struct top_events *ev, const struct lm_region *r,
			const struct top_view *p, const struct top_view *v,
			const struct ctl_lock_info *o)
{
	char name[4 * LM_NAME_MAX + 1];
	top_escape(name, sizeof(name), o->name, o->len);
	const struct ctl_sess_info *h = find_sess(&p->s, o->holder_slot);
	bool dead = !ctl_pid_alive(o->holder_pid,
				   h != NULL ? h->start_time : 0);
	int64_t elapsed_ms = (v->s.now_ns - p->s.now_ns) / 1000000;
	struct left_behind lb = left_behind(r, o);
	/* Its owner words left behind say it best: their leases ended. (The
	 * time since the last frame is a ms short or long at the edge.) */
	bool ran_out = lb.ours ? !lb.ours_live
			       : o->lease_left_ms <= elapsed_ms;
	unsigned long long token = (unsigned long long)o->token;
	if (lb.ours_live && !dead)
		add(ev, v, "lost", "%s: pid %d's grant (token %llu) no longer "
		    "holds a majority of the servers up", name, o->holder_pid,
		    token);
	else if (lb.clean && !lb.abandoned && !lb.ours)
		/* Its process may be gone since: it released first. (A
		 * clean table beside owner words still ours, past the
		 * lease, is a server whose fast clock dropped its copy
		 * first: the lease ran out.) */
		add(ev, v, "release", "%s by pid %d, token %llu", name,
		    o->holder_pid, token);
	else if (dead)
		add(ev, v, "freed", "%s: holder pid %d died, token %llu", name,
		    o->holder_pid, token);
	else if (ran_out || lb.abandoned)
		add(ev, v, "expire", "%s: the lease of pid %d ran out, token "
		    "%llu", name, o->holder_pid, token);
	else
		add(ev, v, "release", "%s by pid %d, token %llu", name,
		    o->holder_pid, token);
}

static void diff_locks(struct top_events *ev, const struct lm_region *r,
		       const struct top_view *p, const struct top_view *v)
{
	const struct ctl_snapshot *os = &p->s, *ns = &v->s;
	/* Ends first: a lock handed over between two snapshots reads as
	 * the release and then the grant. */
	for (uint32_t k = 0; k < os->nlocks; k++) {
		const struct ctl_lock_info *o = &os->locks[k];
		if (o->holder_slot >= 0 &&
		    !same_grant(o, find_lock(ns, o->idx)))
			grant_ended(ev, r, p, v, o);
	}
	for (uint32_t k = 0; k < ns->nlocks; k++) {
		const struct ctl_lock_info *n = &ns->locks[k];
		if (n->holder_slot < 0 || same_grant(find_lock(os, n->idx), n))
			continue;
		char name[4 * LM_NAME_MAX + 1];
		top_escape(name, sizeof(name), n->name, n->len);
		add(ev, v, "grant", "%s to pid %d (session %lld), token %llu",
		    name, n->holder_pid, (long long)n->holder_slot,
		    (unsigned long long)n->token);
	}
}

/* ------------------------------------------------------------------ */

int top_observe(struct top_view *v, const struct top_view *prev,
		const struct lm_region *r, struct top_events *ev)
{
	memset(v, 0, sizeof(*v));
	clock_gettime(CLOCK_REALTIME, &v->wall);
	v->taken = true;
	if (ctl_snapshot_take(&v->s, r) != 0)
		return -1;
	v->sess_wait_since_ns = malloc((v->s.nsess ? v->s.nsess : 1) *
				       sizeof(*v->sess_wait_since_ns));
	v->lx = malloc((v->s.nlocks ? v->s.nlocks : 1) * sizeof(*v->lx));
	if (v->sess_wait_since_ns == NULL || v->lx == NULL)
		return -1;
	track_waits(v, prev);
	track_spans(v, prev);
	if (prev == NULL)
		return 0;
	diff_supervisor(ev, prev, v);
	diff_servers(ev, prev, v);
	diff_sessions(ev, r, prev, v);
	diff_locks(ev, r, prev, v);
	return 0;
}

void top_view_free(struct top_view *v)
{
	if (v->taken)
		ctl_snapshot_free(&v->s);
	free(v->sess_wait_since_ns);
	free(v->lx);
	memset(v, 0, sizeof(*v));
}
