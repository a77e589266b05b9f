/*
 * actor.c - naming a process in shared memory (actor.h).
 */
#include "actor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "layout.h"
#include "session.h"

/* This process's word, once known; a forked child starts again. */
static _Atomic uint64_t self_word;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void forget_self(void)
{
	atomic_store(&self_word, 0);
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forget_self);
}

uint64_t lm_actor_self(void)
{
	/* Cached, since inserts ask on every reclaim they try (getpid is a
	 * system call), but only once known: a word with no start time
	 * could not be told from a later process with our pid, so none is
	 * ever written. */
	uint64_t w = atomic_load_explicit(&self_word, memory_order_relaxed);
	if (w != 0)
		return w;
	pthread_once(&self_once, watch_forks);
	pid_t pid = getpid();
	uint64_t start = lm_proc_start_time(pid);
	if (start == 0)
		return 0; /* /proc unreadable now (EMFILE, say): act later */
	w = LM_ACTOR(start, pid);
	atomic_store_explicit(&self_word, w, memory_order_relaxed);
	return w;
}

bool lm_actor_gone(uint64_t actor)
{
	pid_t pid = LM_ACTOR_PID(actor);
	if (pid <= 0)
		return true; /* not a word any actor writes */
	/* A pidfd first: it holds on to whatever process has the pid now,
	 * so the start time read next tells whether that is the actor, and
	 * polling it tells whether it has exited (a zombie not yet reaped
	 * has, though kill(pid, 0) still finds it). */
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return errno == ESRCH; /* anything else proves nothing */
	bool gone;
	uint64_t start = lm_proc_start_time(pid);
	if (start != 0 && (uint32_t)start != LM_ACTOR_START(actor)) {
		gone = true; /* the pid is another process's now */
	} else {
		/* The actor itself (or unreadable: then only an exit says
		 * it is gone). */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		gone = poll(&p, 1, 0) == 1;
	}
	close(fd);
	return gone;
}
