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
 * Slots nobody announces are found by the same scan, which also runs
 * once a second: a claim whose claimer died before making it LIVE is
 * given back once the claimer is proven dead, and a DEAD slot that a
 * killed supervisor was still freeing goes to the main thread, which
 * does the whole job again (each step of it can be repeated).
 *
 * The main thread owns everything else: the table of watched sessions,
 * the epoll set, and every change to the region on a client's death.
 * Keeping all cleanup on one thread means no lock is needed around it,
 * and the registrar never blocks on the main thread: enqueueing is wait-
 * free, so a burst of connects cannot stall behind a long cleanup. Every
 * change of a slot's state is one CAS of its life word from the word
 * last seen (shm/layout.h), so a client that disconnects while the
 * supervisor reaps it cannot undo the other's work.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/grant.h"
#include "../shm/session.h"
#include "../shm/test_hook.h"
#include "../shm/wait_queue.h"
#include "log.h"
#include "supervisor.h"

/* What the registrar tells the main thread. */
enum news_kind {
	NEWS_WATCH, /* a new LIVE session: watch its pidfd */
	NEWS_GONE,  /* a LIVE session whose process is already gone */
	NEWS_DEAD,  /* a DEAD slot: a supervisor died while freeing it */
};

struct session_news {
	struct cds_wfcq_node node;
	enum news_kind kind;
	uint32_t idx;
	uint64_t word; /* the slot's life word when the registrar looked */
	int pidfd;     /* NEWS_WATCH only */
};

/* The registrar thread's own memory, one entry per session slot. */
struct registrar {
	uint64_t *seen;       /* life word last reported to the main thread */
	uint64_t *claim_word; /* CLAIMING word first seen ... */
	uint64_t *claim_seen; /* ... at this time (boot clock ticks) */
};

static void unwatch(struct supervisor *sv, uint32_t idx)
{
	struct tracked_session *t = &sv->sessions[idx];
	if (t->pidfd >= 0) {
		epoll_ctl(sv->epfd, EPOLL_CTL_DEL, t->pidfd, NULL);
		close(t->pidfd);
	}
	t->pidfd = -1;
}

/* Take session idx out of the queue it waits in, if any. */
static void dequeue_waiter(struct lm_region *r, uint32_t idx)
{
	uint32_t on = atomic_exchange(&r->sessions[idx].waiting_on, 0);
	uint32_t waited = LM_WAIT_LOCK(on);
	if (waited == 0 || waited > r->max_locks)
		return;
	struct lm_queue *q = lm_queue_of(r, waited - 1);
	/* Died while leaving: it may have lowered the count already, and a
	 * count one too high is only a hint the servers repair. */
	if (!(on & LM_WAIT_LEAVING))
		lm_queue_leave(q);
	uint16_t mark = (uint16_t)(idx + 1);
	atomic_compare_exchange_strong(&q->woken, &mark, 0);
	lm_wake_next(r, waited - 1, LM_NO_SESSION);
}

/*
 * Finish a DEAD slot: free its locks (their owner words become ABANDONED,
 * so the next holder is told) and give the slot back. Every step is safe
 * to repeat, so a supervisor that finds a DEAD slot a dead supervisor
 * left half-done simply does it all again.
 */
static unsigned finish_dead(struct lm_region *r, uint32_t idx,
			    uint64_t dead)
{
	dequeue_waiter(r, idx);
	LM_HOOK("supervisor.freeing_dead");
	unsigned freed = lm_free_session_grants(r, idx, LM_OWNER_ABANDONED,
						LM_NO_SESSION);
	lm_session_free(r, idx, dead);
	return freed;
}

/* LIVE(w) -> DEAD -> FREE, unless the slot has moved on from w. */
static bool reap_session(struct lm_region *r, uint32_t idx, uint64_t w,
			 unsigned *freed)
{
	uint64_t dead = LM_SESS_WORD(LM_SESS_PID(w), LM_SESS_GEN(w),
				     LM_SESS_DEAD);
	if (!lm_session_transition(r, idx, w, dead))
		return false; /* it disconnected (or was reaped) meanwhile */
	*freed = finish_dead(r, idx, dead);
	return true;
}

void sup_session_died(struct supervisor *sv, uint32_t idx, uint32_t gen)
{
	struct lm_region *r = &sv->region;
	if (idx >= r->max_sessions)
		return;
	struct lm_session *s = &r->sessions[idx];
	if (sv->sessions[idx].gen == gen)
		unwatch(sv, idx);
	uint64_t w = lm_session_word(s);
	if (LM_SESS_GEN(w) != gen || LM_SESS_STATE(w) != LM_SESS_LIVE)
		return; /* it disconnected cleanly, or was reaped already */
	pid_t pid = LM_SESS_PID(w);
	dequeue_waiter(r, idx);
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
	unsigned freed = 0;
	if (reap_session(r, idx, w, &freed))
		lm_log("supervisor", "client pid %d died; freed %u lock%s",
		       (int)pid, freed, freed == 1 ? "" : "s");
}

