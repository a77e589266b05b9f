/*
 * client.c - the public calls of liblockmgr: sessions and the
 * argument checking around the grant protocol (grant.c) and the wait
 * queue (wait_queue.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shm/clock.h"
#include "../shm/isolation.h"
#include "../shm/name_index.h"
#include "../shm/session.h"
#include "../shm/test_hook.h"
#include "../shm/wait_queue.h"
#include "internal.h"

int lm_connect(const char *region, lm_client **out)
{
	if (out == NULL)
		return LM_EINVAL;
	*out = NULL;
	lm_hook_init();
	if (lm_addr_is_etcd(region))  /* backend.h */
		return lm_etcd_connect(region != NULL ? region
						      : getenv("LOCKMGR_REGION"),
				       out);
	char name[LM_REGION_NAME_MAX + 2];
	int rc = lm_region_resolve_name(region, name);
	if (rc != 0)
		return rc;
	struct lm_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return LM_ESYS;
	char why[256];
	rc = lm_region_attach(&c->ctx.region, name, why, sizeof(why));
	if (rc != 0)
		goto out_free;
	if (atomic_load(&c->ctx.region.hdr->supervisor_state) == LM_SUP_STOPPED) {
		rc = LM_ENOSUPERVISOR;
		goto out_detach;
	}
	/* Our pid and start time are what the supervisor watches and what
	 * others judge us by: they must mean the same to them. */
	uint64_t sup_pid_ns = atomic_load(&c->ctx.region.hdr->supervisor_pid_ns);
	uint64_t sup_time_ns = atomic_load(&c->ctx.region.hdr->supervisor_time_ns);
	uint64_t my_pid_ns = lm_pid_namespace(),
		 my_time_ns = lm_time_namespace();
	if ((sup_pid_ns != 0 && my_pid_ns != 0 && sup_pid_ns != my_pid_ns) ||
	    (sup_time_ns != 0 && my_time_ns != 0 &&
	     sup_time_ns != my_time_ns)) {
		rc = LM_EOTHERNS;
		goto out_detach;
	}
	pid_t pid = getpid();
	uint64_t start = lm_proc_start_time(pid);
	if (start == 0) {
		/* Without it the supervisor could not tell us from a later
		 * process with our pid (or from a dead one). */
		rc = LM_ESYS;
		goto out_detach;
	}
	rc = lm_session_claim(&c->ctx.region, pid, start, &c->ctx.life);
	if (rc < 0)
		goto out_detach;
	c->ctx.session = (uint32_t)rc;
	c->ctx.self = &c->ctx.region.sessions[c->ctx.session];
	c->ctx.seq = atomic_load(&c->ctx.self->grant_seq);
	/* A process isolated before it connected starts out cut off, as
	 * it would be behind a partition. */
	lm_isolation_refresh(&c->ctx.region, c->ctx.self, pid, start, &c->ctx.iso_gen,
			     true);
	c->tree = (atomic_load(&c->ctx.region.hdr->flags) & LM_REGION_TREE) != 0;
	*out = c;
	return 0;
out_detach:
	lm_region_detach(&c->ctx.region);
out_free:
	free(c);
	return rc;
}

int lm_disconnect(lm_client *c)
{
	if (c == NULL)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->disconnect(c);
	struct lm_region *r = &c->ctx.region;
	lm_tree_forget_all(c);
	lm_watch_close_all(c);
	uint32_t waited = LM_WAIT_LOCK(atomic_load(&c->ctx.self->waiting_on));
	if (waited != 0 && waited <= r->max_locks)
		lm_queue_depart(c->ctx.self, lm_queue_of(r, waited - 1), waited - 1);
	/* Free whatever this session still holds, on every table: a grant
	 * the caller never released must not outlive the session. */
	lm_free_session_grants(r, c->ctx.session, LM_OWNER_FREE, c->ctx.session);
	LM_HOOK("client.disconnect.before_free");
	/* If the supervisor took the slot over meanwhile (it believed us
	 * dead), the slot is no longer ours to free. */
	lm_session_free(r, c->ctx.session, c->ctx.life);
	lm_region_detach(r);
	free(c);
	return 0;
}

int64_t lm_max_ttl_ms(const lm_client *c)
{
	if (LM_BACKEND(c) != NULL)
		return c->be->max_ttl_ms(c);
	return c == NULL ? LM_EINVAL : c->ctx.region.max_ttl_ms;
}

