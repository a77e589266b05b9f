/*
 * lockmgr.h - lease-based locks with fencing tokens, granted by a
 * majority of lock servers.
 *
 * This header is backend-neutral: nothing here says "shared memory", so
 * that a later backend (an etcd cluster) can implement the same calls.
 *
 * Concurrency of the calls
 * ------------------------
 *   lm_connect / lm_disconnect   one client per thread: a client (session)
 *                                is not thread-safe; open one per thread.
 *   lm_acquire                   may block up to wait_ms (0 = never,
 *                                negative = until granted). Sleeps on a
 *                                futex, never spins or polls.
 *   lm_acquire_ref               as lm_acquire, for a resolved name.
 *   lm_acquire_ex                as lm_acquire, with a mode and options.
 *   lm_lookup                    never blocks.
 *   lm_convert                   an upgrade may block up to wait_ms.
 *   lm_renew, lm_release         never block.
 *   lm_sem_acquire               as lm_acquire.
 *   lm_watch_next                may block up to timeout_ms.
 *   lm_campaign                  as lm_acquire; lm_proclaim, lm_resign
 *                                and lm_leader never block.
 *   lm_strerror                  thread-safe, never blocks.
 *
 * Errors are returned as negative LM_E* codes (their own range, so they
 * never collide with -errno); 0 is success.
 */
#ifndef LOCKMGR_H
#define LOCKMGR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM_OK            0
#define LM_EBUSY         (-1001) /* held by another session (try-lock) */
#define LM_ETIMEDOUT     (-1002) /* wait_ms elapsed before a grant */
#define LM_ENOQUORUM     (-1003) /* fewer than a majority of servers up */
#define LM_ELEASELOST    (-1004) /* the lease expired or was taken over */
#define LM_ENOTHELD      (-1005) /* this grant was already released */
#define LM_EBADNAME      (-1006) /* name empty, too long, or has NUL */
#define LM_EBADTTL       (-1007) /* TTL out of range */
#define LM_ETABLEFULL    (-1008) /* no free lock slot */
#define LM_ENOSUPERVISOR (-1009) /* no region: lockmgrd is not running */
#define LM_EINCOMPAT     (-1010) /* region is foreign/corrupt/other ABI */
#define LM_ESESSIONS     (-1011) /* no free session slot */
#define LM_EINVAL        (-1012) /* bad argument (NULL, bad flags) */
#define LM_ESYS          (-1013) /* system call failed; see errno */
#define LM_EBADREGION    (-1014) /* bad region name */
#define LM_EOTHERNS      (-1015) /* another pid/time namespace than
				  * lockmgrd's */
#define LM_EDEADLK       (-1016) /* waiting would never end: a cycle of
				  * sessions waiting for each other;
				  * this wait was chosen to end it */

#define LM_EKIND         (-1017) /* the name is used as another kind
				  * of lock (a semaphore of another slot
				  * count, or a plain lock) */
#define LM_EPINS         (-1018) /* this client watches (or waits on or
				  * holds semaphores of) too many names */
#define LM_ENOLEADER     (-1019) /* nobody leads the election */
#define LM_ENOTSUP       (-1020) /* the backend the address chose (etcd)
				  * cannot do this call (lock modes other
				  * than X, convert, deadlock detection):
				  * never approximated */

#define LM_ERR_FIRST     (-1020)
#define LM_ERR_LAST      (-1001)

/* The shortest lease: shorter ones leave nothing once the drift bound
 * (2 ms + 1%) is taken off. */
#define LM_MIN_TTL_MS 10