void sup_free_deferred_sessions(struct supervisor *sv, int64_t now_ms)
{
	struct lm_region *r = &sv->region;
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		struct tracked_session *t = &sv->sessions[i];
		if (t->free_at_ms == 0 || t->free_at_ms > now_ms)
			continue;
		t->free_at_ms = 0;
		uint64_t w = lm_session_word(&r->sessions[i]);
		unsigned freed = 0;
		if (LM_SESS_GEN(w) == t->gen &&
		    LM_SESS_STATE(w) == LM_SESS_LIVE)
			reap_session(r, i, w, &freed);
	}
}

static void take_news(struct supervisor *sv, struct session_news *news)
{
	struct lm_region *r = &sv->region;
	uint32_t idx = news->idx;
	uint32_t gen = LM_SESS_GEN(news->word);
	switch (news->kind) {
	case NEWS_GONE:
		sup_session_died(sv, idx, gen);
		break;
	case NEWS_DEAD:
		/* Still DEAD in the same life: a dead supervisor's work. */
		if (lm_session_word(&r->sessions[idx]) == news->word) {
			unsigned freed = finish_dead(r, idx, news->word);
			lm_log("supervisor", "finished freeing client pid %d "
			       "(a previous supervisor died doing it): %u "
			       "lock%s", (int)LM_SESS_PID(news->word), freed,
			       freed == 1 ? "" : "s");
		}
		break;
	case NEWS_WATCH: {
		unwatch(sv, idx);
		struct tracked_session *t = &sv->sessions[idx];
		t->pidfd = news->pidfd;
		t->gen = gen;
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = EV_DATA(EV_SESSION, gen, idx)};
		if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, news->pidfd, &ev) != 0)
			lm_die("epoll_ctl(session pidfd)");
		break;
	}
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
		take_news(sv, news);
		free(news);
	}
}

static void tell_main(struct supervisor *sv, enum news_kind kind,
		      uint32_t idx, uint64_t word, int pidfd)
{
	struct session_news *news = malloc(sizeof(*news));
	if (news == NULL)
		lm_die("malloc(session news)");
	cds_wfcq_node_init(&news->node);
	news->kind = kind;
	news->idx = idx;
	news->word = word;
	news->pidfd = pidfd;
	cds_wfcq_enqueue(&sv->news_head, &sv->news_tail, &news->node);
	uint64_t one = 1;
	if (write(sv->newsfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		lm_die("write(eventfd)");
}

/* Clock ticks since boot, the unit of /proc/PID/stat's start time. */
static uint64_t boot_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	return (uint64_t)ts.tv_sec * (uint64_t)hz +
	       (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)hz);
}

/*
 * Is the claimer of a CLAIMING slot (word w) provably dead? Its pid is
 * in the word from the claim itself. Gone is dead. A pid whose process
 * is not the one that wrote the slot's start time (a FREE slot has none,
 * so a start time on a claim is its claimer's), or that started after we
 * first saw this claim, was reused: also dead. A claimer that is merely
 * slow or stopped is alive, and keeps its claim.
 */
static bool claimer_dead(struct registrar *rg, uint32_t i, uint64_t w,
			 const struct lm_session *s)
{
	pid_t pid = LM_SESS_PID(w);
	if (pid <= 0)
		return false; /* not a word any claim writes: leave it */
	if (rg->claim_word[i] != w) {
		rg->claim_word[i] = w;
		rg->claim_seen[i] = boot_ticks();
	}
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	uint64_t now_start = lm_proc_start_time(pid);
	if (now_start == 0)
		return false; /* unreadable: prove nothing */
	uint64_t its_start = atomic_load(&s->start_time);
	if (its_start != 0)
		return now_start != its_start;
	/* A tick of slack: the two clocks are read at different times. */
	return now_start > rg->claim_seen[i] + 1;
}

/* One pass over the session table: report every LIVE session not yet
 * reported in this life, hand DEAD slots left by a dead supervisor to
 * the main thread, and free claims whose claimer died. */
