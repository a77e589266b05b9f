/*
 * watch.c - following one lock's changes (lm_watch_*, lockmgr.h).
 *
 * A watch pins its name (shm/pins.h), so that the lock it follows stays
 * the same lock, and sets the lock's `watched` flag before it first
 * reads it (shm/watch.h): from then on every change bumps the lock's
 * version and wakes the version's futex. lm_watch_next sleeps on that
 * futex while the version is the one it last reported.
 *
 * For poll/epoll there is no futex descriptor (FUTEX_FD is long gone),
 * so lm_watch_fd starts one thread per watch that waits on the version
 * and on a private stop word at once (futex_waitv) and writes an
 * eventfd each time the version moves. The thread touches only the
 * region and the eventfd, never the client, so it does not break the
 * rule of one thread per client.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/holders.h"
#include "../shm/pins.h"
#include "../shm/watch.h"
#include "internal.h"
#include "lockmgr.h"

struct lm_watch {
	lm_client *c;
	lm_watch *next, *prev;     /* in c->watches */
	uint32_t lock;
	int pin;                   /* our entry in the session's pins */
	uint32_t seen;             /* the lock's version last reported */
	uint64_t version;          /* the same, never wrapping: starts at
				    * the lock's version at open */
	struct lm_lock_view last;  /* the lock as last read */
	int efd;                   /* lm_watch_fd's eventfd, or -1 */
	pthread_t pump;
	bool pumping;
	uint32_t pump_from;        /* the version the pump starts from */
	_Atomic uint32_t stop;     /* private futex: the pump's "quit" */
};
/* The client first, as every backend's watch (backend.h). */
_Static_assert(offsetof(struct lm_watch, c) == 0, "lm_watch_head");

/* The lock as it is now, into ev's "now" fields (and w->last). */
static void look(lm_watch *w, lm_watch_event *ev)
{
	struct lm_lock_view v;
	lm_lock_look(&w->c->ctx.region, w->lock, lm_now_ns(), &v);
	ev->holders = v.holders;
	ev->held_mode = v.mode;
	ev->holder_pid = v.pid;
	ev->holder_token = v.token;
	w->last = v;
}

int lm_watch_open(lm_client *c, const char *name, lm_watch **out,
		  lm_watch_event *now)
{
	if (c == NULL || out == NULL)
		return LM_EINVAL;
	if (LM_BACKEND(c) != NULL)
		return c->be->watch_open(c, name, out, now);
	lm_lockref ref;
	int rc = lm_lookup(c, name, &ref);
	if (rc != 0)
		return rc;
	lm_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return LM_ESYS;
	w->c = c;
	w->efd = -1;
	struct lm_region *r = &c->ctx.region;
	for (;;) {
		int k = lm_pin(&c->ctx, (uint32_t)REF_IDX(&ref), REF_GEN(&ref));
		if (k == LM_PIN_FULL) {
			free(w);
			return LM_EPINS;
		}
		if (k >= 0) {
			w->lock = (uint32_t)REF_IDX(&ref);
			w->pin = k;
			break;
		}
		/* Reclaimed meanwhile: resolve it again. */
		rc = lm_lookup(c, name, &ref);
		if (rc != 0) {
			free(w);
			return rc;
		}
	}
	/* The flag before the first read: from here no change goes
	 * unannounced (shm/watch.h). */
	lm_lock_watch(r, w->lock);
	w->seen = lm_lock_version(r, w->lock);
	/* Events carry the lock's version (lockmgr.h), as lm_leader does:
	 * two watches of one lock, opened at different times, report the
	 * same version for the same change. */
	w->version = w->seen;
	lm_watch_event ev = { .version = w->version };
	look(w, &ev);
	if (now != NULL)
		*now = ev;
	w->next = c->watches;
	if (c->watches != NULL)
		c->watches->prev = w;
	c->watches = w;
	*out = w;
	return 0;
}

/* What the last change was, when its note cannot say: read off the
 * difference between the lock as it was and as it is. */
static void guess(const struct lm_lock_view *was,
		  const struct lm_lock_view *is, lm_watch_event *ev)
{
	if (is->holders != 0 &&
	    (was->holders == 0 || was->session != is->session ||
	     was->token != is->token || was->mode != is->mode)) {
		ev->what = LM_WATCH_GRANTED;
		ev->pid = is->pid;
		ev->mode = is->mode;
		ev->token = is->token;
		return;
	}
	ev->what = LM_WATCH_CHANGED;
	if (is->holders == 0 && was->holders != 0) {
		ev->pid = was->pid;
		ev->mode = was->mode;
		ev->token = was->token;
	}
}

