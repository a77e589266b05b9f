/*
 * session_monitor.c - watching client sessions and freeing the locks of
 * clients that die.
 *
 * Two threads, one owner. The registrar thread sleeps on the region's
 * session_seq futex, which every client bumps when it connects or
 * disconnects, so a new session is noticed without polling. For each new
 * LIVE session it opens a pidfd and checks the process start time
 * against the one the session recorded: the pid may already belong to
 * another process (pids are reused), and a pidfd for the wrong process
 * would watch the wrong death. It hands what it found to the main thread
 * through liburcu's wait-free queue (cds_wfcq) and an eventfd.
 *
 * The main thread owns everything else: the table of watched sessions,
 * the epoll set, and every change to the region on a client's death.
 * Keeping all cleanup on one thread means no lock is needed around it,
 * and the registrar never blocks on the main thread: enqueueing is wait-
 * free, so a burst of connects cannot stall behind a long cleanup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "../client/internal.h"
#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/session.h"
#include "log.h"
#include "supervisor.h"

/* What the registrar tells the main thread. */
struct session_news {
	struct cds_wfcq_node node;
	uint32_t idx;
	uint32_t gen;
	int pidfd; /* -1: the process was already gone */
};

/* Free the locks of session idx (holder died): its owner words become
 * ABANDONED so the next holder is told. */
static unsigned free_session_locks(struct lm_region *r, uint32_t idx)
{
	return lm_free_session_grants(r, idx, LM_OWNER_ABANDONED,
				      LM_NO_SESSION);
}

static void unwatch(struct supervisor *sv, uint32_t idx)
{
	struct tracked_session *t = &sv->sessions[idx];
	if (t->pidfd >= 0) {
		epoll_ctl(sv->epfd, EPOLL_CTL_DEL, t->pidfd, NULL);
		close(t->pidfd);
	}
	t->pidfd = -1;
}

