/*
 * session_monitor.c - watching client sessions and freeing the locks of
 * clients that die.
 *
 * The registrar thread sleeps on the region's session_seq futex, which
 * every client bumps when it connects or disconnects, so a new session
 * is picked up without polling. For each LIVE session it opens a pidfd
 * and checks the process start time against the one the session
 * recorded: the pid may already belong to another process (pids are
 * reused), and a pidfd opened for the wrong process would watch the
 * wrong death. The main thread's epoll reports the death.
 *
 * The table is an array indexed by session slot, under a mutex shared
 * by the two threads: each event touches one entry, at connect/death
 * rate, so there is nothing for a lock-free structure to win here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "../client/internal.h"
#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/session.h"
#include "log.h"
#include "supervisor.h"

/* Free the locks of session idx (holder died): CAS each of its owner
 * words to ABANDONED so the next holder is told, then wake the head
 * waiter of each lock. Returns the number of slots freed. */
static unsigned free_session_locks(struct lm_region *r, uint32_t idx)
{
	uint32_t n = lm_names_in_use(r);
	unsigned freed = 0;
	for (uint32_t lock = 0; lock < n; lock++) {
		bool any = false;
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			struct lm_slot *slot = lm_slot_of(r, i, lock);
			uint64_t w = atomic_load(&slot->owner);
			if (LM_OWNER_SESSION(w) == idx + 1 &&
			    atomic_compare_exchange_strong(&slot->owner, &w,
							   LM_OWNER_ABANDONED))
				any = true;
		}
		if (any) {
			freed++;
			if (atomic_load(&r->names[lock].waiters) != 0)
				lm_wake_next(r, lock);
		}
	}
	return freed;
}

static void untrack_locked(struct supervisor *sv, uint32_t idx)
{
	struct tracked_session *t = &sv->sessions[idx];
	if (t->pidfd >= 0) {
		epoll_ctl(sv->epfd, EPOLL_CTL_DEL, t->pidfd, NULL);
		close(t->pidfd);
	}
	t->pidfd = -1;
}

/* Take a dead session out of any queue; free its locks now or leave
 * them to their leases (--no-release-on-exit). Caller holds the lock. */
static void reap_session_locked(struct supervisor *sv, uint32_t idx,
				uint32_t gen)
{
	struct lm_region *r = &sv->region;
	struct lm_session *s = &r->sessions[idx];
	if (atomic_load(&s->gen) != gen ||
	    atomic_load(&s->state) != LM_SESS_LIVE)
		return;
	pid_t pid = atomic_load(&s->pid);
	untrack_locked(sv, idx);
	uint32_t waited = atomic_exchange(&s->waiting_on, 0);
	if (waited != 0 && waited <= r->max_locks) {
		atomic_fetch_sub(&r->names[waited - 1].waiters, 1);
		lm_wake_next(r, waited - 1);
	}
	if (!(atomic_load(&r->hdr->flags) & LM_REGION_RELEASE_ON_EXIT)) {
		/* Its process is gone but its leases run on: the slot stays
		 * LIVE (so its grants still count) until the longest lease
		 * it can hold has ended. */
		sv->sessions[idx].free_at_ms = lm_now_ms() + r->max_ttl_ms;
		sv->sessions[idx].gen = gen;
		lm_log("supervisor", "client pid %d died; its locks are left "
		       "to lease expiry", (int)pid);
		return;
	}
	atomic_store(&s->state, LM_SESS_DEAD);
	unsigned freed = free_session_locks(r, idx);
	lm_session_free(r, idx);
	lm_log("supervisor", "client pid %d died; freed %u lock%s", (int)pid,
	       freed, freed == 1 ? "" : "s");
}

void sup_session_died(struct supervisor *sv, uint32_t idx, uint32_t gen)
{
	if (idx >= sv->region.max_sessions)
		return;
	pthread_mutex_lock(&sv->sessions_lock);
	reap_session_locked(sv, idx, gen);
	pthread_mutex_unlock(&sv->sessions_lock);
}