static int check_ttl(const struct lm_client *c, int64_t ttl_ms)
{
	return ttl_ms >= LM_MIN_TTL_MS && ttl_ms <= c->ctx.region.max_ttl_ms
		       ? 0
		       : LM_EBADTTL;
}

int lm_client_check_ttl(const lm_client *c, int64_t ttl_ms)
{
	return check_ttl(c, ttl_ms);
}

int64_t lm_client_deadline(int64_t wait_ms)
{
	/* A wait of more than a century is "forever" (and would overflow);
	 * a try (0) has no deadline, and reads no clock for one. */
	return wait_ms < 0 || wait_ms > INT64_C(3153600000000) ? INT64_MAX
	       : wait_ms == 0				       ? 0
					: lm_now_ns() + wait_ms * 1000000;
}

/* The deadlock timeout of an acquire that did not choose one: the
 * service's (lockmgrd --deadlock-timeout), else the library's. */
static int64_t default_deadlock_ms(const lm_client *c)
{
	int64_t t = atomic_load_explicit(&c->ctx.region.hdr->deadlock_timeout_ms,
					 memory_order_relaxed);
	return t == 0 ? LM_DEADLOCK_TIMEOUT_MS : t;
}

/* No quorum because the service shut down is "no supervisor". */
static int no_quorum(const struct lm_client *c)
{
	return atomic_load(&c->ctx.region.hdr->supervisor_state) == LM_SUP_STOPPED
		       ? LM_ENOSUPERVISOR
		       : LM_ENOQUORUM;
}

int lm_client_no_quorum(const lm_client *c)
{
	return no_quorum(c);
}

/* Tags a lockref so that a zeroed or foreign struct is refused. */
#define LOCKREF_MAGIC UINT64_C(0x6c6d7265660000)

static uint64_t ref_check(const lm_lockref *ref)
{
	return LOCKREF_MAGIC ^ REF_IDX(ref) ^ (REF_GEN(ref) << 20) ^
	       (REF_LEN(ref) << 50);
}

/* Resolve ref's name (creating it) into its current lock and life. */
static int resolve(lm_client *c, lm_lockref *ref)
{
	uint64_t gen;
	int64_t idx = lm_name_resolve(&c->ctx.region, ref->private_name_,
				      REF_LEN(ref), true, c->ctx.self, &gen);
	if (idx < 0)
		return (int)idx;
	REF_IDX(ref) = (uint64_t)idx;
	REF_GEN(ref) = gen;
	REF_CHECK(ref) = ref_check(ref);
	return 0;
}

int lm_lookup(lm_client *c, const char *name, lm_lockref *ref)
{
	if (c == NULL || ref == NULL)
		return LM_EINVAL;
	if (name == NULL)
		return LM_EBADNAME;
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	int rc = lm_name_check(name, len);
	if (rc != 0)
		return rc;
	memcpy(ref->private_name_, name, len);
	ref->private_name_[len] = '\0';
	REF_LEN(ref) = len;
	if (LM_BACKEND(c) != NULL) /* the name is all another backend needs */
		return 0;
	return resolve(c, ref);
}

/* A grab that settles the acquire whatever the wait: granted, the name
 * gone (resolve it again), or a damaged region. */
static bool grab_ended(enum grab_result gr)
{
	return gr == GRAB_GRANTED || gr == GRAB_STALE || gr == GRAB_DAMAGED ||
	       gr == GRAB_KIND;
}

static int grab_rc(enum grab_result gr)
{
	return gr == GRAB_GRANTED ? 0
	       : gr == GRAB_STALE ? LM_STALE_NAME
	       : gr == GRAB_KIND  ? LM_EKIND
				  : LM_EINCOMPAT;
}

/*
 * One acquire of lock `lock` in its life `gen`. LM_STALE_NAME if that
 * life ended (the name was reclaimed, and the caller resolves it again);
 * a wait resumes with what is left of it.
 */