void sup_session_died(struct supervisor *sv, uint32_t idx, uint32_t gen)
{
	struct lm_region *r = &sv->region;
	if (idx >= r->max_sessions)
		return;
	struct lm_session *s = &r->sessions[idx];
	if (sv->sessions[idx].gen == gen)
		unwatch(sv, idx);
	if (atomic_load(&s->gen) != gen ||
	    atomic_load(&s->state) != LM_SESS_LIVE)
		return; /* it disconnected cleanly, or was reaped already */
	pid_t pid = atomic_load(&s->pid);
	uint32_t waited = atomic_exchange(&s->waiting_on, 0);
	if (waited != 0 && waited <= r->max_locks) {
		struct lm_queue *n = lm_queue_of(r, waited - 1);
		lm_queue_leave(n);
		uint16_t mark = (uint16_t)(idx + 1);
		atomic_compare_exchange_strong(&n->woken, &mark, 0);
		lm_wake_next(r, waited - 1, LM_NO_SESSION);
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

void sup_free_deferred_sessions(struct supervisor *sv, int64_t now_ms)
{
	struct lm_region *r = &sv->region;
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
}

void sup_take_session_news(struct supervisor *sv)
{
	uint64_t n;
	if (read(sv->newsfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		lm_die("read(eventfd)");
	struct cds_wfcq_node *node;
	/* Only this thread dequeues, as __cds_wfcq_dequeue_blocking needs. */
	while ((node = __cds_wfcq_dequeue_blocking(&sv->news_head,
						   &sv->news_tail)) != NULL) {
		struct session_news *news =
			caa_container_of(node, struct session_news, node);
		if (news->pidfd < 0) {
			sup_session_died(sv, news->idx, news->gen);
		} else {
			unwatch(sv, news->idx);
			struct tracked_session *t = &sv->sessions[news->idx];
			t->pidfd = news->pidfd;
			t->gen = news->gen;
			struct epoll_event ev = {
				.events = EPOLLIN,
				.data.u64 = EV_DATA(EV_SESSION, news->gen,
						    news->idx)};
			if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, news->pidfd,
				      &ev) != 0)
				lm_die("epoll_ctl(session pidfd)");
		}
		free(news);
	}
}

static void tell_main(struct supervisor *sv, uint32_t idx, uint32_t gen,
		      int pidfd)
{
	struct session_news *news = malloc(sizeof(*news));
	if (news == NULL)
		lm_die("malloc(session news)");
	cds_wfcq_node_init(&news->node);
	news->idx = idx;
	news->gen = gen;
	news->pidfd = pidfd;
	cds_wfcq_enqueue(&sv->news_head, &sv->news_tail, &news->node);
	uint64_t one = 1;
	if (write(sv->newsfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		lm_die("write(eventfd)");
}

/* One pass over the session table: report every LIVE session not yet
 * reported in this generation. `seen` is the registrar's own memory of
 * what it reported (generation + 1, 0 for nothing). */
static void scan_sessions(struct supervisor *sv, uint32_t *seen)
{
	struct lm_region *r = &sv->region;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < n; i++) {
		struct lm_session *s = &r->sessions[i];
		uint32_t gen = atomic_load(&s->gen);
		/* Pairs with the client's release store of LIVE: the pid and
		 * start time read below are the session's own. */
		if (atomic_load_explicit(&s->state, memory_order_acquire) !=
			    LM_SESS_LIVE ||
		    seen[i] == gen + 1)
			continue;
		pid_t pid = atomic_load(&s->pid);
		int pidfd = pid > 0 ? pidfd_open(pid, 0) : -1;
		if (pidfd < 0 && pid > 0 && errno != ESRCH) {
			/* EMFILE, ENOMEM...: we could not look, which is not
			 * the same as "dead". Freeing a live client's locks
			 * would break mutual exclusion: try again next scan. */
			lm_log("supervisor", "cannot watch client pid %d: %s; "
			       "will retry", (int)pid, strerror(errno));
			continue;
		}
		seen[i] = gen + 1;
		if (pidfd >= 0) {
			/* A pidfd for a reused pid would watch the wrong
			 * death: a different start time means ours is gone.
			 * An unreadable one (0) proves nothing, and the pidfd
			 * reports a death anyway. */
			uint64_t st = lm_proc_start_time(pid);
			if (st != 0 && st != atomic_load(&s->start_time)) {
				close(pidfd);
				pidfd = -1;
			}
		}
		tell_main(sv, i, gen, pidfd);
	}
}

static void *registrar_main(void *arg)
{
	struct supervisor *sv = arg;
	_Atomic uint32_t *seqw = &sv->region.hdr->session_seq;
	uint32_t *seen = calloc(sv->region.max_sessions, sizeof(*seen));
	if (seen == NULL)
		lm_die("calloc(registrar)");
	while (!atomic_load(&sv->stopping)) {
		uint32_t seq = atomic_load(seqw);
		scan_sessions(sv, seen);
		/* The timeout only bounds the damage of a missed bump from a
		 * client that died between claiming and notifying. */
		lm_futex_wait(seqw, seq, lm_now_ns() + INT64_C(1000000000));
	}
	free(seen);
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
	cds_wfcq_init(&sv->news_head, &sv->news_tail);
	sv->newsfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sv->newsfd < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = EV_DATA(EV_NEWS, 0, 0)};
	if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->newsfd, &ev) != 0)
		return -1;
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
	/* Drain what the registrar left, closing its pidfds. */
	struct cds_wfcq_node *node;
	while ((node = __cds_wfcq_dequeue_blocking(&sv->news_head,
						   &sv->news_tail)) != NULL) {
		struct session_news *news =
			caa_container_of(node, struct session_news, node);
		if (news->pidfd >= 0)
			close(news->pidfd);
		free(news);
	}
	cds_wfcq_destroy(&sv->news_head, &sv->news_tail);
	for (uint32_t i = 0; i < sv->region.max_sessions; i++)
		if (sv->sessions[i].pidfd >= 0)
			close(sv->sessions[i].pidfd);
	close(sv->newsfd);
	free(sv->sessions);
	sv->sessions = NULL;
}