void sup_free_deferred_sessions(struct supervisor *sv, int64_t now_ms)
{
	struct lm_region *r = &sv->region;
	pthread_mutex_lock(&sv->sessions_lock);
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		struct tracked_session *t = &sv->sessions[i];
		if (t->free_at_ms == 0 || t->free_at_ms > now_ms)
			continue;
		t->free_at_ms = 0;
		struct lm_session *s = &r->sessions[i];
		if (atomic_load(&s->gen) != t->gen ||
		    atomic_load(&s->state) != LM_SESS_LIVE)
			continue;
		atomic_store(&s->state, LM_SESS_DEAD);
		free_session_locks(r, i);
		lm_session_free(r, i);
	}
	pthread_mutex_unlock(&sv->sessions_lock);
}

/* One pass over the session table: track new sessions, drop ended
 * ones, reap sessions whose process is already gone. */
static void scan_sessions(struct supervisor *sv)
{
	struct lm_region *r = &sv->region;
	uint32_t n = lm_sessions_in_use(r);
	pthread_mutex_lock(&sv->sessions_lock);
	for (uint32_t i = 0; i < n; i++) {
		struct lm_session *s = &r->sessions[i];
		struct tracked_session *t = &sv->sessions[i];
		uint32_t gen = atomic_load(&s->gen);
		uint32_t state = atomic_load_explicit(&s->state,
						      memory_order_acquire);
		if (state != LM_SESS_LIVE) {
			if (t->pidfd >= 0)
				untrack_locked(sv, i);
			continue;
		}
		if (t->pidfd >= 0 && t->gen == gen)
			continue;
		if (t->free_at_ms != 0 && t->gen == gen)
			continue; /* dead, waiting for its leases */
		if (t->pidfd >= 0)
			untrack_locked(sv, i);
		pid_t pid = atomic_load(&s->pid);
		int pidfd = pid > 0 ? pidfd_open(pid, 0) : -1;
		if (pidfd < 0 ||
		    lm_proc_start_time(pid) != atomic_load(&s->start_time)) {
			if (pidfd >= 0)
				close(pidfd);
			reap_session_locked(sv, i, gen);
			continue;
		}
		t->pidfd = pidfd;
		t->gen = gen;
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = EV_DATA(EV_SESSION, gen, i)};
		if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, pidfd, &ev) != 0)
			lm_die("epoll_ctl(session pidfd)");
	}
	pthread_mutex_unlock(&sv->sessions_lock);
}

static void *registrar_main(void *arg)
{
	struct supervisor *sv = arg;
	_Atomic uint32_t *seqw = &sv->region.hdr->session_seq;
	while (!atomic_load(&sv->stopping)) {
		uint32_t seq = atomic_load(seqw);
		scan_sessions(sv);
		/* The timeout only bounds the damage of a missed bump from a
		 * client that died between claiming and notifying. */
		lm_futex_wait(seqw, seq, lm_now_ns() + INT64_C(1000000000));
	}
	return NULL;
}

int sup_start_registrar(struct supervisor *sv)
{
	sv->sessions = calloc(sv->region.max_sessions,
			      sizeof(*sv->sessions));
	if (sv->sessions == NULL)
		return -1;
	for (uint32_t i = 0; i < sv->region.max_sessions; i++)
		sv->sessions[i].pidfd = -1;
	pthread_mutex_init(&sv->sessions_lock, NULL);
	/* Sessions that were live before we started (adoption) are
	 * tracked, or reaped, before the first client call is served. */
	scan_sessions(sv);
	if (pthread_create(&sv->registrar, NULL, registrar_main, sv) != 0)
		return -1;
	sv->registrar_running = true;
	return 0;
}

void sup_stop_registrar(struct supervisor *sv)
{
	if (!sv->registrar_running)
		return;
	atomic_store(&sv->stopping, true);
	lm_futex_bump_wake(&sv->region.hdr->session_seq, 1);
	pthread_join(sv->registrar, NULL);
	sv->registrar_running = false;
	for (uint32_t i = 0; i < sv->region.max_sessions; i++)
		if (sv->sessions[i].pidfd >= 0)
			close(sv->sessions[i].pidfd);
	free(sv->sessions);
	sv->sessions = NULL;
}