static int acquire_once(lm_client *c, uint32_t lock, uint64_t gen,
			uint32_t mode, int64_t ttl_ms, int64_t wait_ms,
			int64_t deadline, int64_t deadlock_ms,
			struct lm_hold *h)
{
	/* Go straight to the tables when nobody waits, or when the head of
	 * the queue has not waited long (bounded barging, wait_queue.c). */
	bool tried = lm_may_barge(&c->ctx.region, lock);
	if (tried) {
		struct grab_info info;
		for (int tries = 0; tries < 3; tries++) {
			enum grab_result gr = lm_grab(&c->ctx, lock, gen, mode,
						      ttl_ms, h, &info);
			if (grab_ended(gr))
				return grab_rc(gr);
			/* Only a zero wait fails at once: a wait covers a
			 * passing loss of quorum (wait_queue.c). */
			if (gr == GRAB_NOQUORUM && wait_ms == 0)
				return no_quorum(c);
			if (gr == GRAB_BUSY || gr == GRAB_NOQUORUM)
				break;
		}
	}
	if (wait_ms == 0) {
		if (lm_quorum_lost(&c->ctx))
			return no_quorum(c);
		/* Others are counted as waiting but none is queued (one died
		 * while queueing, say): nobody to overtake, so try. */
		struct grab_info info;
		if (!tried && !lm_queue_has_waiter(&c->ctx.region, lock)) {
			enum grab_result gr = lm_grab(&c->ctx, lock, gen, mode,
						      ttl_ms, h, &info);
			if (grab_ended(gr))
				return grab_rc(gr);
		}
		/* "Busy" was judged from the queue of slot `lock` without a
		 * grab, whose name check would have caught a reclaimed name:
		 * a lockref kept from before (the caller's, or lm_acquire's
		 * name cache) may name a slot another name lives in now, and
		 * its queue says nothing about ours. Its life is checked
		 * after that look: LIVE(gen) now means it was ours then
		 * (a life's generation only grows), so "busy" stands. */
		if (!lm_name_is(&c->ctx.region, lock, gen))
			return LM_STALE_NAME;
		return LM_EBUSY;
	}
	int rc = lm_wait_for_grant(&c->ctx, lock, gen, mode, ttl_ms,
				   deadline, deadlock_ms, h, false);
	return rc == LM_ENOQUORUM ? no_quorum(c) : rc;
}

int lm_acquire_node(lm_client *c, lm_lockref *ref, uint32_t mode,
		    int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		    lm_grant *g)
{
	if (c == NULL || ref == NULL || g == NULL ||
	    REF_CHECK(ref) != ref_check(ref) ||
	    REF_IDX(ref) >= c->ctx.region.max_locks || REF_LEN(ref) == 0 ||
	    REF_LEN(ref) > LM_NAME_MAX)
		return LM_EINVAL;
	int rc = check_ttl(c, ttl_ms);
	if (rc != 0)
		return rc;
	grant_clear(g); /* a failed acquire leaves nothing to release */
	int64_t deadline = lm_client_deadline(wait_ms);
	for (;;) {
		rc = acquire_once(c, (uint32_t)REF_IDX(ref), REF_GEN(ref),
				  mode, ttl_ms, wait_ms, deadline, deadlock_ms,
				  grant_hold(g));
		if (rc != LM_STALE_NAME)
			return rc;
		/* Its name was reclaimed while nobody used it (another name
		 * may live in its slot now): find or create it again. */
		rc = resolve(c, ref);
		if (rc != 0)
			return rc;
		if (wait_ms > 0 && lm_now_ns() >= deadline)
			return LM_ETIMEDOUT;
	}
}

/* Does name have ancestors (an inner '/')? */
static bool has_parent(const char *name, size_t len)
{
	return len > 1 && memchr(name + 1, '/', len - 1) != NULL;
}

int lm_acquire_ref(lm_client *c, lm_lockref *ref, int64_t ttl_ms,
		   int64_t wait_ms, lm_grant *g)
{
	if (LM_BACKEND(c) != NULL && ref != NULL)
		return REF_LEN(ref) == 0 || REF_LEN(ref) > LM_NAME_MAX
			       ? LM_EINVAL
			       : c->be->acquire(c, ref->private_name_,
						LM_MODE_X, ttl_ms, wait_ms, 0,
						g);
	if (c != NULL && ref != NULL && c->tree &&
	    REF_LEN(ref) <= LM_NAME_MAX &&
	    has_parent(ref->private_name_, REF_LEN(ref)))
		return lm_tree_acquire(c, ref->private_name_, LM_MODE_X,
				       ttl_ms, wait_ms, default_deadlock_ms(c),
				       g);
	return lm_acquire_node(c, ref, LM_MODE_X, ttl_ms, wait_ms,
			       c == NULL ? LM_DEADLOCK_TIMEOUT_MS
					 : default_deadlock_ms(c),
			       g);
}