/* lm_grant.flags */
#define LM_GRANT_RECOVERED 0x1u /* the previous holder died or lost its
				 * lease without releasing: what the lock
				 * protects may be half-written (like a
				 * robust mutex's EOWNERDEAD) */

/*
 * Lock modes. Exclusive (X) is what lm_acquire takes. Shared (S) holders
 * exclude writers but not each other. The intention modes (IS, IX, SIX)
 * are for trees of locks (Gray's granularity locking): a holder of a
 * mode on a node first takes the matching intention mode on each
 * ancestor. Which modes may be held at once by different sessions:
 *
 *          IS   IX   S    SIX  X
 *    IS    yes  yes  yes  yes  no
 *    IX    yes  yes  no   no   no
 *    S     yes  no   yes  no   no
 *    SIX   yes  no   no   no   no
 *    X     no   no   no   no   no
 */
#define LM_MODE_X   0u /* exclusive (the default) */
#define LM_MODE_S   1u /* shared: read */
#define LM_MODE_IS  2u /* intention to take S below */
#define LM_MODE_IX  3u /* intention to take X (or S) below */
#define LM_MODE_SIX 4u /* S on this node plus IX: read all, write some */
#define LM_MODE_COUNT 5u

typedef struct lm_client lm_client;

/*
 * One grant of a lock, filled in by lm_acquire and kept by the caller
 * until lm_release. Renew and release name the grant, so a holder whose
 * lease was lost can never renew or release a newer holder's grant.
 */
typedef struct lm_grant {
	uint64_t token;          /* fencing token: strictly increasing over
				  * successive grants of the same lock */
	int64_t valid_until_ns;  /* CLOCK_MONOTONIC time after which the
				  * lease must be treated as lost (TTL minus
				  * the drift bound, measured from before
				  * the acquire began) */
	uint32_t flags;          /* LM_GRANT_* */
	uint32_t mode;           /* LM_MODE_* held */
	uint32_t private_u32_[2];
	uint64_t private_[8];    /* backend state: do not touch */
} lm_grant;

/*
 * Attach to the lock service and register a session. region may be NULL
 * ($LOCKMGR_REGION, else "/lockmgr"). The address picks the service:
 * "/name" is lockmgrd's shared-memory region on this host;
 * "etcd://host:port[,host:port...][/prefix]" is an etcd cluster (its
 * keys under prefix, default /lockmgr), where a lease is whole seconds
 * (at least etcd's minimum) and calls it cannot do say LM_ENOTSUP.
 * Errors for an etcd address: LM_EBADREGION (the address is malformed),
 * LM_ENOSUPERVISOR (no endpoint answered), LM_EINCOMPAT (what answered
 * is not etcd's v3 JSON gateway), LM_ENOQUORUM (no leader).
 */
int lm_connect(const char *region, lm_client **out);

/* Release every lock the session holds, close its open watches (their
 * handles are then invalid, as its grants are) and unregister it. */
int lm_disconnect(lm_client *c);

/*
 * Take `name` exclusively with a lease of ttl_ms. wait_ms: 0 = try once
 * (LM_EBUSY if held), > 0 = wait at most that long (LM_ETIMEDOUT),
 * < 0 = wait until granted. Waiters are served in FIFO order.
 */
int lm_acquire(lm_client *c, const char *name, int64_t ttl_ms,
	       int64_t wait_ms, lm_grant *g);

/*
 * A lock name resolved once, for callers that take the same lock often:
 * lm_acquire_ref skips the name lookup. Valid for the client that made
 * it, until lm_disconnect. The service reclaims names that nothing
 * holds, waits on or watches (so that per-request names never fill its
 * table); a reference to a reclaimed name is resolved again, and
 * updated, by the next lm_acquire_ref, which is why it takes the
 * reference by pointer and keeps a copy of the name.
 */
typedef struct lm_lockref {
	uint64_t private_[4];
	char private_name_[256];
} lm_lockref;

int lm_lookup(lm_client *c, const char *name, lm_lockref *ref);
int lm_acquire_ref(lm_client *c, lm_lockref *ref, int64_t ttl_ms,
		   int64_t wait_ms, lm_grant *g);

/*
 * Options of lm_acquire_ex. Set `size` to sizeof(lm_acquire_opts) (the
 * LM_ACQUIRE_OPTS macro does), so that later versions can add fields
 * without breaking programs built against this one; a field this
 * version does not know must be zero.
 */
typedef struct lm_acquire_opts {
	uint32_t size;        /* sizeof(lm_acquire_opts) */
	uint32_t mode;        /* LM_MODE_*; 0 is X */
	int64_t ttl_ms;       /* lease */
	int64_t wait_ms;      /* as lm_acquire's */
	int64_t deadlock_timeout_ms; /* how long to wait before looking for
				* a cycle of waits: 0 = the service's
				* default (1000 unless lockmgrd
				* --deadlock-timeout), < 0 = never */
	uint32_t flags;       /* none yet: 0 */
	uint32_t reserved_;   /* 0 */
} lm_acquire_opts;

#define LM_ACQUIRE_OPTS(mode_, ttl_ms_, wait_ms_)                         \
	((lm_acquire_opts){ .size = sizeof(lm_acquire_opts),              \
			    .mode = (mode_),                              \
			    .ttl_ms = (ttl_ms_),                          \
			    .wait_ms = (wait_ms_) })

/*
 * Take `name` in mode opts->mode. Errors as lm_acquire's, plus
 * LM_EINVAL for an unknown mode, flag or size, and LM_EDEADLK when the
 * wait was found in a cycle of waits and chosen to end it.
 */
int lm_acquire_ex(lm_client *c, const char *name,
		  const lm_acquire_opts *opts, lm_grant *g);

/* How long a wait lasts before it looks for a cycle of waits, unless
 * lm_acquire_opts or the service (lockmgrd --deadlock-timeout) says
 * otherwise (PostgreSQL's deadlock_timeout). */
#define LM_DEADLOCK_TIMEOUT_MS 1000

/*
 * The cycle that this client's last LM_EDEADLK ended, as one line
 * ("session 3 (pid 812) waits for X on '/a', held by session 5 in S;
 * ..."), or "" if none. Valid until the client's next acquire.
 */
const char *lm_deadlock_cycle(const lm_client *c);

/*
 * Change the mode of a held grant in place. Upgrade (a counted mode to
 * X) waits like an acquire (wait_ms as lm_acquire's) until this session
 * is the lock's only holder, then the grant is X with a new token and a
 * lease of ttl_ms; while it waits it still holds its old mode, and if
 * the upgrade fails (LM_EBUSY, LM_ETIMEDOUT, LM_EDEADLK when two
 * sessions upgrade the same lock, LM_ENOQUORUM) it still does. Downgrade
 * (X to a counted mode) is immediate, keeps the token and the lease, and
 * lets waiting readers in. LM_ELEASELOST if the grant was lost; LM_EINVAL
 * between two counted modes.
 */
int lm_convert(lm_client *c, lm_grant *g, uint32_t mode, int64_t ttl_ms,
	       int64_t wait_ms);

/* Extend the lease to ttl_ms from now. LM_ELEASELOST if it was lost. */
int lm_renew(lm_client *c, lm_grant *g, int64_t ttl_ms);

/*
 * Release the grant. LM_ELEASELOST if the lease had already been lost
 * (nothing of a newer holder is touched), LM_ENOTHELD if released twice
 * (or, for a semaphore grant, if g is a copy of one released since).
 */
int lm_release(lm_client *c, lm_grant *g);

/*
 * Counting semaphores: at most `slots` holders of `name` at once, each
 * with a grant of its own (its own fencing token and lease, renewed and
 * released with lm_renew / lm_release; a dead holder's slot is freed by
 * the service, a frozen one's when its lease ends). Waiters are served
 * in FIFO order. Every user of a name must give the same slot count
 * (LM_EKIND otherwise, and for a name held as a plain lock); slots is
 * 1 to LM_SEM_SLOTS_MAX. g->token orders the grants of one slot: a
 * resource guarded by a semaphore fences per slot (lm_sem_slot). On
 * etcd a token is also distinct across slots, a name keeps its kind only
 * while it has waiters or holders, and LM_GRANT_RECOVERED is never set
 * for a semaphore (README, "Semaphores on etcd").
 * A semaphore's name is at most 250 bytes (its slots are locks of their
 * own, named after it); each waiting or held semaphore grant keeps one
 * of the client's 16 pins (LM_EPINS, as a watch does). Semaphores are
 * not part of a lock tree (lockmgrd --tree), and a semaphore grant
 * cannot be converted (LM_EINVAL).
 */
#define LM_SEM_SLOTS_MAX 1024u
int lm_sem_acquire(lm_client *c, const char *name, uint32_t slots,
		   int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
/* The slot (0 .. slots-1) a semaphore grant holds, or -1 for a grant
 * that is not a semaphore's. */
int lm_sem_slot(const lm_grant *g);

/*
 * Watches. A watch follows one lock's changes: every grant, release,
 * mode change, death of a holder and end of a lease moves the lock's
 * version, and lm_watch_next returns once the version has moved past
 * the one the watch last reported. Changes that come close together may
 * be reported as one event (`changes` counts them); a change is never
 * missed. A watch keeps its name from being reclaimed; a client may
 * have 16 names watched (or semaphore grants and waits) at once
 * (LM_EPINS). A watch on a semaphore's name sees each change of each of
 * its slots.
 */
typedef struct lm_watch lm_watch;

/* lm_watch_event.what: the last change the event covers */
#define LM_WATCH_NONE       0 /* no change: the lock as it is */
#define LM_WATCH_GRANTED    1 /* granted (or its mode changed in place) */
#define LM_WATCH_RELEASED   2 /* released by its holder */
#define LM_WATCH_DIED       3 /* its holder died; the service freed it */
#define LM_WATCH_EXPIRED    4 /* its lease ended without a release */
#define LM_WATCH_CHANGED    5 /* it changed; how is not known */
#define LM_WATCH_PROCLAIMED 6 /* an election's leader proclaimed a value */

typedef struct lm_watch_event {
	uint64_t version;     /* the lock's version this event reaches
			       * (lm_leader.version's count, carried on
			       * past 2^32 instead of wrapping) */
	uint32_t changes;     /* changes since the last event (> 1: several
			       * were coalesced into this one) */
	uint32_t what;        /* LM_WATCH_* of the last of them */
	int32_t pid;          /* the holder it happened to, 0 if unknown */
	uint32_t mode;        /* that grant's mode */
	uint64_t token;       /* that grant's token, 0 if unknown */
	/* The lock as read after the change: */
	uint32_t holders;     /* sessions holding it; 0 = free */
	uint32_t held_mode;   /* their mode, when held */
	int32_t holder_pid;   /* the X holder's pid (or a counted one's) */
	uint32_t reserved_;
	uint64_t holder_token;/* the X holder's token, else 0 */
} lm_watch_event;

/* Watch `name` (created if it does not exist). *now, if not NULL, gets
 * the lock as it is (what = LM_WATCH_NONE). */
int lm_watch_open(lm_client *c, const char *name, lm_watch **out,
		  lm_watch_event *now);
/* Wait up to timeout_ms (0: do not wait, < 0: no limit) for the lock to
 * change: 0 and *ev, or LM_ETIMEDOUT. */
int lm_watch_next(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev);
/* A descriptor for poll/epoll: readable when lm_watch_next may have an
 * event (then call it with timeout 0, which may still say
 * LM_ETIMEDOUT). A thread of the library waits on the lock's futex and
 * signals it (an eventfd); it lives until lm_watch_close (or the
 * client's lm_disconnect, which closes the watches left open), and
 * blocks every signal (the program's signals never go to it). */
int lm_watch_fd(lm_watch *w);
void lm_watch_close(lm_watch *w);
/* On an etcd cluster every watch has that thread from lm_watch_open on
 * (it reads the cluster's watch stream as it comes). A process that
 * forks while a watch is open is a threaded process forking: until it
 * execs, the child may call only async-signal-safe functions (a lock
 * held by the thread at the fork stays held in the child; seen with
 * AddressSanitizer's allocator). Fork first, then open watches. */

/*
 * Leader election on a lock: the leader is the holder of `election`
 * (exclusive, leased and fenced like any grant), and proclaims a value
 * (up to LM_VALUE_MAX bytes, for example "host:port") that observers
 * read with lm_leader. A leader that dies or stops past its lease loses
 * the lead, and the next campaigner gets it. Observers follow changes
 * with a watch on the election's name.
 */
#define LM_VALUE_MAX 112
int lm_campaign(lm_client *c, const char *election, const char *value,
		int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
/* Change the leader's value (g from lm_campaign). One value per client:
 * a client leading two elections proclaims for the last. */
int lm_proclaim(lm_client *c, lm_grant *g, const char *value);
/* Give the lead up (the value goes with it): lm_release. */
int lm_resign(lm_client *c, lm_grant *g);

typedef struct lm_leader {
	int32_t pid;          /* the leader's process */
	uint32_t mode_;       /* reserved */
	uint64_t token;       /* its grant's fencing token */
	uint64_t version;     /* the election lock's version when read */
	char value[LM_VALUE_MAX + 1]; /* what it proclaims, NUL-ended ("" if
			       * nothing yet) */
} lm_leader;
/* Who leads `election` now: 0, or LM_ENOLEADER (or LM_EBUSY in the
 * unlikely case that the lead changed at every one of 100 reads). */
int lm_leader_get(lm_client *c, const char *election, lm_leader *out);

/* A sentence saying what happened and what to do. Never NULL. */
const char *lm_strerror(int err);

/* The longest lease this service allows (ms), or a negative error. */
int64_t lm_max_ttl_ms(const lm_client *c);

#ifdef __cplusplus
}
#endif

#endif
