/*
 * watch.c - lm_watch_* on etcd: open, next, fd, close.
 *
 * lm_watch_open reads the lock's keys once (one range, oldest first) and
 * starts the watch's thread (watch_stream.c) on a stream from the
 * revision after that read, so that every change after the "now" it
 * reports is seen, and none twice. The thread hands each batch of
 * changes over under the watch's mutex (a count and the last of them)
 * and writes the eventfd; lm_watch_next takes what is there, or waits on
 * the condition variable. Coalescing is the count: changes that came
 * before a reader took them are one event with `changes` > 1.
 *
 * Why a thread per watch, when the shared-memory backend starts one only
 * for lm_watch_fd: an etcd watch is a stream that must be read as it
 * comes (or etcd's buffers fill and it falls behind), whether or not the
 * program is in lm_watch_next; and lm_watch_fd must be readable on a
 * change without the program calling anything.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "etcd.h"

static int check_name(const char *name)
{
	if (name == NULL)
		return LM_EBADNAME;
	size_t len = strnlen(name, LM_NAME_MAX + 1);
	return len == 0 || len > LM_NAME_MAX ? LM_EBADNAME : 0;
}

/* Free what open made; the thread is not running. */
static void watch_free(struct lm_watch *w)
{
	/* The stream's handle before the cancel its sockets report to
	 * (etcd.h: etcd_watch). */
	etcd_curl_free(w->curl_stream);
	if (w->e2 != NULL)
		etcd_free(w->e2);
	etcd_cancel_destroy(&w->cancel);
	etcd_wkeys_free(w);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int etcd_watch_open(lm_client *c, const char *name, lm_watch **out,
		    lm_watch_event *now)
{
	struct lm_etcd *e = c->etcd;
	*out = NULL;
	int rc = check_name(name);
	if (rc != 0)
		return rc;
	struct lm_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return LM_ESYS;
	w->c = c;
	w->efd = -1;
	snprintf(w->name, sizeof(w->name), "%s", name);
	etcd_lock_prefix(e, name, w->lp);
	etcd_prefix_end(w->lp, w->lp_end);
	etcd_last_key(e, name, w->last);
	etcd_cancel_init(&w->cancel);
	pthread_mutex_init(&w->mu, NULL);
	/* Timed waits on CLOCK_MONOTONIC, as every deadline here. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);

	json_t *r;
	rc = etcd_post(e, "/v3/kv/range", etcd_wkeys_range(w),
		       etcd_op_deadline(), &r);
	if (rc != 0) {
		watch_free(w);
		return rc == ETCD_EGRPC ? LM_EINCOMPAT : rc;
	}
	rc = etcd_wkeys_load(w, json_object_get(r, "kvs"));
	int64_t rev = etcd_rev(r);
	json_decref(r);
	if (rc != 0 || rev <= 0) {
		watch_free(w);
		return rc != 0 ? rc : LM_EINCOMPAT;
	}
	w->next_rev = rev + 1;
	lm_watch_event ev = { .version = (uint64_t)rev };
	etcd_wkeys_view(w, &ev);
	w->ev = ev;

	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->e2 = etcd_clone(e);
	w->curl_stream = etcd_curl_new();
	if (w->efd < 0 || w->e2 == NULL || w->curl_stream == NULL) {
		watch_free(w);
		return LM_ESYS;
	}
	/* The thread takes none of the program's signals (as the
	 * shared-memory pump, client/watch.c: lockctl watch reads SIGTERM
	 * from a signalfd, and a signal that lands in a thread that does
	 * not block it would kill it). A new thread starts with its
	 * creator's mask. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&w->thread, NULL, etcd_watch_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		watch_free(w);
		errno = err;
		return LM_ESYS;
	}
	w->running = true;
	w->next = e->watches;
	e->watches = w;
	if (now != NULL)
		*now = ev;
	*out = w;
	return 0;
}

int etcd_watch_next(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX
			   : timeout_ms > INT64_C(3153600000000)
				   ? INT64_MAX
				   : lm_now_ns() + timeout_ms * 1000000;
	/* Drain first, then look: a change handed over after the drain is
	 * either taken now or leaves the eventfd readable. */
	uint64_t n;
	while (read(w->efd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		;
	pthread_mutex_lock(&w->mu);
	while (w->pend == 0) {
		if (lm_now_ns() >= deadline)
			break;
		if (deadline == INT64_MAX) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		struct timespec ts = {.tv_sec = deadline / 1000000000,
				      .tv_nsec = deadline % 1000000000};
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	int rc = LM_ETIMEDOUT;
	if (w->pend > 0) {
		*ev = w->ev;
		ev->changes = w->pend;
		w->pend = 0;
		rc = 0;
	} else if (w->stream_err != 0) {
		snprintf(w->c->etcd->detail, sizeof(w->c->etcd->detail),
			 "the watch of '%s' cannot follow etcd: %s", w->name,
			 lm_strerror(w->stream_err));
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int etcd_watch_fd(lm_watch *w)
{
	return w->efd;
}

void etcd_watch_close(lm_watch *w)
{
	struct lm_etcd *e = w->c->etcd;
	if (w->running) {
		etcd_cancel_stream(&w->cancel);
		pthread_join(w->thread, NULL);
	}
	for (struct lm_watch **p = &e->watches; *p != NULL; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	watch_free(w);
}

void etcd_watch_close_all(lm_client *c)
{
	while (c->etcd->watches != NULL)
		etcd_watch_close(c->etcd->watches);
}