static void scan_sessions(struct supervisor *sv, struct registrar *rg)
{
	struct lm_region *r = &sv->region;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < n; i++) {
		struct lm_session *s = &r->sessions[i];
		uint64_t w = lm_session_word(s);
		switch (LM_SESS_STATE(w)) {
		case LM_SESS_CLAIMING:
			if (claimer_dead(rg, i, w, s) &&
			    lm_session_free(r, i, w))
				lm_log("supervisor", "freed session slot %u: "
				       "pid %d died while connecting", i,
				       (int)LM_SESS_PID(w));
			continue;
		case LM_SESS_DEAD:
			if (rg->seen[i] != w) {
				rg->seen[i] = w;
				tell_main(sv, NEWS_DEAD, i, w, -1);
			}
			continue;
		case LM_SESS_LIVE:
			break;
		default:
			continue;
		}
		if (rg->seen[i] == w)
			continue;
		pid_t pid = LM_SESS_PID(w);
		int pidfd = pidfd_open(pid, 0);
		if (pidfd < 0 && errno != ESRCH) {
			/* EMFILE, ENOMEM...: we could not look, which is not
			 * the same as "dead". Freeing a live client's locks
			 * would break mutual exclusion: try again next scan. */
			lm_log_error("supervisor", "cannot watch client pid "
				     "%d: %s; will retry", (int)pid,
				     strerror(errno));
			continue;
		}
		rg->seen[i] = w;
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
		tell_main(sv, pidfd >= 0 ? NEWS_WATCH : NEWS_GONE, i, w, pidfd);
	}
}

static void *registrar_main(void *arg)
{
	struct supervisor *sv = arg;
	_Atomic uint32_t *seqw = &sv->region.hdr->session_seq;
	uint32_t n = sv->region.max_sessions;
	struct registrar rg = {
		.seen = calloc(n, sizeof(uint64_t)),
		.claim_word = calloc(n, sizeof(uint64_t)),
		.claim_seen = calloc(n, sizeof(uint64_t)),
	};
	if (rg.seen == NULL || rg.claim_word == NULL || rg.claim_seen == NULL)
		lm_die("calloc(registrar)");
	while (!atomic_load(&sv->stopping)) {
		uint32_t seq = atomic_load(seqw);
		scan_sessions(sv, &rg);
		/* The timeout bounds the wait for what no client announces:
		 * a claimer that died before making its slot LIVE. */
		lm_futex_wait(seqw, seq, lm_now_ns() + INT64_C(1000000000));
	}
	free(rg.seen);
	free(rg.claim_word);
	free(rg.claim_seen);
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

/* Has the process of LIVE session word w, in slot s, exited? */
static bool session_process_gone(const struct tracked_session *t,
				 uint64_t w, const struct lm_session *s)
{
	if (t->pidfd >= 0 && t->gen == LM_SESS_GEN(w)) {
		struct pollfd p = {.fd = t->pidfd, .events = POLLIN};
		return poll(&p, 1, 0) == 1;
	}
	pid_t pid = LM_SESS_PID(w);
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	uint64_t st = lm_proc_start_time(pid);
	return st != 0 && st != atomic_load(&s->start_time);
}

/*
 * On the way out: handle every client death not yet handled, whether
 * its pidfd fired after the last turn of the event loop or the
 * registrar never got to watch it. A stop that waits for leases must
 * not wait for those of clients already gone.
 */
static void reap_exited_sessions(struct supervisor *sv)
{
	struct lm_region *r = &sv->region;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t w = lm_session_word(&r->sessions[i]);
		if (LM_SESS_STATE(w) == LM_SESS_LIVE &&
		    session_process_gone(&sv->sessions[i], w,
					 &r->sessions[i]))
			sup_session_died(sv, i, LM_SESS_GEN(w));
	}
	sup_free_deferred_sessions(sv, lm_now_ms());
}

void sup_stop_registrar(struct supervisor *sv)
{
	if (!sv->registrar_running)
		return;
	atomic_store(&sv->stopping, true);
	lm_futex_bump_wake(&sv->region.hdr->session_seq, 1);
	pthread_join(sv->registrar, NULL);
	sv->registrar_running = false;
	/* Take what the registrar left, and every death not yet seen: a
	 * stop that waits for leases must not wait for a dead client's. */
	struct cds_wfcq_node *node;
	while ((node = __cds_wfcq_dequeue_blocking(&sv->news_head,
						   &sv->news_tail)) != NULL) {
		struct session_news *news =
			caa_container_of(node, struct session_news, node);
		take_news(sv, news);
		free(news);
	}
	reap_exited_sessions(sv);
	cds_wfcq_destroy(&sv->news_head, &sv->news_tail);
	for (uint32_t i = 0; i < sv->region.max_sessions; i++)
		if (sv->sessions[i].pidfd >= 0)
			close(sv->sessions[i].pidfd);
	close(sv->newsfd);
	free(sv->sessions);
	sv->sessions = NULL;
}