/* Drain the pump's eventfd: we are about to look ourselves. */
static void drain(lm_watch *w)
{
	uint64_t n;
	if (w->efd >= 0)
		while (read(w->efd, &n, sizeof(n)) == (ssize_t)sizeof(n))
			;
}

int lm_watch_next(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev)
{
	if (w == NULL || ev == NULL)
		return LM_EINVAL;
	if (LM_BACKEND(lm_watch_client(w)) != NULL)
		return w->c->be->watch_next(w, timeout_ms, ev);
	struct lm_region *r = &w->c->ctx.region;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX
			   : timeout_ms > INT64_C(3153600000000)
				   ? INT64_MAX
				   : lm_now_ns() + timeout_ms * 1000000;
	drain(w);
	for (;;) {
		uint32_t v = lm_lock_version(r, w->lock);
		if (v != w->seen) {
			memset(ev, 0, sizeof(*ev));
			ev->changes = v - w->seen;
			w->version += ev->changes;
			ev->version = w->version;
			w->seen = v;
			struct lm_lock_view was = w->last;
			look(w, ev);
			lm_lock_note_read(r, w->lock, v, &ev->what, &ev->mode,
					  &ev->pid, &ev->token);
			if (ev->what == LM_CHANGE_OTHER)
				guess(&was, &w->last, ev);
			return 0;
		}
		if (lm_now_ns() >= deadline)
			return LM_ETIMEDOUT;
		lm_futex_wait(lm_lock_version_futex(r, w->lock), v,
			      deadline);
	}
}

/* futex_waitv (Linux 5.16): sleep until the lock's version is not tv or
 * our stop word is set. */
static void wait_either(lm_watch *w, _Atomic uint32_t *version, uint32_t tv)
{
	struct futex_waitv waiters[2] = {
		{ .val = tv, .uaddr = (uintptr_t)version,
		  .flags = FUTEX_32 },
		{ .val = 0, .uaddr = (uintptr_t)&w->stop,
		  .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
	};
	if (syscall(SYS_futex_waitv, waiters, 2, 0, NULL, CLOCK_MONOTONIC) <
		    0 &&
	    errno == ENOSYS)
		/* An older kernel: wake up now and then to look at stop. */
		lm_futex_wait(version, tv, lm_now_ns() + 50000000);
}

static void *pump(void *arg)
{
	lm_watch *w = arg;
	struct lm_region *r = &w->c->ctx.region;
	_Atomic uint32_t *version = lm_lock_version_futex(r, w->lock);
	uint32_t tv = w->pump_from;
	const uint64_t one = 1;
	while (atomic_load(&w->stop) == 0) {
		uint32_t nv = lm_lock_version(r, w->lock);
		if (nv != tv) {
			if (write(w->efd, &one, sizeof(one)) < 0 &&
			    errno != EAGAIN)
				break;
			tv = nv;
			continue;
		}
		wait_either(w, version, tv);
	}
	return NULL;
}

int lm_watch_fd(lm_watch *w)
{
	if (w == NULL)
		return LM_EINVAL;
	if (LM_BACKEND(lm_watch_client(w)) != NULL)
		return w->c->be->watch_fd(w);
	if (w->pumping)
		return w->efd;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0)
		return LM_ESYS;
	w->pump_from = w->seen;
	/* The pump takes none of the program's signals: a signal sent to
	 * the process goes to a thread that does not block it, and a
	 * program that blocks SIGTERM to read it from a signalfd (lockctl
	 * watch, lockctl leader --watch) would otherwise be killed by it
	 * in the pump. A new thread starts with its creator's mask. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&w->pump, NULL, pump, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		close(w->efd);
		w->efd = -1;
		errno = err;
		return LM_ESYS;
	}
	w->pumping = true;
	return w->efd;
}

void lm_watch_close(lm_watch *w)
{
	if (w == NULL)
		return;
	if (LM_BACKEND(lm_watch_client(w)) != NULL) {
		w->c->be->watch_close(w);
		return;
	}
	if (w->pumping) {
		atomic_store(&w->stop, 1);
		syscall(SYS_futex, &w->stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
			0);
		pthread_join(w->pump, NULL);
	}
	if (w->efd >= 0)
		close(w->efd);
	lm_unpin(&w->c->ctx, w->pin);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		w->c->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	free(w);
}

void lm_watch_close_all(lm_client *c)
{
	while (c->watches != NULL)
		lm_watch_close(c->watches);
}