/*
 * The entry of c's name cache (lm_client.name_cache) for a name of len
 * bytes, or NULL for a length no name has. The name itself is compared
 * by the caller: an entry holds a name only once lm_lookup checked it,
 * so an equal name of the same length (strnlen: no NUL inside) is a
 * valid one, and its lockref is used as lm_acquire_ref uses one.
 */
static lm_lockref *cached_ref(lm_client *c, const char *name, size_t len)
{
	if (len == 0 || len > LM_NAME_MAX)
		return NULL;
	size_t n = sizeof(c->name_cache) / sizeof(c->name_cache[0]);
	_Static_assert((sizeof(c->name_cache) / sizeof(c->name_cache[0]) &
			(sizeof(c->name_cache) / sizeof(c->name_cache[0]) -
			 1)) == 0,
		       "the name cache is a power of two");
	size_t k = (len ^ (unsigned char)name[len - 1] ^
		    ((size_t)(unsigned char)name[len / 2] << 1)) &
		   (n - 1);
	return &c->name_cache[k];
}

static int acquire_name(lm_client *c, const char *name, uint32_t mode,
			int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
			lm_grant *g)
{
	if (c == NULL || g == NULL)
		return LM_EINVAL;
	if (name == NULL)
		return LM_EBADNAME;
	if (LM_BACKEND(c) != NULL)
		return c->be->acquire(c, name, mode, ttl_ms, wait_ms,
				      deadlock_ms, g);
	int rc = check_ttl(c, ttl_ms);
	if (rc != 0)
		return rc;
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	if (c->tree && has_parent(name, len) && lm_name_check(name, len) == 0)
		return lm_tree_acquire(c, name, mode, ttl_ms, wait_ms,
				       deadlock_ms, g);
	lm_lockref local, *ref = cached_ref(c, name, len);
	if (ref == NULL || REF_LEN(ref) != len ||
	    memcmp(ref->private_name_, name, len) != 0) {
		if (ref == NULL)
			ref = &local;
		rc = lm_lookup(c, name, ref);
		if (rc != 0) {
			REF_LEN(ref) = 0; /* names nothing now */
			return rc;
		}
	}
	return lm_acquire_node(c, ref, mode, ttl_ms, wait_ms, deadlock_ms,
			       g);
}

int lm_acquire(lm_client *c, const char *name, int64_t ttl_ms,
	       int64_t wait_ms, lm_grant *g)
{
	return acquire_name(c, name, LM_MODE_X, ttl_ms, wait_ms,
			    c == NULL		     ? LM_DEADLOCK_TIMEOUT_MS
			    : LM_BACKEND(c) != NULL ? 0
						     : default_deadlock_ms(c),
			    g);
}

int lm_acquire_ex(lm_client *c, const char *name,
		  const lm_acquire_opts *opts, lm_grant *g)
{
	/* A smaller size is an older program's struct: what it lacks is
	 * zero. A larger one may only carry zeros beyond what we know. */
	if (opts == NULL || opts->size < offsetof(lm_acquire_opts, flags))
		return LM_EINVAL;
	lm_acquire_opts o = {0};
	size_t n = opts->size < sizeof(o) ? opts->size : sizeof(o);
	memcpy(&o, opts, n);
	for (size_t k = sizeof(o); k < opts->size; k++)
		if (((const unsigned char *)opts)[k] != 0)
			return LM_EINVAL;
	if (o.mode >= LM_MODE_COUNT || o.flags != 0 || o.reserved_ != 0)
		return LM_EINVAL;
	if (c == NULL)
		return LM_EINVAL;
	int64_t deadlock_ms = o.deadlock_timeout_ms != 0 ? o.deadlock_timeout_ms
			      : LM_BACKEND(c) != NULL ? 0
						      : default_deadlock_ms(c);
	return acquire_name(c, name, o.mode, o.ttl_ms, o.wait_ms, deadlock_ms,
			    g);
}

const char *lm_deadlock_cycle(const lm_client *c)
{
	return c == NULL ? "" : c->ctx.deadlock;
}

static int check_grant(const lm_client *c, const lm_grant *g)
{
	if (c == NULL || g == NULL)
		return LM_EINVAL;
	if (grant_live(g) != LM_HOLD_LIVE)
		return LM_ENOTHELD;
	if (G_LOCK(g) >= c->ctx.region.max_locks)
		return LM_EINVAL;
	return 0;
}

