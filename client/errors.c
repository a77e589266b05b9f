/*
 * errors.c - lm_strerror: what happened and what to do about it.
 */
#include "../shm/layout.h"
#include "../shm/status.h"
#include "lockmgr.h"

/* The region's results are handed to callers unchanged (shm/status.h). */
_Static_assert(LM_R_OK == LM_OK, "status");
_Static_assert(LM_R_BUSY == LM_EBUSY, "status");
_Static_assert(LM_R_TIMEDOUT == LM_ETIMEDOUT, "status");
_Static_assert(LM_R_NOQUORUM == LM_ENOQUORUM, "status");
_Static_assert(LM_R_LEASELOST == LM_ELEASELOST, "status");
_Static_assert(LM_R_NOTHELD == LM_ENOTHELD, "status");
_Static_assert(LM_R_BADNAME == LM_EBADNAME, "status");
_Static_assert(LM_R_BADTTL == LM_EBADTTL, "status");
_Static_assert(LM_R_TABLEFULL == LM_ETABLEFULL, "status");
_Static_assert(LM_R_NOSUPERVISOR == LM_ENOSUPERVISOR, "status");
_Static_assert(LM_R_INCOMPAT == LM_EINCOMPAT, "status");
_Static_assert(LM_R_SESSIONS == LM_ESESSIONS, "status");
_Static_assert(LM_R_INVAL == LM_EINVAL, "status");
_Static_assert(LM_R_SYS == LM_ESYS, "status");
_Static_assert(LM_R_BADREGION == LM_EBADREGION, "status");
_Static_assert(LM_R_OTHERNS == LM_EOTHERNS, "status");
_Static_assert(LM_R_DEADLOCK == LM_EDEADLK, "status");
_Static_assert(LM_R_KIND == LM_EKIND, "status");
_Static_assert(LM_R_PINS == LM_EPINS, "status");
_Static_assert(LM_R_NOLEADER == LM_ENOLEADER, "status");
_Static_assert(LM_R_NOTSUP == LM_ENOTSUP, "status");
_Static_assert(LM_VALUE_MAX == LM_VALUE_MAX_, "value size");
_Static_assert(LM_WATCH_GRANTED == LM_CHANGE_GRANTED &&
		       LM_WATCH_RELEASED == LM_CHANGE_RELEASED &&
		       LM_WATCH_DIED == LM_CHANGE_DIED &&
		       LM_WATCH_EXPIRED == LM_CHANGE_EXPIRED &&
		       LM_WATCH_CHANGED == LM_CHANGE_OTHER &&
		       LM_WATCH_PROCLAIMED == LM_CHANGE_PROCLAIMED,
	       "watch events");
_Static_assert(LM_MODE_X_ == LM_MODE_X && LM_MODE_S_ == LM_MODE_S &&
		       LM_MODE_IS_ == LM_MODE_IS && LM_MODE_IX_ == LM_MODE_IX &&
		       LM_MODE_SIX_ == LM_MODE_SIX && LM_MODES == LM_MODE_COUNT,
	       "modes");

const char *lm_strerror(int err)
{
	switch (err) {
	case LM_OK:
		return "success";
	case LM_EBUSY:
		return "lock is held by another session (try again, or wait "
		       "for it with a wait time)";
	case LM_ETIMEDOUT:
		return "timed out: the lock was held by another session for "
		       "the whole wait (see 'lockctl status'), or, for a "
		       "watch, did not change within its timeout";
	case LM_ENOQUORUM:
		return "no quorum: fewer than 2 of the 3 lock servers are up "
		       "(still, at the end of the wait if there was one); "
		       "nothing was granted (see 'lockctl status': a restarted server "
		       "counts again once the leases it granted before end; "
		       "or this process is isolated from them: 'lockctl "
		       "server heal')";
	case LM_ELEASELOST:
		return "lease lost: the lock expired or was taken over, and "
		       "another session may hold it now; stop using its token "
		       "and acquire again";
	case LM_ENOTHELD:
		return "this grant is not held (it was already released)";
	case LM_EBADNAME:
		return "bad lock name: a name is 1 to 255 bytes with no NUL "
		       "byte";
	case LM_EBADTTL:
		return "bad TTL: a lease lasts from 10 ms up to the region's "
		       "max TTL (lockmgrd --max-ttl)";
	case LM_ETABLEFULL:
		return "lock table full: every lock slot holds a lock that is "
		       "held or waited for; release some, or restart lockmgrd "
		       "with a larger --max-locks";
	case LM_ENOSUPERVISOR:
		return "no lock service: the region does not exist or its "
		       "supervisor shut down; start it with 'lockmgrd' (same "
		       "--region / LOCKMGR_REGION); for an etcd:// address: "
		       "no endpoint of it answered (is etcd running there?)";
	case LM_EINCOMPAT:
		return "the region is not a usable lockmgr region (foreign, "
		       "corrupted, truncated or from another version); stop "
		       "whatever owns it, or choose another --region (for an "
		       "etcd:// address: what answers there is not etcd's v3 "
		       "JSON gateway)";
	case LM_ESESSIONS:
		return "session table full: too many connected clients; "
		       "restart lockmgrd with a larger --max-sessions";
	case LM_EINVAL:
		return "invalid argument (a NULL pointer or a value out of "
		       "range)";
	case LM_ESYS:
		return "a system call failed (see errno)";
	case LM_EOTHERNS:
		return "this process runs in another pid or time namespace "
		       "than lockmgrd (a container, unshare): the service "
		       "could not tell whether it lives; run it in "
		       "lockmgrd's namespaces, or run a lockmgrd in its own";
	case LM_EDEADLK:
		return "deadlock: this wait was part of a cycle of sessions "
		       "each waiting for a lock another holds, and was "
		       "chosen to end it; nothing was granted; release what "
		       "this session holds and start over (taking locks in "
		       "one fixed order avoids cycles)";
	case LM_EKIND:
		return "the name is in use as another kind of lock: a "
		       "semaphore with another slot count, or a plain lock "
		       "(every user of a name must take it the same way; "
		       "see 'lockctl status')";
	case LM_EPINS:
		return "this client already watches or waits on 16 names "
		       "(watches and semaphores each keep one); close a watch, "
		       "or open another client";
	case LM_ENOLEADER:
		return "nobody leads this election now (no holder with a "
		       "running lease)";
	case LM_ENOTSUP:
		return "not supported by this backend: the etcd backend "
		       "(an etcd:// address) has exclusive locks, watches "
		       "and elections, but no other lock modes, "
		       "conversions, semaphores or deadlock detection yet; "
		       "use the shared-memory service (a /NAME region) for "
		       "those";
	case LM_EBADREGION:
		return "bad region name: use NAME or /NAME, 1 to 200 "
		       "printable characters without '/', or "
		       "etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (a prefix "
		       "of letters, digits, '.', '_', '-' and inner '/')";
	default:
		return "unknown lockmgr error";
	}
}
