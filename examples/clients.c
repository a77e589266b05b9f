/*
 * clients.c - the loop, failing and fenced clients (see clients.h).
 */
#include "clients.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "resource/store.h"

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

_Noreturn void client_crash(enum crash_how how)
{
	switch (how) {
	case CRASH_ABORT:
		/* abort() may be caught; the default action is what a
		 * crashing program gets. */
		signal(SIGABRT, SIG_DFL);
		abort();
	case CRASH_EXIT:
		_exit(3); /* no atexit handlers, no release */
	case CRASH_SIGKILL:
	default:
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
}

const char *client_crash_how_name(enum crash_how how)
{
	switch (how) {
	case CRASH_ABORT:
		return "abort()";
	case CRASH_EXIT:
		return "_exit()";
	default:
		return "SIGKILL";
	}
}

static void emit(const struct client_spec *s, enum client_event ev, int round,
		 const lm_grant *g, int rc, uint64_t highest)
{
	if (s->on_event != NULL)
		s->on_event(s, ev, round, g, rc, highest);
}

static void maybe_crash(const struct client_spec *s, enum crash_point at,
			int round, const lm_grant *g)
{
	if (s->crash_at != at || s->crash_round != round)
		return;
	emit(s, EV_CRASHING, round, g, 0, 0);
	client_crash(s->crash_how);
}

/* The fenced access: the write carries the token, the store decides. */
static int fenced_write(const struct client_spec *s, fs_store *st, int round,
			const lm_grant *g)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "client %d round %d", s->id,
			 round);
	uint64_t highest = 0;
	int rc = fs_write(st, g->token, msg, (size_t)n, &highest);
	if (rc == 0)
		emit(s, EV_WROTE, round, g, 0, highest);
	else if (rc == FS_ESTALE)
		emit(s, EV_REJECTED, round, g, rc, highest);
	else
		return rc;
	return 0;
}

/*
 * A reader's access: a look at the store's highest accepted token. A
 * reader does not write: the store takes a token only if it is at least
 * the highest it has seen, and readers inside together hold tokens in
 * no particular order, so of two readers the one with the lower token
 * would be rejected for writing second while both hold the lock. The
 * read fences the other way: every writer granted after a reader waits
 * for it, so a reader inside its lease sees no token above its own. One
 * that does (EV_READ with highest > g->token) was a zombie.
 */
static int fenced_read(const struct client_spec *s, fs_store *st, int round,
		       const lm_grant *g)
{
	struct fs_stats stats;
	int rc = fs_stats(st, &stats);
	if (rc != 0)
		return rc;
	emit(s, EV_READ, round, g, 0, stats.highest);
	return 0;
}

static int take(lm_client *c, const struct client_spec *s, lm_grant *g)
{
	if (s->mode == LM_MODE_X)
		return lm_acquire(c, s->lock, s->ttl_ms, s->wait_ms, g);
	lm_acquire_opts o = LM_ACQUIRE_OPTS(s->mode, s->ttl_ms, s->wait_ms);
	return lm_acquire_ex(c, s->lock, &o, g);
}

int run_client(const struct client_spec *s)
{
	lm_client *c = NULL;
	fs_store *st = NULL;
	int rc = lm_connect(s->region, &c);
	if (rc != 0)
		return rc;
	if (s->store_path != NULL) {
		rc = fs_open(s->store_path, FS_CREATE, &st);
		if (rc != 0)
			goto out;
	}
	for (int round = 0; s->rounds < 0 || round < s->rounds; round++) {
		if (s->stop != NULL && atomic_load(s->stop))
			break;
		maybe_crash(s, CRASH_BEFORE, round, NULL);
		emit(s, EV_WANTS, round, NULL, 0, 0);
		lm_grant g;
		rc = take(c, s, &g);
		if (rc != 0) {
			emit(s, EV_REFUSED, round, NULL, rc, 0);
			if (rc != LM_ETIMEDOUT && rc != LM_ENOQUORUM &&
			    rc != LM_EBUSY)
				goto out;
			rc = 0;
			nap_ms(s->gap_ms > 0 ? s->gap_ms : 1);
			continue;
		}
		emit(s, EV_ACQUIRED, round, &g, 0, 0);
		/* Crash half-way through the work, as real code would. */
		nap_ms(s->hold_ms / 2);
		maybe_crash(s, CRASH_INSIDE, round, &g);
		nap_ms(s->hold_ms - s->hold_ms / 2);
		if (st != NULL &&
		    (rc = s->mode == LM_MODE_X
				  ? fenced_write(s, st, round, &g)
				  : fenced_read(s, st, round, &g)) != 0)
			goto out;
		int rel = lm_release(c, &g);
		emit(s, EV_RELEASED, round, &g, rel, 0);
		maybe_crash(s, CRASH_AFTER, round, &g);
		nap_ms(s->gap_ms);
	}
	rc = 0;
out:
	if (st != NULL)
		fs_close(st);
	lm_disconnect(c);
	return rc;
}