int lm_renew(lm_client *c, lm_grant *g, int64_t ttl_ms)
{
	if (LM_BACKEND(c) != NULL)
		return g == NULL ? LM_EINVAL : c->be->renew(c, g, ttl_ms);
	int rc = check_grant(c, g);
	if (rc != 0)
		return rc;
	/* A stale copy of a semaphore grant (the grant since released
	 * and its pin entry taken again) holds nothing. */
	if (G_IS_SEM(g) && !lm_sem_current(c, g))
		return LM_ENOTHELD;
	rc = check_ttl(c, ttl_ms);
	if (rc != 0)
		return rc;
	rc = lm_hold_renew(&c->ctx, grant_hold(g), ttl_ms);
	if (grant_path(g) != NULL) {
		int trc = lm_tree_renew(c, g, ttl_ms);
		rc = rc != 0 ? rc : trc;
	}
	return rc;
}

int lm_release(lm_client *c, lm_grant *g)
{
	if (LM_BACKEND(c) != NULL)
		return g == NULL ? LM_EINVAL : c->be->release(c, g);
	int rc = check_grant(c, g);
	if (rc != 0)
		return rc;
	/* A stale copy of a semaphore grant holds nothing: its release
	 * must not touch what the session's later grant of the same pin
	 * entry and held[] entry keeps (lm_client.sem_pin_tag). */
	if (G_IS_SEM(g) && !lm_sem_current(c, g))
		return LM_ENOTHELD;
	rc = lm_hold_release(&c->ctx, grant_hold(g));
	if (G_IS_SEM(g))
		lm_sem_released(c, g);
	if (grant_path(g) != NULL) {
		int trc = lm_tree_release(c, g);
		rc = rc != 0 ? rc : trc;
	}
	return rc;
}

int lm_convert(lm_client *c, lm_grant *g, uint32_t mode, int64_t ttl_ms,
	       int64_t wait_ms)
{
	if (LM_BACKEND(c) != NULL)
		return g == NULL ? LM_EINVAL
				 : c->be->convert(c, g, mode, ttl_ms, wait_ms);
	int rc = check_grant(c, g);
	if (rc != 0)
		return rc;
	if (mode >= LM_MODE_COUNT)
		return LM_EINVAL;
	if (mode == g->mode)
		return 0;
	/* A tree grant's ancestors hold intention modes chosen for its
	 * mode: converting it would mean converting them too. A semaphore's
	 * slot is held exclusively by its one holder. */
	if (grant_path(g) != NULL || G_IS_SEM(g))
		return LM_EINVAL;
	struct lm_hold h;
	lm_hold_from_grant(&h, g);
	if (g->mode == LM_MODE_X) {
		rc = lm_hold_downgrade(&c->ctx, &h, mode);
		lm_hold_to_grant(g, &h);
		return rc;
	}
	if (mode != LM_MODE_X)
		return LM_EINVAL; /* between counted modes: not supported */
	rc = check_ttl(c, ttl_ms);
	if (rc != 0)
		return rc;
	struct lm_region *r = &c->ctx.region;
	uint32_t lock = h.lock;
	struct grab_info info;
	enum grab_result gr = GRAB_BUSY;
	/* Straight to the tables unless others wait (bounded barging). */
	if (lm_may_barge(r, lock))
		gr = lm_hold_upgrade(&c->ctx, &h, ttl_ms, &info);
	if (gr == GRAB_BUSY && wait_ms != 0) {
		int64_t deadline = wait_ms < 0 || wait_ms > INT64_C(3153600000000)
					   ? INT64_MAX
					   : lm_now_ns() + wait_ms * 1000000;
		uint64_t gen = LM_NAME_GEN(atomic_load(lm_name_life(r, lock)));
		rc = lm_wait_for_grant(&c->ctx, lock, gen, LM_MODE_X, ttl_ms,
				       deadline, default_deadlock_ms(c), &h,
				       true);
		lm_hold_to_grant(g, &h);
		if (rc == LM_ENOQUORUM)
			return no_quorum(c);
		return rc == LM_STALE_NAME ? LM_ELEASELOST : rc;
	}
	lm_hold_to_grant(g, &h);
	switch (gr) {
	case GRAB_GRANTED:
		return 0;
	case GRAB_LOST:
		return LM_ELEASELOST;
	default:
		return LM_EBUSY;
	}
}
